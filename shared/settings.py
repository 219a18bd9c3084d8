"""Settings shared by every service; each service subclasses `ServiceSettings` with its own prefix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """The git-ignored local state folder (`.everydoor/` at the project root unless overridden)."""
    path = Path(os.environ.get("EVERYDOOR_HOME", PROJECT_ROOT / ".everydoor"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_audience(service: str) -> str:
    """The default token audience of a service: `everydoor-<service>`."""
    return f"everydoor-{service}"


class PlatformSettings(BaseSettings):
    """Connection and runtime settings common to the whole platform (no prefix: standard names)."""

    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Server-level URL; each service appends its own database name unless given a full URL.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433"
    everydoor_dev_mode: bool = True
    # Bearer tokens come from an OIDC provider: its public keys (JWKS) at a URL or in a file,
    # one of them required outside dev mode (shared/auth.py). Dev mode also trusts a local key.
    everydoor_jwks_url: str | None = None
    everydoor_jwks_file: Path | None = None
    everydoor_jwt_issuer: str = "everydoor"
    # A token whose exp - iat exceeds this is refused, whatever its provider allowed.
    everydoor_jwt_max_lifetime_s: int = Field(default=12 * 3600, gt=0)
    # Clock skew tolerated on exp, iat and nbf.
    everydoor_jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    # A fetched JWKS is fetched again after this long (and on an unknown kid, at most every
    # EVERYDOOR_JWKS_MIN_REFRESH_S), so a provider's rotation is picked up.
    everydoor_jwks_cache_s: float = Field(default=300.0, gt=0)
    everydoor_jwks_min_refresh_s: float = Field(default=30.0, ge=0)
    kafka_enable_idempotence: bool = False
    kafka_topic_partitions: int = 6
    # Topics the services create (missing ones; a fresh broker's): copies of each partition and
    # how many must have a write before acks=all answers. A cluster of 3+ brokers: 3 and 2.
    kafka_topic_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    # Outside dev mode a replication factor of 1 is refused unless this says the cluster has
    # one broker on purpose (the compose file's); see topic_configs in shared/infra.py.
    kafka_allow_unreplicated_topics: bool = False
    # /docs, /redoc and /openapi.json: an internet-facing deployment may turn them off (404).
    everydoor_docs_enabled: bool = True
    # When set, /metrics answers only `Authorization: Bearer <token>` (401 otherwise); unset,
    # it is open, as on a private network. Outside dev mode start-up warns when it is unset.
    everydoor_metrics_token: str | None = None

    # How every client of the code reaches the broker (shared.broker.client_security): PLAINTEXT
    # for the embedded dev broker only; SASL_SSL (SCRAM over TLS, one principal per service) in
    # compose and k8s; SSL with a client certificate and key for mutual TLS.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None  # never shown in a repr or a log line
    # The CA that signed the brokers' certificates (unset: the system's trust store), and the
    # client's own certificate and key for mutual TLS.
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # Outside dev mode a protocol without TLS (PLAINTEXT, SASL_PLAINTEXT) is refused unless this
    # says the traffic is protected otherwise on purpose (e.g. a service mesh's mutual TLS).
    kafka_allow_plaintext: bool = False

    @model_validator(mode="after")
    def _metrics_token_is_a_secret(self) -> PlatformSettings:
        token = self.everydoor_metrics_token
        if token is not None and (len(token) < 16 or token.strip() in ("", "CHANGE_ME")):
            raise ValueError("EVERYDOOR_METRICS_TOKEN must be 16+ characters when set")
        return self

    @model_validator(mode="after")
    def _kafka_credentials_complete(self) -> PlatformSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password
                and self.kafka_sasl_password.get_secret_value()):
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                             "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (this service's principal)")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (mutual TLS)")
        if self.kafka_ssl_certfile is not None and not self.kafka_tls:
            raise ValueError("KAFKA_SSL_CERTFILE needs KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL")
        return self

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> PlatformSettings:
        if self.kafka_min_insync_replicas > self.kafka_topic_replication_factor:
            raise ValueError(
                f"KAFKA_MIN_INSYNC_REPLICAS ({self.kafka_min_insync_replicas}) must not exceed "
                f"KAFKA_TOPIC_REPLICATION_FACTOR ({self.kafka_topic_replication_factor})")
        return self

    @property
    def kafka_require_replication(self) -> bool:
        """Whether topics the services create must have replicas (outside dev mode)."""
        return not self.everydoor_dev_mode and not self.kafka_allow_unreplicated_topics

    @property
    def kafka_tls(self) -> bool:
        """Whether clients talk to the broker over TLS."""
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_require_tls(self) -> bool:
        """Whether a protocol without TLS is refused (outside dev mode, unless allowed)."""
        return not self.everydoor_dev_mode and not self.kafka_allow_plaintext


class ServiceSettings(BaseSettings):
    """Base for a service's Settings: ports, database, consumer tuning."""

    # Subclasses set their own prefix (REGISTRY_ …); the base must not read the bare DATABASE_URL.
    model_config = SettingsConfigDict(env_prefix="EVERYDOOR_SERVICE_", extra="ignore")

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    consumer_group_prefix: str = ""
    consumer_batch_size: int = 500
    consumer_max_attempts: int = 3
    consumer_session_timeout_ms: int = 6000
    consumer_heartbeat_interval_ms: int = 500
    # The embedded Tansu holds a fetch for this long even when records arrive (real Kafka
    # answers at once): lower means less delay per hop and more idle fetches.
    consumer_fetch_max_wait_ms: int = 100
    # How long the producer (relay, direct sends) waits to fill a batch. The relay sends a whole
    # claimed batch at once and only then yields, so the wait only delays the last partial
    # batch of each partition: it adds latency per hop and little throughput.
    producer_linger_ms: int = 1
    # How long start-up waits for the broker before starting without it (writes wait in the
    # outbox; the broker watch connects later).
    broker_startup_wait_s: float = 20.0
    # After a broker that lost its data (the embedded memory-only one restarted), the outbox
    # rows sent within this many hours are published again; consumers' inboxes drop repeats.
    broker_republish_window_h: float = 24.0
    # ... after waiting this long, so running consumers rewind to the empty partitions first.
    broker_recovery_grace_s: float = 10.0
    # Joining a consumer group that never syncs gives up after this and is tried again.
    consumer_start_timeout_s: float = 30.0
    # /ready fails when a background task shows no progress for this long (a stuck consumer).
    task_stuck_after_s: float = 300.0
    max_body_bytes: int = 1_000_000
    # Graceful shutdown: how long the relay may publish what is pending and each consumer
    # finish its batch in flight before the tasks are cancelled.
    shutdown_drain_s: float = 5.0
    relay_enabled: bool = True
    relay_batch_size: int = 2000
    relay_poll_interval_s: float = 0.5
    # A row the broker refuses is tried again with backoff, then parked (only its key waits).
    relay_max_attempts: int = 5
    # Retention (days): sent outbox rows, inbox rows, handled dead letters; pruned hourly. The
    # inbox horizon must exceed the broker's retention plus the republish window, or a repeat
    # older than it would be applied again.
    retention_outbox_days: float = 30.0
    retention_inbox_days: float = 14.0
    retention_dead_letter_days: float = 90.0
    retention_interval_s: float = 3600.0
    # How long the broker keeps records (Kafka's retention.ms; 7 days by default).
    broker_retention_h: float = 168.0
    # The `aud` this service requires in bearer tokens (default everydoor-<service_name>).
    jwt_audience: str | None = None
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
    # Names of key fields whose shipped development value must not be used outside dev mode.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _inbox_outlives_the_broker(self) -> ServiceSettings:
        needed_h = self.broker_retention_h + self.broker_republish_window_h
        if self.retention_inbox_days * 24 <= needed_h:
            prefix = str(self.model_config.get("env_prefix", ""))
            raise ValueError(
                f"{prefix}RETENTION_INBOX_DAYS ({self.retention_inbox_days:g}) must exceed the "
                f"broker's retention plus the republish window ({needed_h / 24:g} days): an older "
                "repeat would be applied again")
        if self.retention_outbox_days * 24 < self.broker_republish_window_h:
            prefix = str(self.model_config.get("env_prefix", ""))
            raise ValueError(f"{prefix}RETENTION_OUTBOX_DAYS must cover the republish window "
                             f"({self.broker_republish_window_h:g} h)")
        return self

    @model_validator(mode="after")
    def _no_dev_keys_in_production(self) -> ServiceSettings:
        if not self.platform.everydoor_dev_mode:
            for name in self.secret_fields:
                value = str(getattr(self, name))
                if value.startswith("everydoor-dev-") or value in ("", "CHANGE_ME") or len(value) < 16:
                    prefix = str(self.model_config.get("env_prefix", ""))
                    raise ValueError(f"{prefix}{name.upper()} must be set to a real key of 16+ "
                                     "characters outside dev mode (EVERYDOOR_DEV_MODE=false)")
        return self

    @property
    def db_url(self) -> str:
        """The full SQLAlchemy URL of this service's own database."""
        if self.database_url:
            return self.database_url
        url = make_url(self.platform.database_url)
        return url.set(database=f"everydoor_{self.service_name}").render_as_string(hide_password=False)

    @property
    def audience(self) -> str:
        """The `aud` a token must list to call this service."""
        return self.jwt_audience or service_audience(self.service_name)

    @property
    def bootstrap_servers(self) -> str:
        """Kafka bootstrap servers."""
        return self.platform.kafka_bootstrap_servers
