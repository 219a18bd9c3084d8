"""Loan repayments count once: a partner that re-sends one under a new event id (after a crash)
does not inflate what the household has repaid; an unsigned one does not count at all."""

from __future__ import annotations

from tests.disbursement.conftest import Stack, new_commune
from tests.disbursement.test_statuses import refused, send_status
from tests.support.apps import auth
from tests.support.wait import eventually


async def settled_loan(stack: Stack, commune: str) -> tuple[str, str]:
    """A poor-household loan confirmed and settled by the partner: (household, instruction)."""
    members = [await stack.household(commune) for _ in range(3)]
    group_id = await stack.group(commune, members)
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    r = await stack.client.post("/v1/applications", headers=officer, json={
        "household_id": members[0], "programme_code": "VBSP-POOR-LOAN",
        "amount_vnd": 50_000_000, "term_months": 36, "purpose": "Nuôi dê",
        "group_id": group_id})
    assert r.status_code == 201, r.text
    application_id = r.json()["application_id"]
    r = await stack.client.post(f"/v1/applications/{application_id}/group-review", headers=officer,
                                json={"decision": "approve", "note": "Họp tổ: đồng ý"})
    assert r.status_code == 200, r.text
    r = await stack.client.post(f"/v1/applications/{application_id}/confirm", headers=chair)
    assert r.status_code == 201, r.text
    await stack.instruction_status(application_id, commune, "settled")
    return members[0], r.json()["instruction"]["instruction_id"]


async def test_a_repayment_sent_again_with_a_new_event_id_is_counted_once(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    household, instruction_id = await settled_loan(stack, commune)

    async def loan_where(check) -> dict | None:  # noqa: ANN001 - a predicate on the loan
        r = await stack.client.get(f"/v1/loans/{instruction_id}", headers=officer)
        return r.json() if r.status_code == 200 and check(r.json()) else None

    loan = await eventually(lambda: loan_where(lambda x: len(x["repayments"]) == 2),
                            message="the partner's two repayments recorded")
    assert loan["repaid_vnd"] == 550_000
    first = loan["repayments"][0]

    # the partner crashed and sends its first repayment again, under a fresh event id ...
    await send_status(stack, household_id=household, instruction_id=instruction_id,
                      status="repayment_received", amount_vnd=first["amount_vnd"],
                      bank_reference=first["bank_reference"])
    # ... then a genuinely new one (same key, so handled after the repeat)
    await send_status(stack, household_id=household, instruction_id=instruction_id,
                      status="repayment_received", amount_vnd=100_000,
                      bank_reference=f"{stack.partner.upper()}-NEW")

    loan = await eventually(lambda: loan_where(lambda x: any(
        p["bank_reference"] == f"{stack.partner.upper()}-NEW" for p in x["repayments"])),
        message="the new repayment recorded")
    assert loan["repaid_vnd"] == 650_000
    assert [p["bank_reference"] for p in loan["repayments"]].count(first["bank_reference"]) == 1


async def test_an_unsigned_repayment_is_dead_lettered_and_not_counted(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    household, instruction_id = await settled_loan(stack, commune)

    async def loan_where(check) -> dict | None:  # noqa: ANN001 - a predicate on the loan
        r = await stack.client.get(f"/v1/loans/{instruction_id}", headers=officer)
        return r.json() if r.status_code == 200 and check(r.json()) else None

    loan = await eventually(lambda: loan_where(lambda x: len(x["repayments"]) == 2),
                            message="the partner's two repayments recorded")
    forged = await send_status(stack, household_id=household, instruction_id=instruction_id,
                               status="repayment_received", amount_vnd=50_000_000,
                               bank_reference="FORGED-1", signed=False)
    assert (await refused(stack, forged))["reason"].startswith("unsigned bank status")
    # a signed repayment sent after it, on the same partition, is counted: the forged one was not
    await send_status(stack, household_id=household, instruction_id=instruction_id,
                      status="repayment_received", amount_vnd=100_000,
                      bank_reference=f"{stack.partner.upper()}-SIGNED")
    after = await eventually(lambda: loan_where(lambda x: len(x["repayments"]) == 3),
                             message="the signed repayment recorded")
    assert after["repaid_vnd"] == loan["repaid_vnd"] + 100_000
    assert "FORGED-1" not in {p["bank_reference"] for p in after["repayments"]}
