"""The operator audit log: every operator action (republish, retry, discard, replay) with who,
when, why and what came of it, kept in the service's own database."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.db import PlatformTables
from shared.outbox import CORRELATION_ID

log = logging.getLogger("everydoor.audit")

REASON_MIN = 10
ReasonQ = Annotated[str, Query(
    min_length=REASON_MIN, max_length=1000,
    description="why (kept in the operator audit log, `GET /v1/ops/audit`)",
    examples=["broker lost its data after the 02:00 outage; refill"])]


class OperatorActionRead(BaseModel):
    """One operator action as the audit log keeps it."""

    id: int
    at: datetime
    actor: str = Field(description="the token's `sub`")
    role: str = Field(description="the token's role")
    action: str = Field(examples=["dead_letter.replay", "outbox.republish"])
    target: str = Field(description="the dead letter / outbox row id, or the republish filter")
    reason: str
    outcome: dict[str, Any] = Field(description="what the action did (or why it was refused)")
    correlation_id: str | None = None


async def record(session: AsyncSession, tables: PlatformTables, *, user: Principal, action: str,
                 target: str, reason: str, outcome: dict[str, Any]) -> None:
    """Append an operator action to the audit log (in the caller's transaction) and log it."""
    await session.execute(sa.insert(tables.operator_action).values(
        actor=user.sub, role=user.role, action=action, target=target, reason=reason,
        outcome=outcome, correlation_id=CORRELATION_ID.get()))
    log.warning("audit: %s (%s) %s %s: %s -> %s", user.sub, user.role, action, target, reason,
                outcome)


async def listing(session: AsyncSession, tables: PlatformTables, *, action: str | None,
                  actor: str | None, before_id: int | None,
                  limit: int) -> list[OperatorActionRead]:
    """The audit log, newest first, optionally one action or actor, paged by `before_id`."""
    t = tables.operator_action
    q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
    if action is not None:
        q = q.where(t.c.action == action)
    if actor is not None:
        q = q.where(t.c.actor == actor)
    if before_id is not None:
        q = q.where(t.c.id < before_id)
    rows = (await session.execute(q)).mappings().all()
    return [OperatorActionRead.model_validate(dict(r)) for r in rows]
