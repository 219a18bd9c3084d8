"""A hold never misses a payment: confirmation and hold handling of one household are serialised,
the dispatcher checks holds again before it sends, and a release that overtakes its request
wins."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import tables
from services.disbursement.handlers import applications, inbound, service_of
from services.supervision import events as supervision_events
from shared.auth import Principal
from shared.consumer import EventContext
from shared.envelope import Envelope
from tests.disbursement.conftest import Stack, new_commune
from tests.disbursement.test_holds import supervision_event
from tests.disbursement.test_statuses import livelihood
from tests.support.apps import auth
from tests.support.wait import eventually

LATER = timedelta(days=30)  # beyond the dispatch window: the instruction waits, approved


async def submitted(stack: Stack, commune: str) -> tuple[str, str]:
    """A household with a submitted livelihood application: (household, application)."""
    household = await stack.household(commune)
    r = await stack.client.post("/v1/applications", headers=auth("commune_officer", commune),
                                json={"household_id": household,
                                      "programme_code": "LIVELIHOOD-EQUIPMENT",
                                      "amount_vnd": 8_000_000, "purpose": "Máy xay xát"})
    assert r.status_code == 201, r.text
    return household, r.json()["application_id"]


async def blocked_or_done(stack: Stack, task: asyncio.Task, pid: int) -> None:
    """Wait until `task` has finished or its connection waits for a lock."""

    async def settled() -> bool:
        if task.done():
            return True
        async with stack.service.runtime.engine.connect() as conn:
            waiting = await conn.scalar(sa.text(
                "select wait_event_type from pg_stat_activity where pid = :pid"), {"pid": pid})
        return waiting == "Lock"

    await eventually(settled, message="second transaction finished or waiting for a lock")


@pytest.mark.parametrize("first", ["confirm", "hold"])
async def test_a_hold_and_an_approval_at_the_same_time_leave_the_instruction_on_hold(
        stack: Stack, first: str):
    commune = new_commune()
    household, application_id = await submitted(stack, commune)
    rt = stack.service.runtime
    svc = service_of(rt)
    officer = Principal(sub="officer-1", role="commune_officer", scope=(commune,))
    hold = supervision_events.HoldRequestedV1(complaint_id="C-race", household_id=household,
                                              reason="complaint upheld", actor="x")
    envelope = Envelope(type=supervision_events.HOLD_REQUESTED, source=supervision_events.SOURCE,
                        subject=household, data=hold.model_dump(mode="json"))

    async def confirm(session: AsyncSession) -> None:
        await applications.confirm(session, svc, user=officer, application_id=application_id,
                                   scheduled_date=date.today() + LATER, note=None, credit=False)

    async def request_hold(session: AsyncSession) -> None:
        await inbound.on_hold_requested(svc, EventContext(
            session=session, event=envelope, outbox=rt.outbox, topic=supervision_events.TOPIC),
            hold)

    steps: dict[str, Callable[[AsyncSession], Awaitable[None]]] = {
        "confirm": confirm, "hold": request_hold}
    second = "hold" if first == "confirm" else "confirm"
    async with rt.sessions() as one, rt.sessions() as two:
        await steps[first](one)  # done, not committed: it has read what it reads
        pid = await two.scalar(sa.select(sa.func.pg_backend_pid()))
        task = asyncio.create_task(steps[second](two))
        await blocked_or_done(stack, task, pid)  # forced interleaving: both are in flight
        await one.commit()
        await task
        await two.commit()

    app = await stack.application(application_id, commune)
    assert app["instruction"]["status"] == "on_hold"
    r = await stack.client.get(f"/v1/households/{household}",
                               headers=auth("commune_officer", commune))
    assert r.json()["on_hold"] is True


async def test_the_dispatcher_does_not_send_an_instruction_whose_household_is_on_hold(
        stack: Stack):
    commune = new_commune()
    household, application_id, instruction_id = await livelihood(
        stack, commune, scheduled=date.today() + LATER)
    # The state a missed hold leaves behind: the hold is active, the instruction still approved;
    # and its day comes, so the dispatcher picks it up.
    async with stack.service.runtime.transaction() as session:
        await session.execute(sa.insert(tables.hold).values(
            complaint_id="C-missed", household_id=household, reason="complaint upheld"))
        await session.execute(sa.update(tables.instruction)
                              .where(tables.instruction.c.id == instruction_id)
                              .values(scheduled_date=date.today()))

    async def moved() -> dict | None:
        app = await stack.application(application_id, commune)
        return app if app["instruction"]["status"] != "approved" else None

    app = await eventually(moved, message="the dispatcher handled the due instruction")
    assert app["instruction"]["status"] == "on_hold"
    assert "sent" not in [s["status"] for s in app["instruction"]["history"]]

    await supervision_event(stack, supervision_events.HOLD_RELEASED,
                            supervision_events.HoldReleasedV1(complaint_id="C-missed",
                                                              household_id=household), household)
    await stack.instruction_status(application_id, commune, "settled")


async def test_a_release_that_arrives_before_its_request_wins(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    household, application_id, _ = await livelihood(stack, commune,
                                                     scheduled=date.today() + LATER)
    await supervision_event(stack, supervision_events.HOLD_RELEASED,
                            supervision_events.HoldReleasedV1(complaint_id="C-late",
                                                              household_id=household), household)
    await supervision_event(stack, supervision_events.HOLD_REQUESTED,
                            supervision_events.HoldRequestedV1(
                                complaint_id="C-late", household_id=household,
                                reason="complaint upheld, request delayed"), household)

    async def requested() -> dict | None:
        r = await stack.client.get(f"/v1/households/{household}", headers=officer)
        holds = r.json()["holds"]
        return r.json() if any(h["reason"] == "complaint upheld, request delayed"
                               for h in holds) else None

    view = await eventually(requested, message="the late request handled")
    assert view["on_hold"] is False
    assert view["holds"][0]["released_at"] is not None
    app = await stack.application(application_id, commune)
    assert app["instruction"]["status"] == "approved"
