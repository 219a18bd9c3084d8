"""`python -m services.eligibility`: API, consumers, outbox relay and re-evaluation jobs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from services.eligibility import api, consumers, events, reviews_api, tables
from services.eligibility.config import Settings
from services.eligibility.handlers import reevaluation, rulesets, service_of
from shared.runtime import Runtime, ServiceSpec, serve

log = logging.getLogger("everydoor.eligibility")


async def load(rt: Runtime) -> None:
    """Load and validate the rule sets and programmes before anything is served, and take the
    active rule sets from the database (the first replica ever stores its files); resume the
    re-evaluation jobs a previous process left running."""
    svc = service_of(rt)
    async with rt.transaction() as session:
        await rulesets.start_up(session, svc)
    async with rt.sessions() as session:
        left = await reevaluation.unfinished(session)
    for job_id in left:
        log.info("resuming re-evaluation %s", job_id)
        rt.tasks.append(asyncio.create_task(reevaluation.run(rt.sessions, svc, job_id),
                                            name=f"reevaluation-{job_id}"))


async def expiry_sweep(rt: Runtime) -> None:
    """Re-publish programmes when a household's "just escaped" period ends."""
    svc = service_of(rt)
    while True:
        try:
            while True:
                async with rt.transaction() as session:
                    if not await reevaluation.sweep_expired(session, svc):
                        break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry sweep failed; retrying later")
        await asyncio.sleep(svc.settings.expiry_sweep_interval_s)


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Eligibility as a runnable service."""
    return ServiceSpec(
        name="eligibility", settings=settings or Settings(), tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=[api.router, reviews_api.router],
        publishes=[events.TOPIC], consumers=consumers.consumer_specs, on_startup=[load],
        background=[expiry_sweep], title="Every Door eligibility",
        description="Poverty standards as data, explained classifications, programme eligibility.",
    )


if __name__ == "__main__":
    serve(spec())
