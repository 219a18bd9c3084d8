"""`python -m services.disbursement`: API, consumers and outbox relay in one process."""

from __future__ import annotations

from pathlib import Path

from services.disbursement import api, consumers, events, tables
from services.disbursement.config import Settings
from shared.runtime import ServiceSpec, serve


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Disbursement as a runnable service."""
    settings = settings or Settings()
    return ServiceSpec(
        name="disbursement", settings=settings, tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=[api.router],
        publishes=[events.TOPIC, *(events.instructions_topic(p) for p in settings.partners)],
        consumers=consumers.consumer_specs,
        title="Every Door disbursement",
        description="Loans and livelihood support through bank partners, holds, reconciliation.",
    )


if __name__ == "__main__":
    serve(spec())
