"""What every use case needs: the service context, event emission, scope checks, lookups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, events, tables
from services.disbursement.config import Settings
from shared.envelope import Envelope, utcnow
from shared.outbox import Outbox
from shared.problems import Problem
from shared.runtime import Runtime

INSTRUCTION_NAMESPACE = uuid.UUID("4f1d2c63-3b1e-4c55-9a8e-6e0d1a2b7c11")


def load_programmes(path: Path, *, partners: list[str]) -> dict[str, domain.Programme]:
    """Read and validate the programmes file; every programme's partner must be configured."""
    programmes = domain.parse_programmes(yaml.safe_load(path.read_text(encoding="utf-8")))
    for p in programmes.values():
        if p.partner not in partners:
            raise ValueError(f"programme {p.code}: partner {p.partner!r} is not in the configured "
                             f"partners {partners}")
    return programmes


def load_restructuring(path: Path) -> dict[str, domain.RestructuringOption]:
    """Read and validate the restructuring options file."""
    return domain.parse_options(yaml.safe_load(path.read_text(encoding="utf-8")))


@dataclass
class Service:
    """The service-wide context use cases run in: settings, programmes and the outbox."""

    settings: Settings
    programmes: dict[str, domain.Programme]
    outbox: Outbox
    options: dict[str, domain.RestructuringOption] = field(default_factory=dict)

    async def emit(self, session: AsyncSession, topic: str, *, type: str, data: dict[str, Any],
                   subject: str | None, causation: Envelope | None = None) -> Envelope:
        """Write an event into the outbox in the caller's transaction."""
        env = self.outbox.new(type=type, data=data, subject=subject, causation=causation)
        await self.outbox.add(session, topic, env)
        return env

    def programme(self, code: str) -> domain.Programme:
        """A programme by code, or 422 naming the field."""
        try:
            return self.programmes[code]
        except KeyError:
            raise invalid("programme_code", "unknown_programme",
                          f"unknown programme {code!r}; one of {', '.join(self.programmes)}") from None


def service_of(rt: Runtime) -> Service:
    """The service context of this process (programmes loaded and checked once)."""
    if "svc" not in rt.state:
        settings = rt.settings
        assert isinstance(settings, Settings)
        rt.state["svc"] = Service(
            settings=settings,
            programmes=load_programmes(settings.programmes_file, partners=settings.partners),
            outbox=rt.outbox, options=load_restructuring(settings.restructuring_file))
    return rt.state["svc"]


def invalid(field: str, code: str, message: str, **extra: Any) -> Problem:
    """422 problem naming the field, with a machine-readable reason code."""
    return Problem(422, f"{field}: {message}", code=code,
                   errors=[{"field": field, "code": code, "message": message}], **extra)


def violations_problem(violations: list[domain.programmes.Violation]) -> Problem:
    """422 listing every broken rule; the first one is the headline."""
    first = violations[0]
    return Problem(422, f"{first.field}: {first.message}", code=first.code,
                   errors=[{"field": v.field, "code": v.code, "message": v.message}
                           for v in violations])


async def province_of(session: AsyncSession, commune_code: str) -> str | None:
    """The commune's province, if eligibility events told us."""
    return await session.scalar(sa.select(tables.commune_area.c.province_code)
                                .where(tables.commune_area.c.commune_code == commune_code))


def instruction_id_for(application_id: str) -> str:
    """The instruction id is derived from the application: retries can only ever name one."""
    return str(uuid.uuid5(INSTRUCTION_NAMESPACE, application_id))


def jsonable(row: Any) -> dict[str, Any]:
    """A row mapping with dates as ISO strings."""
    out = {}
    for k, v in dict(row).items():
        out[k] = v.isoformat() if isinstance(v, date | datetime) else v
    return out


def now() -> datetime:
    """Timezone-aware now (UTC)."""
    return utcnow()


__all__ = ["Service", "events", "invalid"]


async def record_application_status(session: AsyncSession, *, application_id: str, status: str,
                                    actor: str | None, reason: str | None) -> Any:
    """Set an application's status and append it to its history."""
    a = tables.application
    row = (await session.execute(sa.update(a).where(a.c.id == application_id)
                                 .values(status=status, updated_at=sa.func.now())
                                 .returning(*a.c))).one()
    await session.execute(sa.insert(tables.application_status).values(
        application_id=application_id, status=status, actor=actor, reason=reason))
    return row
