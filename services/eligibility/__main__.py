"""`python -m services.eligibility`: API, consumers and outbox relay in one process."""

from __future__ import annotations

from pathlib import Path

from services.eligibility import api, consumers, events, tables
from services.eligibility.config import Settings
from shared.runtime import ServiceSpec, serve


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Eligibility as a runnable service."""
    return ServiceSpec(
        name="eligibility", settings=settings or Settings(), tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=[api.router],
        publishes=[events.TOPIC], consumers=consumers.consumer_specs,
        title="Every Door eligibility",
        description="Poverty standards as data, explained classifications, programme eligibility.",
    )


if __name__ == "__main__":
    serve(spec())
