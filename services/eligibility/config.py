"""Eligibility settings (env prefix ELIGIBILITY_)."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

HERE = Path(__file__).parent
RULESETS_DIR = HERE / "rulesets"
PROGRAMMES_FILE = HERE / "programmes.yaml"


class Settings(ServiceSettings):
    """Eligibility configuration."""

    model_config = SettingsConfigDict(env_prefix="ELIGIBILITY_", extra="ignore")

    service_name: str = "eligibility"
    port: int = 8002
    # Folders of rule-set files (*.yaml, *.yml, *.json; national and provincial overrides).
    # Officials correct values there; POST /v1/rulesets/{id}/reevaluate reloads them, stores them
    # as the active rule sets every replica decides by, and re-decides.
    rulesets_dirs: list[Path] = [RULESETS_DIR]
    # Programmes as data: the rule each needs and the length of "just escaped".
    programmes_file: Path = PROGRAMMES_FILE
    # Longest fetch wait of the registry consumer (survey → decision latency; the other group
    # keeps consumer_fetch_max_wait_ms). The embedded Tansu holds each fetch this long even
    # when records arrive: 25 instead of 100 takes ~12 ms off the p50 and ~30 ms off the p99
    # at 100 surveys/s, for ~2% of a core more idle in this service and ~2% in the broker.
    registry_fetch_max_wait_ms: int = 25
    # Households re-decided per transaction by a re-evaluation job.
    reevaluation_batch_size: int = 1000
    # Local calendar for recognition dates and "just escaped" expiry.
    timezone: str = "Asia/Ho_Chi_Minh"
    # How often households whose "just escaped" period ended get their programmes re-published.
    expiry_sweep_interval_s: float = 3600.0
