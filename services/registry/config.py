"""Registry settings (env prefix REGISTRY_)."""

from pathlib import Path

from pydantic import Field
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
    # Upload limits: the largest file (413 beyond, nothing kept), the longest line (rejected
    # with its number, never read into memory), import jobs running at once per user (429).
    import_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    import_max_line_chars: int = Field(default=256 * 1024, ge=1024)
    import_max_running_per_user: int = Field(default=2, ge=1)
