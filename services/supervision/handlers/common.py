"""What every use case needs: the service context, event emission, scope checks, problems."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.supervision import events, tables
from services.supervision.config import Settings
from shared.auth import Principal
from shared.envelope import Envelope, utcnow
from shared.outbox import Outbox
from shared.problems import Problem, not_found
from shared.runtime import Runtime


@dataclass
class Service:
    """The service-wide context use cases run in: settings and the outbox."""

    settings: Settings
    outbox: Outbox

    async def emit(self, session: AsyncSession, *, type: str, data: dict[str, Any],
                   subject: str | None, causation: Envelope | None = None) -> Envelope:
        """Write a supervision event into the outbox in the caller's transaction."""
        model = events.EVENTS.get(type)
        if model is not None:  # the contract is checked before anything leaves
            data = model.model_validate(data).model_dump(mode="json")
        env = self.outbox.new(type=type, data=data, subject=subject, causation=causation)
        await self.outbox.add(session, events.TOPIC, env)
        return env


def service_of(rt: Runtime) -> Service:
    """The service context of this process."""
    if "svc" not in rt.state:
        settings = rt.settings
        assert isinstance(settings, Settings)
        rt.state["svc"] = Service(settings=settings, outbox=rt.outbox)
    return rt.state["svc"]


def invalid(field: str, message: str, *, code: str = "invalid", **extra: Any) -> Problem:
    """422 problem naming the field."""
    return Problem(422, f"{field}: {message}", code=code,
                   errors=[{"field": field, "code": code, "message": message}], **extra)


def conflict(message: str, **extra: Any) -> Problem:
    """409: the action does not fit the current state."""
    return Problem(409, message, **extra)


async def province_of(session: AsyncSession, commune_code: str) -> str | None:
    """The commune's province, if registry or eligibility events told us."""
    return await session.scalar(sa.select(tables.commune_area.c.province_code)
                                .where(tables.commune_area.c.commune_code == commune_code))


async def require_commune(session: AsyncSession, user: Principal, commune_code: str) -> str | None:
    """The commune's province; 404 when the commune is outside the caller's scope."""
    province = await province_of(session, commune_code)
    if not user.covers(commune_code=commune_code, province_code=province):
        raise not_found("commune", commune_code)
    return province


def jsonable(row: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row mapping with dates as ISO strings."""
    out = {}
    for k, v in dict(row._mapping if hasattr(row, "_mapping") else row).items():
        if k in drop:
            continue
        out[k] = v.isoformat() if isinstance(v, date | datetime) else v
    return out


def now() -> datetime:
    """Timezone-aware now (UTC)."""
    return utcnow()
