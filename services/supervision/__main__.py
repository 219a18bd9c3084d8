"""`python -m services.supervision`: API, consumers, outbox relay and posting closer in one process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from services.supervision import api, consumers, events, tables
from services.supervision.config import Settings
from services.supervision.handlers import postings, service_of
from shared.runtime import Runtime, ServiceSpec, serve

log = logging.getLogger("everydoor.supervision")


async def posting_closer(rt: Runtime) -> None:
    """Close postings whose public window has ended (and publish that they closed)."""
    svc = service_of(rt)
    while True:
        try:
            async with rt.transaction() as session:
                closed = await postings.close_due(session, svc)
            if closed:
                log.info("closed %d postings at the end of their window", closed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("posting closer failed; retrying")
        await asyncio.sleep(svc.settings.posting_close_interval_s)


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Supervision as a runnable service."""
    return ServiceSpec(
        name="supervision", settings=settings or Settings(), tables=tables.platform,
        migrations_dir=Path(__file__).parent / "migrations", routers=api.routers,
        publishes=[events.TOPIC], consumers=consumers.consumer_specs,
        background=[posting_closer],
        title="Every Door supervision",
        description="Public posting, complaints, community supervision, beneficiary timeline.",
    )


if __name__ == "__main__":
    serve(spec())
