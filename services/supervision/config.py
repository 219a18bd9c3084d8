"""Supervision settings (env prefix SUPERVISION_)."""

from datetime import date
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Supervision configuration."""

    model_config = SettingsConfigDict(env_prefix="SUPERVISION_", extra="ignore")

    secret_fields = ("rate_limit_key", "reference_key")

    service_name: str = "supervision"
    port: int = 8004
    # Public posting window in working days (3 is common practice, unconfirmed: POLICY §3).
    posting_working_days: int = 3
    # The shortest window a posting may be given (`closes_at`); only a national admin closes a
    # posting before its window ends, with a recorded reason. 0: no minimum (tests only).
    posting_min_working_days: int = Field(default=3, ge=0)
    # Days off besides Saturdays and Sundays (Tết, national holidays), as ISO dates.
    public_holidays: list[date] = []
    # Local (UTC+7) hour at which a posting closes on its last working day.
    office_close_hour: int = 17
    # Days to answer a complaint, and the commune's days to answer a finding (POLICY §6).
    complaint_due_days: int = 15
    answer_due_days: int = 15
    # Longest complaint text, in characters.
    complaint_text_max: int = 2000
    # Public complaint form: at most this many filings per client per window.
    complaint_rate_limit: int = 5
    complaint_rate_window_s: float = 600.0
    # Key of the one-way hash that stands for a client in the rate limiter (no IP is stored).
    rate_limit_key: str = "everydoor-dev-rate-limit-key"
    # Key of the keyed hash behind the public posting references (HGD-XXXX-XXXX); changing it
    # changes the references of postings made afterwards.
    reference_key: str = "everydoor-dev-reference-key"
    # Names of provinces and communes (code,level,name,parent_code,area_type — the registry's
    # admin-unit file; a read-only copy is vendored, point this at the official one).
    admin_units_file: Path = Path(__file__).resolve().parent / "data" / "admin_units.csv"
    # Reverse proxies in front of the service whose X-Forwarded-For hops are trusted: the client
    # is the hop the outermost of them added (counted from the right; the left-most entries are
    # whatever the client sent). 0: the connection's own address.
    trusted_proxies: int = Field(default=0, ge=0, le=10)
    # Public complaints per posting per window, from all clients together (a flood from many
    # addresses cannot drown the commune's list).
    complaint_posting_rate_limit: int = Field(default=200, ge=1)
    # Origins besides the page's own that may post the public form (e.g. the commune's portal
    # embedding a link); a browser's cross-site form post from anywhere else is refused.
    public_origins: list[str] = []
    # The sign-in cookie is marked Secure (sent over HTTPS only) when the request came over
    # HTTPS, or always with this set (behind a proxy that ends TLS).
    secure_cookies: bool = False
    # Households per `supervision.posting.approved.v1` event (~110 bytes each: 2,000 stay far
    # below the broker's 1 MiB message limit); a larger list is approved in several parts.
    posting_approval_part_size: int = 2000
    # How often postings past their closing time are closed (and the event published).
    posting_close_interval_s: float = 30.0
