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
    # DCI social-registry search (docs/dci.md): this registry's id in DCI headers, the largest
    # page (and the largest unpaginated answer), search requests per message, where on-search
    # callbacks may go (URL prefixes; none: asynchronous search is refused) and their retries.
    dci_registry_id: str = "registry.everydoor"
    dci_max_page_size: int = Field(default=100, ge=1, le=1000)
    dci_max_requests: int = Field(default=10, ge=1, le=100)
    dci_callback_prefixes: list[str] = Field(default_factory=list)
    dci_callback_timeout_s: float = Field(default=10.0, gt=0)
    dci_callback_max_attempts: int = Field(default=8, ge=1)
    dci_callback_backoff_s: float = Field(default=5.0, gt=0)
    dci_callback_backoff_max_s: float = Field(default=600.0, gt=0)
    dci_poll_interval_s: float = Field(default=1.0, gt=0)
    # A declared shock's households are to be re-surveyed within this many days unless the
    # declaration says when (Decision 24/2021: the regular review is monthly).
    shock_review_days: int = Field(default=30, ge=1, le=366)
    # Coverage: a household whose visits in a round are all not_home/refused counts as "not
    # reached" once there are at least this many of them.
    coverage_attempts: int = Field(default=3, ge=1)
