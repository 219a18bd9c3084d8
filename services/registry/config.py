"""Registry settings (env prefix REGISTRY_)."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

DEMO_ADMIN_UNITS = Path(__file__).resolve().parent / "data" / "admin_units.csv"


class Settings(ServiceSettings):
    """Registry configuration."""

    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    service_name: str = "registry"
    port: int = 8001
    # Loaded at start-up when the admin-unit table is empty (the official list replaces it).
    admin_units_file: Path = DEMO_ADMIN_UNITS
    import_batch_size: int = 1000
