"""`python -m services.disbursement`: API, consumers, outbox relay and dispatcher in one process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from services.disbursement import api, consumers, events, restructuring_api, tables
from services.disbursement.config import Settings
from services.disbursement.handlers import instructions, service_of
from shared.runtime import Runtime, ServiceSpec, serve

log = logging.getLogger("everydoor.disbursement")


async def load(rt: Runtime) -> None:
    """Load and check the programmes before anything is served."""
    service_of(rt)


async def dispatcher(rt: Runtime) -> None:
    """Send approved instructions whose scheduled day came into the window."""
    svc = service_of(rt)
    while True:
        try:
            async with rt.transaction() as session:
                sent = await instructions.dispatch_due(session, svc)
            if sent:
                log.info("dispatcher issued %d instructions", sent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dispatcher failed; retrying")
        await asyncio.sleep(svc.settings.dispatch_interval_s)


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Disbursement as a runnable service."""
    settings = settings or Settings()
    return ServiceSpec(
        name="disbursement", settings=settings, tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=[api.router, restructuring_api.router],
        publishes=[events.TOPIC, *(events.instructions_topic(p) for p in settings.partners)],
        consumers=consumers.consumer_specs, on_startup=[load], background=[dispatcher],
        title="Every Door disbursement",
        description="Loans through savings-and-loan groups and livelihood support, paid by bank "
                    "partners over Kafka; holds, loans and reconciliation.",
    )


if __name__ == "__main__":
    serve(spec())
