"""A partner's status messages: only signed ones count (unsigned or wrongly signed ones are
dead-lettered, never applied); duplicates are no-ops, out-of-order and illegal steps are
dead-lettered with the reason and never applied; reconciliation shows the mismatches."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.bank_partner.signing import SigningKey, sandbox_key, sign_status
from services.disbursement import events
from shared.envelope import Envelope
from tests.disbursement.conftest import ROTATED_KEY, Stack, admin, new_commune, new_signing_key
from tests.support.apps import auth
from tests.support.kafka import produce
from tests.support.wait import eventually


async def send_status(stack: Stack, *, household_id: str, key: SigningKey | None = None,
                      event_id: str | None = None, signed: bool = True, **data: object) -> str:
    """Publish a status as a (misbehaving) partner would, signed with `key` (the sandbox key
    unless given; `signed=False`: no signature at all); return its event id."""
    payload = events.BankInstructionStatusV1.model_validate(
        {"occurred_at": datetime.now(UTC), **data}).model_dump(mode="json", exclude_none=True)
    env = Envelope(type=events.BANK_STATUS, source=f"/partners/{stack.partner}",
                   subject=household_id, data=payload, **({"id": event_id} if event_id else {}))
    if signed:
        value, headers = sign_status(env, key=key or sandbox_key())
    else:
        value, headers = env.value(), env.headers()
    await produce(stack.bootstrap, events.status_topic(stack.partner), value=value,
                  headers=headers, key=env.key)
    return env.id


async def dead_letter(stack: Stack, event_id: str) -> dict:
    """Wait for the dead letter of one event."""

    async def find() -> dict | None:
        r = await stack.client.get("/v1/ops/dead-letters", headers=admin())
        return next((d for d in r.json() if d["event_id"] == event_id), None)

    return await eventually(find, message=f"dead letter {event_id}")


async def refused(stack: Stack, event_id: str) -> dict:
    """Wait for the dead letter of a status refused as not authentic (kept by its position: its
    claimed id is not trusted), found by the `ce_id` it claimed."""

    async def find() -> dict | None:
        r = await stack.client.get("/v1/ops/dead-letters", headers=admin())
        return next((d for d in r.json() if d["headers"].get("ce_id") == event_id), None)

    letter = await eventually(find, message=f"refused status {event_id}")
    assert letter["event_id"] != event_id
    return letter


async def livelihood(stack: Stack, commune: str, *, purpose: str = "Máy cày mini",
                     scheduled: date | None = None) -> tuple[str, str, str]:
    """An approved livelihood application: (household, application, instruction)."""
    officer = auth("commune_officer", commune)
    checker = auth("commune_officer", commune, sub="officer-checker")  # maker ≠ checker
    household = await stack.household(commune)
    r = await stack.client.post("/v1/applications", headers=officer, json={
        "household_id": household, "programme_code": "LIVELIHOOD-EQUIPMENT",
        "amount_vnd": 8_000_000, "purpose": purpose})
    assert r.status_code == 201, r.text
    application_id = r.json()["application_id"]
    body = {"scheduled_date": scheduled.isoformat()} if scheduled else None
    r = await stack.client.post(f"/v1/applications/{application_id}/approve", headers=checker,
                                json=body)
    assert r.status_code == 201, r.text
    return household, application_id, r.json()["instruction"]["instruction_id"]


async def test_a_duplicate_status_changes_nothing_but_a_second_settlement_is_reported(stack: Stack):
    commune = new_commune()
    household, application_id, instruction_id = await livelihood(stack, commune)
    settled = await stack.instruction_status(application_id, commune, "settled")
    steps = settled["instruction"]["history"]

    for status in ("accepted", "settled"):
        event_id = await send_status(stack, household_id=household, instruction_id=instruction_id,
                                     status=status, amount_vnd=8_000_000)
    # the later of the two is processed after the first on the same partition
    async def recorded() -> dict | None:
        r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}",
                                   headers=auth("commune_officer", commune))
        kinds = [m["kind"] for m in r.json()["mismatches"]]
        return r.json() if "settled_twice" in kinds else None

    report = await eventually(recorded, message="settled twice reported")
    assert report["mismatches"][0]["instruction_id"] == instruction_id
    after = await stack.application(application_id, commune)
    assert after["instruction"]["history"] == steps  # nothing applied twice
    assert after["status"] == "disbursed"
    r = await stack.client.get("/v1/ops/dead-letters", headers=admin())
    assert event_id not in {d["event_id"] for d in r.json()}


async def test_out_of_order_and_illegal_statuses_are_dead_lettered_never_applied(stack: Stack):
    commune = new_commune()
    # scheduled beyond the dispatch window: approved, never sent to the bank
    household, application_id, unsent = await livelihood(
        stack, commune, scheduled=date.today() + timedelta(days=20))
    early = await send_status(stack, household_id=household, instruction_id=unsent,
                              status="settled", amount_vnd=8_000_000)
    letter = await dead_letter(stack, early)
    assert "never sent" in letter["reason"] and unsent in letter["reason"]
    app = await stack.application(application_id, commune)
    assert app["instruction"]["status"] == "approved"

    household2, application2, rejected = await livelihood(stack, commune,
                                                          purpose="Máy bơm nước #reject")
    await stack.instruction_status(application2, commune, "rejected")
    illegal = await send_status(stack, household_id=household2, instruction_id=rejected,
                                status="settled", amount_vnd=8_000_000)
    letter = await dead_letter(stack, illegal)
    assert "illegal transition: rejected → settled" in letter["reason"]

    skipped_household, application3, sent = await livelihood(stack, commune, purpose="Máy sấy")
    settled = await stack.instruction_status(application3, commune, "settled")
    back = await send_status(stack, household_id=skipped_household, instruction_id=sent,
                             status="failed")
    letter = await dead_letter(stack, back)
    assert "settled → failed" in letter["reason"]
    assert (await stack.application(application3, commune))["instruction"]["history"] == \
        settled["instruction"]["history"]

    r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}",
                               headers=auth("commune_officer", commune))
    refused = {m["instruction_id"] for m in r.json()["mismatches"] if m["kind"] == "refused_status"}
    assert {unsent, rejected, sent} <= refused


async def test_a_status_for_an_unknown_instruction_or_a_different_amount_is_a_mismatch(
        stack: Stack):
    stranger = str(uuid.uuid4())
    unknown = await send_status(stack, household_id=str(uuid.uuid4()), instruction_id=stranger,
                                status="accepted")
    letter = await dead_letter(stack, unknown)
    assert letter["reason"] == f"unknown instruction {stranger}"
    r = await stack.client.get("/v1/reconciliation", headers=admin())
    assert any(m["kind"] == "unknown_instruction" and m["instruction_id"] == stranger
               for m in r.json()["mismatches"])

    commune = new_commune()
    # the partner settles for less than instructed: recorded as the bank reports it, flagged
    household, application_id, instruction_id = await livelihood(
        stack, commune, scheduled=date.today() + timedelta(days=20))
    r = await stack.client.post(f"/v1/instructions/{instruction_id}/reschedule",
                                headers=auth("commune_chair", commune),
                                json={"scheduled_date": date.today().isoformat()})
    assert r.status_code == 200 and r.json()["status"] == "sent", r.text
    await stack.instruction_status(application_id, commune, "settled")
    await send_status(stack, household_id=household, instruction_id=instruction_id,
                      status="reversed", reason_code="paid_to_wrong_account")
    await stack.instruction_status(application_id, commune, "reversed")
    r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}&format=csv",
                               headers=auth("commune_officer", commune))
    assert "status,reversed,1,8000000,8000000" in r.text


async def test_an_unsigned_reversal_is_dead_lettered_and_changes_nothing(stack: Stack):
    commune = new_commune()
    household, application_id, instruction_id = await livelihood(stack, commune)
    settled = await stack.instruction_status(application_id, commune, "settled")

    # anyone with write access to the topic: a reversal (a legal next step), unsigned
    forged = await send_status(stack, household_id=household, instruction_id=instruction_id,
                               status="reversed", signed=False)
    letter = await refused(stack, forged)
    assert letter["reason"] == "unsigned bank status (no ev_signature header)"
    assert letter["parked_behind"] is None
    app = await stack.application(application_id, commune)
    assert app["instruction"]["status"] == "settled"
    assert app["instruction"]["history"] == settled["instruction"]["history"]

    # the same status, signed, under the same id: the forgery neither took its id in the inbox
    # nor holds the household's key, so the genuine one is applied
    await send_status(stack, household_id=household, instruction_id=instruction_id,
                      status="reversed", event_id=forged, reason_code="paid_to_wrong_account")
    await stack.instruction_status(application_id, commune, "reversed")


async def test_a_status_signed_with_another_key_is_dead_lettered_and_the_next_key_verifies(
        stack: Stack):
    commune = new_commune()
    household, application_id, instruction_id = await livelihood(stack, commune)
    settled = await stack.instruction_status(application_id, commune, "settled")

    # a key the partner never registered, posing under the sandbox key's id ...
    impostor = new_signing_key(sandbox_key().kid)
    wrong = await send_status(stack, household_id=household, instruction_id=instruction_id,
                              status="reversed", key=impostor)
    letter = await refused(stack, wrong)
    assert letter["reason"].startswith(f"signature does not verify for key {impostor.kid}")
    # ... or under its own id
    unknown = await send_status(stack, household_id=household, instruction_id=instruction_id,
                                status="reversed", key=new_signing_key("vbsp-2099-01"))
    letter = await refused(stack, unknown)
    assert letter["reason"].startswith("bank status signed with unknown key 'vbsp-2099-01'")
    app = await stack.application(application_id, commune)
    assert app["instruction"]["history"] == settled["instruction"]["history"]

    # the partner's next key, registered next to the current one (rotation): applied
    await send_status(stack, household_id=household, instruction_id=instruction_id,
                      status="reversed", key=ROTATED_KEY, reason_code="paid_to_wrong_account")
    await stack.instruction_status(application_id, commune, "reversed")
