"""`python -m services.supervision`: API, consumers and outbox relay in one process."""

from __future__ import annotations

from pathlib import Path

from services.supervision import api, consumers, events, tables
from services.supervision.config import Settings
from shared.runtime import ServiceSpec, serve


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Supervision as a runnable service."""
    return ServiceSpec(
        name="supervision", settings=settings or Settings(), tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=[api.router],
        publishes=[events.TOPIC], consumers=consumers.consumer_specs,
        title="Every Door supervision",
        description="Public posting, complaints, community supervision, beneficiary timeline.",
    )


if __name__ == "__main__":
    serve(spec())
