"""Supervision settings (env prefix SUPERVISION_)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Supervision configuration."""

    model_config = SettingsConfigDict(env_prefix="SUPERVISION_", extra="ignore")

    service_name: str = "supervision"
    port: int = 8004
