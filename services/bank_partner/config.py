"""Reference partner configuration, from BANK_PARTNER_* environment variables (stdlib only)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# The sandbox signing key: public in the repository, so trusted by disbursement in dev mode only.
SANDBOX_KEY_FILE = Path(__file__).with_name("sandbox-signing-key.private.jwk.json")


PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BANK_PARTNER_{name}", default)


def _path(name: str) -> Path | None:
    value = os.environ.get(name, "")
    return Path(value) if value else None


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
    # How it reaches Kafka: the same KAFKA_* variables as Every Door's services (its own
    # principal, e.g. bank-vbsp, SCRAM over TLS; docs/bank-partner.md "Connecting to Kafka").
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS or self.sasl_mechanism not in MECHANISMS:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL must be one of {PROTOCOLS} and "
                             f"KAFKA_SASL_MECHANISM one of {MECHANISMS}")
        if self.security_protocol.startswith("SASL_") and not (self.sasl_username
                                                               and self.sasl_password):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                             "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (mutual TLS)")
        if not (0 <= self.reject_rate <= 1 and 0 <= self.fail_rate <= 1
                and self.reject_rate + self.fail_rate <= 1):
            raise ValueError("BANK_PARTNER_REJECT_RATE and BANK_PARTNER_FAIL_RATE must be in "
                             "[0, 1] and add up to at most 1")
        if self.accept_delay_s < 0 or self.settle_delay_s < 0 or self.repayments < 0:
            raise ValueError("delays and repayments must not be negative")

    @classmethod
    def from_env(cls) -> PartnerConfig:
        """Read BANK_PARTNER_* (KAFKA_BOOTSTRAP_SERVERS as the fallback broker address) and the
        Kafka security variables KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*."""
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
            security_protocol=os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            sasl_mechanism=os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper(),
            sasl_username=os.environ.get("KAFKA_SASL_USERNAME") or None,
            sasl_password=os.environ.get("KAFKA_SASL_PASSWORD") or None,
            ssl_cafile=_path("KAFKA_SSL_CAFILE"),
            ssl_certfile=_path("KAFKA_SSL_CERTFILE"),
            ssl_keyfile=_path("KAFKA_SSL_KEYFILE"),
        )
