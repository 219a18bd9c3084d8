"""Disbursement settings (env prefix DISBURSEMENT_)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Disbursement configuration."""

    model_config = SettingsConfigDict(env_prefix="DISBURSEMENT_", extra="ignore")

    service_name: str = "disbursement"
    port: int = 8003
    partners: list[str] = ["vbsp"]
