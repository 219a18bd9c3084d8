"""`python -m services.registry`: API, consumers and outbox relay in one process."""

from __future__ import annotations

from pathlib import Path

from services.registry import api, consumers, events, tables
from services.registry.config import Settings
from shared.runtime import ServiceSpec, serve


def spec(settings: Settings | None = None) -> ServiceSpec:
    """The registry as a runnable service."""
    return ServiceSpec(
        name="registry", settings=settings or Settings(), tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=[api.router],
        publishes=[events.TOPIC], consumers=consumers.consumer_specs,
        title="Every Door registry",
        description="Households, members and surveys; every change published as an event.",
    )


if __name__ == "__main__":
    serve(spec())
