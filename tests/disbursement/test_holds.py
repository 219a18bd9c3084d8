"""Complaint holds from supervision: unsent instructions wait; release resumes them."""

from __future__ import annotations

from datetime import date, timedelta

from services.supervision import events as supervision_events
from shared.envelope import Envelope
from tests.disbursement.conftest import Stack, new_commune
from tests.disbursement.test_statuses import livelihood
from tests.support.apps import auth
from tests.support.kafka import collect, header, produce_event
from tests.support.wait import eventually


async def supervision_event(stack: Stack, type: str, payload: object, household_id: str) -> None:
    """Publish on supervision.events as supervision would."""
    await produce_event(stack.bootstrap, supervision_events.TOPIC, Envelope(
        type=type, source=supervision_events.SOURCE, subject=household_id,
        data=payload.model_dump(mode="json")))  # type: ignore[attr-defined]


async def test_a_hold_keeps_the_instruction_from_the_bank_until_it_is_released(stack: Stack):
    commune = new_commune()
    chair = auth("commune_chair", commune)
    household, application_id, instruction_id = await livelihood(
        stack, commune, scheduled=date.today() + timedelta(days=30))
    assert (await stack.application(application_id, commune))["instruction"]["status"] == "approved"

    await supervision_event(stack, supervision_events.HOLD_REQUESTED,
                            supervision_events.HoldRequestedV1(
                                complaint_id="C-1", household_id=household,
                                reason="payment_not_received complaint upheld",
                                actor="commune_officer:x"), household)
    held = await stack.instruction_status(application_id, commune, "on_hold")
    assert "C-1" in held["instruction"]["history"][-1]["reason"]

    # the disbursement day arrives while held: still nothing goes to the bank
    r = await stack.client.post(f"/v1/instructions/{instruction_id}/reschedule", headers=chair,
                                json={"scheduled_date": date.today().isoformat()})
    assert r.status_code == 200 and r.json()["status"] == "on_hold"
    r = await stack.client.post(f"/v1/instructions/{instruction_id}/cancel", headers=chair,
                                json={"reason": "x"})
    assert r.status_code == 422  # reason too short: the field is named
    assert r.json()["errors"][0]["field"] == "reason"

    await supervision_event(stack, supervision_events.HOLD_RELEASED,
                            supervision_events.HoldReleasedV1(complaint_id="C-1",
                                                              household_id=household), household)
    done = await stack.instruction_status(application_id, commune, "settled")
    steps = [s["status"] for s in done["instruction"]["history"]]
    assert steps[:2] == ["approved", "on_hold"]
    assert steps[-4:] == ["approved", "sent", "accepted", "settled"]

    records = await collect(stack.bootstrap, "disbursement.events",
                            until=lambda rs: sum(header(r, "ce_subject") == household
                                                 and "hold" in (header(r, "ce_type") or "")
                                                 for r in rs) >= 2)
    holds = [header(r, "ce_type") for r in records if header(r, "ce_subject") == household
             and "hold" in (header(r, "ce_type") or "")]
    assert holds == ["disbursement.hold.applied.v1", "disbursement.hold.released.v1"]


async def test_an_instruction_issued_during_a_hold_is_born_on_hold_and_can_be_cancelled(
        stack: Stack):
    commune = new_commune()
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    checker = auth("commune_officer", commune, sub="officer-checker")  # maker ≠ checker
    household = await stack.household(commune)
    await supervision_event(stack, supervision_events.HOLD_REQUESTED,
                            supervision_events.HoldRequestedV1(complaint_id="C-2",
                                                               household_id=household,
                                                               reason="misconduct"), household)

    async def held() -> bool:
        r = await stack.client.get(f"/v1/households/{household}", headers=officer)
        return r.json()["on_hold"]

    await eventually(held, message="hold recorded")
    r = await stack.client.post("/v1/applications", headers=officer, json={
        "household_id": household, "programme_code": "VOCATIONAL-TRAINING-VOUCHER",
        "amount_vnd": 3_000_000, "purpose": "Học nghề sửa xe máy"})
    application_id = r.json()["application_id"]

    r = await stack.client.post(f"/v1/applications/{application_id}/approve", headers=checker)
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["instruction"]["status"] == "on_hold"
    instruction_id = app["instruction"]["instruction_id"]
    r = await stack.client.post(f"/v1/instructions/{instruction_id}/cancel", headers=chair,
                                json={"reason": "Hộ dân chuyển đi nơi khác"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    app = await stack.application(application_id, commune)
    assert app["status"] == "cancelled"
    r = await stack.client.get(f"/v1/budgets?commune_code={commune}"
                               "&programme_code=VOCATIONAL-TRAINING-VOUCHER", headers=officer)
    assert r.json()[0]["committed_vnd"] == 0


async def test_a_hold_from_another_communes_complaint_is_dead_lettered(stack: Stack):
    """A complaint of one commune cannot hold a household of another (checked at both ends)."""
    from tests.disbursement.test_statuses import dead_letter

    commune = new_commune()
    household, application_id, _ = await livelihood(
        stack, commune, scheduled=date.today() + timedelta(days=30))
    hold = Envelope(type=supervision_events.HOLD_REQUESTED, source=supervision_events.SOURCE,
                    subject=household, data=supervision_events.HoldRequestedV1(
                        complaint_id="C-elsewhere", household_id=household,
                        reason="misconduct complaint upheld", commune_code=new_commune(),
                    ).model_dump(mode="json"))
    await produce_event(stack.bootstrap, supervision_events.TOPIC, hold)
    letter = await dead_letter(stack, hold.id)
    assert f"is in commune {commune}" in letter["reason"]
    seen = (await stack.client.get(f"/v1/households/{household}",
                                   headers=auth("commune_officer", commune))).json()
    assert seen["on_hold"] is False and seen["holds"] == []
    assert (await stack.application(application_id, commune))["instruction"]["status"] == "approved"
