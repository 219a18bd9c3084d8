"""Disbursement settings (env prefix DISBURSEMENT_)."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

PROGRAMMES_FILE = Path(__file__).parent / "programmes.yaml"


class Settings(ServiceSettings):
    """Disbursement configuration."""

    model_config = SettingsConfigDict(env_prefix="DISBURSEMENT_", extra="ignore")

    secret_fields = ("beneficiary_reference_key",)

    service_name: str = "disbursement"
    port: int = 8003
    # Bank partners whose topics exist; every programme's partner must be listed.
    partners: list[str] = ["vbsp"]
    # Programmes as data; point at another file to change rates, ceilings, partners, budgets.
    programmes_file: Path = PROGRAMMES_FILE
    # Key of the opaque beneficiary reference banks see (HMAC of the household id). Keep it
    # stable: changing it changes every household's reference.
    beneficiary_reference_key: str = "everydoor-dev-beneficiary-reference-key"
    # An instruction is issued to the bank when its scheduled date is at most this many days away.
    dispatch_ahead_days: int = 3
    # How often approved instructions are checked for a scheduled date that came into the window.
    dispatch_interval_s: float = 60.0
    # Transaction point name when none is configured for the commune.
    transaction_point_format: str = "Điểm giao dịch xã {commune_code}"
