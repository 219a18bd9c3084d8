"""Disbursement settings (env prefix DISBURSEMENT_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

PROGRAMMES_FILE = Path(__file__).parent / "programmes.yaml"
RESTRUCTURING_FILE = Path(__file__).parent / "restructuring.yaml"
# Public half of the reference partner's sandbox signing key (trusted in dev mode only).
SANDBOX_PARTNER_KEYS_FILE = Path(__file__).parent / "sandbox-partner-keys.jwks.json"


class Settings(ServiceSettings):
    """Disbursement configuration."""

    model_config = SettingsConfigDict(env_prefix="DISBURSEMENT_", extra="ignore")

    secret_fields = ("beneficiary_reference_key",)

    service_name: str = "disbursement"
    port: int = 8003
    # Bank partners whose topics exist; every programme's partner must be listed.
    partners: list[str] = ["vbsp"]
    # Each partner's status-signing public keys: partner → JWKS file of Ed25519 keys, each with
    # its `kid` (list the old and the new key while rotating). Outside dev mode every partner
    # needs one (start-up fails otherwise); in dev mode a partner without one trusts the
    # shipped sandbox key. JSON in the environment: {"vbsp": "/etc/everydoor/vbsp.jwks.json"}.
    partner_keys: dict[str, Path] = {}
    # Outside dev mode, trust the shipped sandbox key for partners without keys: only for a
    # production-like demo whose bank is the reference partner (the compose file), never for a
    # real bank. Like KAFKA_ALLOW_UNREPLICATED_TOPICS, it must be said on purpose.
    allow_sandbox_partner_key: bool = False
    # Programmes as data; point at another file to change rates, ceilings, partners, budgets.
    programmes_file: Path = PROGRAMMES_FILE
    # Loan restructuring options after a shock (extension, interest freeze) as data.
    restructuring_file: Path = RESTRUCTURING_FILE
    # Key of the opaque beneficiary reference banks see (HMAC of the household id). Keep it
    # stable: changing it changes every household's reference.
    beneficiary_reference_key: str = "everydoor-dev-beneficiary-reference-key"
    # An instruction is issued to the bank when its scheduled date is at most this many days away.
    dispatch_ahead_days: int = 3
    # How often approved instructions are checked for a scheduled date that came into the window.
    dispatch_interval_s: float = 60.0
    # Transaction point name when none is configured for the commune.
    transaction_point_format: str = "Điểm giao dịch xã {commune_code}"

    @model_validator(mode="after")
    def _every_partner_has_keys(self) -> Settings:
        missing = [p for p in self.partners if p not in self.partner_keys]
        if missing and not self.sandbox_partner_key_trusted:
            raise ValueError(
                f"DISBURSEMENT_PARTNER_KEYS has no key set for partner(s) {', '.join(missing)}: "
                "outside dev mode (EVERYDOOR_DEV_MODE=false) each partner's statuses are "
                "verified against its own registered public keys, not the public sandbox key "
                "(DISBURSEMENT_ALLOW_SANDBOX_PARTNER_KEY=true for a demo with the reference "
                "partner only)")
        return self

    @property
    def sandbox_partner_key_trusted(self) -> bool:
        """Whether statuses signed with the public sandbox key may be applied."""
        return self.platform.everydoor_dev_mode or self.allow_sandbox_partner_key

    def partner_key_files(self) -> dict[str, Path]:
        """Each partner's JWKS file: the configured one, else the sandbox's (dev mode, or
        allowed on purpose; the settings refuse the rest)."""
        return {p: self.partner_keys.get(p, SANDBOX_PARTNER_KEYS_FILE) for p in self.partners}
