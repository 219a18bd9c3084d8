"""Loan restructuring after a shock, over the real broker and database with the reference
partner: exposure → request → group review → confirmation → `restructure` instruction → applied
→ the loan's schedule changed and the reconciliation shows it; refusals store nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

from services.disbursement.domain.loans import add_months
from services.eligibility import events as eligibility_events
from shared.envelope import Envelope
from tests.disbursement.conftest import Stack, new_commune
from tests.support.apps import auth
from tests.support.kafka import collect, header, produce_event
from tests.support.wait import eventually


async def settled_loan(stack: Stack, commune: str, household: str, group_id: str, *,
                       purpose: str = "Nuôi bò sinh sản", status: str = "settled",
                       programme: str = "VBSP-POOR-LOAN") -> str:
    """A 36-month loan of 50M VND taken through the group to `status`; its instruction id."""
    officer = auth("commune_officer", commune)
    r = await stack.client.post("/v1/applications", headers=officer, json={
        "household_id": household, "programme_code": programme,
        "amount_vnd": 50_000_000, "term_months": 36, "purpose": purpose, "group_id": group_id})
    assert r.status_code == 201, r.text
    application_id = r.json()["application_id"]
    r = await stack.client.post(f"/v1/applications/{application_id}/group-review",
                                headers=auth("commune_chair", commune, sub="chair-minh"),
                                json={"decision": "approve", "note": "Họp tổ: đồng ý"})
    assert r.status_code == 200, r.text
    r = await stack.client.post(f"/v1/applications/{application_id}/confirm",
                                headers=auth("commune_chair", commune))
    assert r.status_code == 201, r.text
    app = await stack.instruction_status(application_id, commune, status)
    instruction_id: str = app["instruction"]["instruction_id"]
    if status == "settled":
        async def opened() -> bool:
            r = await stack.client.get(f"/v1/loans/{instruction_id}", headers=officer)
            return r.status_code == 200
        await eventually(opened, message="loan opened")
    return instruction_id


async def exposed(stack: Stack, commune: str, household: str, shock_id: str) -> str:
    """Eligibility opens an ad-hoc review of the household for the shock; wait until projected;
    the review event's id."""
    review = eligibility_events.ReviewOpenedV1(
        review_id=str(uuid.uuid4()), household_id=household, shock_id=shock_id,
        shock_type="flood", shock_title="Lũ quét tháng 10", occurred_on=date.today(),
        due_on=add_months(date.today(), 1), commune_code=commune,
        opened_at=datetime.now(UTC))
    event = Envelope(type=eligibility_events.REVIEW_OPENED, source=eligibility_events.SOURCE,
                     subject=household, data=review.model_dump(mode="json"))
    await produce_event(stack.bootstrap, eligibility_events.TOPIC, event)

    async def projected() -> bool:
        r = await stack.client.get(f"/v1/households/{household}",
                                   headers=auth("commune_officer", commune))
        return any(s["shock_id"] == shock_id for s in r.json()["shocks"])

    await eventually(projected, message="shock exposure projected")
    return event.id


async def stored(stack: Stack, commune: str, loan_id: str) -> list[dict]:
    r = await stack.client.get(f"/v1/loans/{loan_id}/restructurings",
                               headers=auth("commune_officer", commune))
    assert r.status_code == 200, r.text
    return r.json()


async def through_the_group(stack: Stack, commune: str, loan_id: str, body: dict) -> str:
    """Request (officer) and group review (another officer); the restructuring id."""
    r = await stack.client.post(f"/v1/loans/{loan_id}/restructurings",
                                headers=auth("commune_officer", commune), json=body)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/v1/restructurings/{r.json()['restructuring_id']}"
    restructuring_id: str = r.json()["restructuring_id"]
    r = await stack.client.post(f"/v1/restructurings/{restructuring_id}/group-review",
                                headers=auth("commune_officer", commune, sub="officer-hoa"),
                                json={"decision": "approve", "note": "Họp tổ 20/10: đồng ý"})
    assert r.status_code == 200 and r.json()["status"] == "reviewed", r.text
    return restructuring_id


async def applied(stack: Stack, commune: str, restructuring_id: str) -> dict:
    async def done() -> dict | None:
        r = await stack.client.get(f"/v1/restructurings/{restructuring_id}",
                                   headers=auth("commune_officer", commune))
        return r.json() if r.json()["status"] == "applied" else None
    return await eventually(done, timeout=20, message="restructuring applied")


async def test_a_flooded_borrower_gets_an_extension_then_a_freeze_and_the_bank_applies_both(
        stack: Stack):
    commune = new_commune()
    members = [await stack.household(commune) for _ in range(3)]
    group_id = await stack.group(commune, members)
    loan_id = await settled_loan(stack, commune, members[0], group_id)
    shock_id = f"sh-{uuid.uuid4().hex[:8]}"
    review_event_id = await exposed(stack, commune, members[0], shock_id)
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    before = (await stack.client.get(f"/v1/loans/{loan_id}", headers=officer)).json()

    restructuring_id = await through_the_group(stack, commune, loan_id, {
        "option": "extension", "months": 6, "shock_id": shock_id,
        "reason": "Lũ cuốn trôi chuồng bò, mất 2 con bò"})
    # maker ≠ checker: the group's reviewer and the requester (as chair) may not confirm
    for sub in ("officer-hoa", "dev-commune_officer"):
        r = await stack.client.post(f"/v1/restructurings/{restructuring_id}/confirm",
                                    headers=auth("commune_chair", commune, sub=sub))
        assert r.status_code == 403 and r.json()["code"] == "maker_checker", r.text
    r = await stack.client.post(f"/v1/restructurings/{restructuring_id}/confirm", headers=chair)
    assert r.status_code == 201, r.text
    instruction = r.json()["instruction"]
    assert instruction["kind"] == "restructure" and instruction["amount_vnd"] == 0
    again = await stack.client.post(f"/v1/restructurings/{restructuring_id}/confirm",
                                    headers=chair)
    assert again.status_code == 200
    assert again.json()["instruction"]["instruction_id"] == instruction["instruction_id"]

    done = await applied(stack, commune, restructuring_id)
    assert [s["status"] for s in done["instruction"]["history"]] == [
        "approved", "sent", "accepted", "settled"]
    loan = (await stack.client.get(f"/v1/loans/{loan_id}", headers=officer)).json()
    disbursed_on = date.fromisoformat(loan["disbursed_on"])
    assert loan["term_months"] == 42 and len(loan["schedule"]) == 42
    assert loan["maturity_date"] == add_months(disbursed_on, 42).isoformat() == done[
        "new_maturity_date"] != before["maturity_date"]
    assert loan["schedule"][-1]["principal_vnd"] == 50_000_000
    assert loan["schedule"][35]["principal_vnd"] == 0  # no longer due at month 36
    assert loan["restructured_at"]
    # the loan's own application and disbursement are untouched
    app = (await stack.client.get(f"/v1/applications/{loan['application_id']}",
                                  headers=officer)).json()
    assert app["status"] == "disbursed" and app["instruction"]["instruction_id"] == loan_id

    # the partner read the new schedule on its instructions topic, keyed by the instruction
    iid = instruction["instruction_id"]
    records = await collect(stack.bootstrap, f"disbursement.instructions.{stack.partner}",
                            until=lambda rs: any(header(r, "ce_subject") == iid for r in rs))
    [sent] = [json.loads(r.value) for r in records if header(r, "ce_subject") == iid]
    assert sent["kind"] == "restructure" and sent["amount_vnd"] == 0
    assert sent["restructure"]["loan_instruction_id"] == loan_id
    assert sent["restructure"]["new_maturity_date"] == loan["maturity_date"]

    # on the household's record: the request is caused by the shock's review (timeline tree)
    told = await collect(stack.bootstrap, "disbursement.events", until=lambda rs: any(
        header(r, "ce_type") == "disbursement.restructuring.applied.v1"
        and json.loads(r.value)["restructuring_id"] == restructuring_id for r in rs))
    ours = {header(r, "ce_type"): r for r in told
            if json.loads(r.value).get("restructuring_id") == restructuring_id}
    assert set(ours) == {f"disbursement.restructuring.{s}.v1"
                         for s in ("requested", "reviewed", "confirmed", "applied")}
    assert header(ours["disbursement.restructuring.requested.v1"],
                  "ce_causationid") == review_event_id
    assert all(header(r, "ce_subject") == members[0] for r in ours.values())

    # then a freeze of 3 months: no interest on the instalments due in that time
    freeze_id = await through_the_group(stack, commune, loan_id, {
        "option": "interest_freeze", "months": 3, "shock_id": shock_id,
        "reason": "Mất mùa lúa do ngập"})
    r = await stack.client.post(f"/v1/restructurings/{freeze_id}/confirm", headers=chair)
    assert r.status_code == 201, r.text
    frozen = await applied(stack, commune, freeze_id)
    loan = (await stack.client.get(f"/v1/loans/{loan_id}", headers=officer)).json()
    start, end = frozen["interest_frozen_from"], frozen["interest_frozen_until"]
    assert (loan["interest_frozen_from"], loan["interest_frozen_until"]) == (start, end)
    inside = [i for i in loan["schedule"] if start <= i["due_date"] < end]
    assert inside and all(i["interest_vnd"] == 0 for i in inside)
    assert all(i["interest_vnd"] == 275_000 for i in loan["schedule"] if i not in inside)
    assert loan["term_months"] == 42  # the extension stays

    report = (await stack.client.get(f"/v1/reconciliation?commune_code={commune}",
                                     headers=officer)).json()
    assert report["restructured"]["count"] == 2
    assert {(x["loan_instruction_id"], x["option"]) for x in report["restructured"]["loans"]} == {
        (loan_id, "extension"), (loan_id, "interest_freeze")}
    # restructure instructions move no money: the money section counts the one loan
    assert report["totals"]["count"] == 1 and report["totals"]["amount_vnd"] == 50_000_000
    csv = (await stack.client.get(f"/v1/reconciliation?commune_code={commune}&format=csv",
                                  headers=officer)).text
    assert f"restructured,extension,1,,,{loan_id}" in csv


async def test_bad_restructuring_requests_are_refused_with_the_reason_and_store_nothing(
        stack: Stack):
    commune = new_commune()
    members = [await stack.household(commune) for _ in range(3)]
    group_id = await stack.group(commune, members)
    loan_id = await settled_loan(stack, commune, members[0], group_id)
    outside_id = await settled_loan(stack, commune, members[1], group_id)
    rejected_id = await settled_loan(stack, commune, members[2], group_id,
                                     purpose="Mua máy cày #reject", status="rejected")
    shock_id = f"sh-{uuid.uuid4().hex[:8]}"
    await exposed(stack, commune, members[0], shock_id)
    officer = auth("commune_officer", commune)
    good = {"option": "extension", "months": 6, "shock_id": shock_id, "reason": "Lũ quét"}

    async def refused(loan: str, body: dict, status: int, code: str | None, field: str | None,
                      headers: dict | None = None) -> None:
        r = await stack.client.post(f"/v1/loans/{loan}/restructurings",
                                    headers=headers or officer, json=body)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers
        if code:
            assert r.json()["code"] == code, r.text
        if field:
            assert field in {e.get("field") or e.get("loc", [None])[-1]
                             for e in r.json()["errors"]}, r.text

    # a loan outside the shock's area: the household was not exposed to it
    await refused(outside_id, good, 422, "not_exposed", "shock_id")
    await refused(loan_id, good | {"shock_id": "sh-unknown"}, 422, "not_exposed", "shock_id")
    # beyond the option's maximum (12 months, restructuring.yaml)
    await refused(loan_id, good | {"months": 13}, 422, "above_max_months", "months")
    await refused(loan_id, good | {"option": "interest_freeze", "months": 24}, 422,
                  "above_max_months", "months")
    await refused(loan_id, good | {"option": "write_off"}, 422, None, "option")
    # no settled loan behind the instruction: the partner rejected it
    await refused(rejected_id, good, 409, "loan_not_settled", None)
    # outside the officer's scope, or no such loan: 404 like every other read
    await refused(loan_id, good, 404, None, None, headers=auth("commune_officer", new_commune()))
    await refused(str(uuid.uuid4()), good, 404, None, None)
    for loan in (loan_id, outside_id):
        assert await stored(stack, commune, loan) == []

    # one restructuring at a time per loan; a review only of a requested one
    r = await stack.client.post(f"/v1/loans/{loan_id}/restructurings", headers=officer, json=good)
    assert r.status_code == 201, r.text
    restructuring_id = r.json()["restructuring_id"]
    await refused(loan_id, good, 409, "open_restructuring", None)
    r = await stack.client.post(f"/v1/restructurings/{restructuring_id}/confirm",
                                headers=auth("commune_chair", commune))
    assert r.status_code == 409 and r.json()["code"] == "wrong_status", r.text
    r = await stack.client.post(f"/v1/restructurings/{restructuring_id}/group-review",
                                headers=auth("commune_chair", commune, sub="chair-minh"),
                                json={"decision": "reject", "note": "Thiệt hại chưa xác minh"})
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    [only] = await stored(stack, commune, loan_id)
    assert only["status"] == "rejected" and only["instruction"] is None
    loan = (await stack.client.get(f"/v1/loans/{loan_id}", headers=officer)).json()
    assert loan["term_months"] == 36 and loan["restructured_at"] is None


async def test_a_restructure_the_bank_rejects_leaves_the_loan_as_it_was_and_can_be_asked_again(
        stack: Stack):
    commune = new_commune()
    members = [await stack.household(commune) for _ in range(3)]
    group_id = await stack.group(commune, members)
    loan_id = await settled_loan(stack, commune, members[0], group_id)
    # the sandbox partner rejects an instruction whose purpose says #reject (it names the shock)
    shock_id = f"sh-{uuid.uuid4().hex[:8]}#reject"
    await exposed(stack, commune, members[0], shock_id)
    officer = auth("commune_officer", commune)
    options = (await stack.client.get("/v1/restructuring-options", headers=officer)).json()
    assert {o["code"]: o["max_months"] for o in options} == {"extension": 12,
                                                            "interest_freeze": 12}
    assert all(o["unconfirmed"] == ["max_months"] for o in options)

    body = {"option": "extension", "months": 12, "shock_id": shock_id, "reason": "Lũ quét"}
    restructuring_id = await through_the_group(stack, commune, loan_id, body)
    r = await stack.client.post(f"/v1/restructurings/{restructuring_id}/confirm",
                                headers=auth("commune_chair", commune))
    assert r.status_code == 201, r.text

    async def answered() -> dict | None:
        r = await stack.client.get(f"/v1/restructurings/{restructuring_id}", headers=officer)
        return r.json() if r.json()["status"] == "not_applied" else None

    done = await eventually(answered, message="restructuring not applied")
    assert done["instruction"]["status"] == "rejected"
    loan = (await stack.client.get(f"/v1/loans/{loan_id}", headers=officer)).json()
    assert loan["term_months"] == 36 and loan["restructured_at"] is None
    app = (await stack.client.get(f"/v1/applications/{loan['application_id']}",
                                  headers=officer)).json()
    assert app["status"] == "disbursed"  # the loan's own application is not "not_disbursed"
    report = (await stack.client.get(f"/v1/reconciliation?commune_code={commune}",
                                     headers=officer)).json()
    assert report["restructured"] == {"count": 0, "loans": []}
    # no longer in progress: the borrower may ask again
    r = await stack.client.post(f"/v1/loans/{loan_id}/restructurings", headers=officer,
                                json=body | {"months": 3})
    assert r.status_code == 201, r.text
