"""`python -m services.registry`: API, consumers and outbox relay in one process."""

from __future__ import annotations

import logging
from pathlib import Path

from services.registry import api, consumers, events, tables
from services.registry.config import Settings
from services.registry.handlers import admin_units, dci, imports
from shared.runtime import Runtime, ServiceSpec, serve

log = logging.getLogger("everydoor.registry")


async def prepare(rt: Runtime) -> None:
    """Seed the admin units on first start; fail import jobs a previous process left running."""
    settings = rt.settings
    assert isinstance(settings, Settings)
    async with rt.transaction() as session:
        if await admin_units.seed_if_empty(session, settings.admin_units_file):
            log.info("loaded administrative units from %s", settings.admin_units_file)
        failed = await imports.fail_interrupted(session)
    if failed:
        log.warning("%d import job(s) were interrupted by a restart", failed)


def spec(settings: Settings | None = None) -> ServiceSpec:
    """The registry as a runnable service."""
    return ServiceSpec(
        name="registry", settings=settings or Settings(), tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=api.routers,
        publishes=[events.TOPIC], consumers=consumers.consumer_specs, on_startup=[prepare],
        background=[dci.callbacks],
        title="Every Door registry",
        description="Households, members and surveys recorded by commune officers (or bulk "
                    "imports); administrative units; every change published on "
                    "`registry.households` with the full household snapshot. DCI social-registry "
                    "search (`/registry/...`) for other government systems.",
    )


if __name__ == "__main__":
    serve(spec())
