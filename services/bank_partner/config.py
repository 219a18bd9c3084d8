"""Reference partner configuration, from BANK_PARTNER_* environment variables (stdlib only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The sandbox signing key: public in the repository, so trusted by disbursement in dev mode only.
SANDBOX_KEY_FILE = Path(__file__).with_name("sandbox-signing-key.private.jwk.json")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BANK_PARTNER_{name}", default)


@dataclass(frozen=True)
class PartnerConfig:
    """How the reference partner behaves: who it is, where Kafka is, what it answers and when."""

    partner: str = "vbsp"
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "bank-partner.vbsp"
    reject_rate: float = 0.0
    fail_rate: float = 0.0
    accept_delay_s: float = 0.0
    settle_delay_s: float = 0.5
    seed: int = 0
    repayments: int = 0
    sandbox: bool = False
    state_file: Path | None = None
    health_port: int | None = None
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 500
    # The private Ed25519 JWK every status is signed with (its `kid` registered with Every Door).
    signing_key_file: Path = SANDBOX_KEY_FILE

    def __post_init__(self) -> None:
        if not (0 <= self.reject_rate <= 1 and 0 <= self.fail_rate <= 1
                and self.reject_rate + self.fail_rate <= 1):
            raise ValueError("BANK_PARTNER_REJECT_RATE and BANK_PARTNER_FAIL_RATE must be in "
                             "[0, 1] and add up to at most 1")
        if self.accept_delay_s < 0 or self.settle_delay_s < 0 or self.repayments < 0:
            raise ValueError("delays and repayments must not be negative")

    @classmethod
    def from_env(cls) -> PartnerConfig:
        """Read BANK_PARTNER_* (and KAFKA_BOOTSTRAP_SERVERS as the fallback broker address)."""
        partner = _env("NAME", "vbsp")
        state = _env("STATE_FILE", "")
        port = _env("HEALTH_PORT", "")
        return cls(
            partner=partner,
            bootstrap_servers=_env("BOOTSTRAP_SERVERS",
                                   os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")),
            group_id=_env("GROUP_ID", f"bank-partner.{partner}"),
            reject_rate=float(_env("REJECT_RATE", "0")),
            fail_rate=float(_env("FAIL_RATE", "0")),
            accept_delay_s=float(_env("ACCEPT_DELAY_S", "0")),
            settle_delay_s=float(_env("SETTLE_DELAY_S", "0.5")),
            seed=int(_env("SEED", "0")),
            repayments=int(_env("REPAYMENTS", "0")),
            sandbox=_env("SANDBOX", "false").lower() in ("1", "true", "yes"),
            state_file=Path(state) if state else None,
            health_port=int(port) if port else None,
            session_timeout_ms=int(_env("SESSION_TIMEOUT_MS", "6000")),
            heartbeat_interval_ms=int(_env("HEARTBEAT_INTERVAL_MS", "500")),
            signing_key_file=Path(_env("SIGNING_KEY_FILE", str(SANDBOX_KEY_FILE))),
        )
