"""Loans and livelihood support driven end to end through the reference partner."""

from __future__ import annotations

from tests.disbursement.conftest import Stack, new_commune
from tests.support.apps import auth
from tests.support.kafka import collect, header


async def test_a_loan_goes_from_application_to_settled_with_a_schedule(stack: Stack):
    commune = new_commune()
    members = [await stack.household(commune) for _ in range(3)]
    group_id = await stack.group(commune, members)
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)

    r = await stack.client.post("/v1/applications", headers=officer, json={
        "household_id": members[0], "programme_code": "VBSP-POOR-LOAN",
        "amount_vnd": 50_000_000, "term_months": 36, "purpose": "Nuôi bò sinh sản",
        "group_id": group_id})
    assert r.status_code == 201, r.text
    application_id = r.json()["application_id"]
    assert r.json()["status"] == "submitted"

    # maker ≠ checker: the chair who records the group review may not also confirm the loan
    chair_minh = auth("commune_chair", commune, sub="chair-minh")
    r = await stack.client.post(f"/v1/applications/{application_id}/group-review",
                                headers=chair_minh,
                                json={"decision": "approve", "note": "Họp tổ 12/3: 11/12 đồng ý"})
    assert r.status_code == 200, r.text and r.json()["status"] == "reviewed"
    r = await stack.client.post(f"/v1/applications/{application_id}/confirm", headers=chair_minh)
    assert r.status_code == 403 and r.json()["code"] == "maker_checker", r.text
    # nor may the officer who submitted it, acting as chair under the same identity
    r = await stack.client.post(f"/v1/applications/{application_id}/confirm",
                                headers=auth("commune_chair", commune, sub="dev-commune_officer"))
    assert r.status_code == 403 and r.json()["code"] == "maker_checker", r.text
    r = await stack.client.post(f"/v1/applications/{application_id}/confirm", headers=chair)
    assert r.status_code == 201, r.text
    instruction_id = r.json()["instruction"]["instruction_id"]

    app = await stack.instruction_status(application_id, commune, "settled")
    assert app["status"] == "disbursed"
    assert [h["status"] for h in app["history"]] == ["submitted", "reviewed", "confirmed",
                                                     "disbursed"]
    steps = app["instruction"]["history"]
    assert [s["status"] for s in steps] == ["approved", "sent", "accepted", "settled"]
    assert all(s["at"] and s["reason"] for s in steps)
    assert steps[-1]["bank_reference"].startswith(stack.partner.upper())

    again = await stack.client.post(f"/v1/applications/{application_id}/confirm", headers=chair)
    assert again.status_code == 200
    assert again.json()["instruction"]["instruction_id"] == instruction_id

    records = await collect(stack.bootstrap, f"disbursement.instructions.{stack.partner}",
                            until=lambda rs: any(header(r, "ce_subject") == instruction_id
                                                 for r in rs))
    sent = [r for r in records if header(r, "ce_subject") == instruction_id]
    assert len({r.value for r in sent}) == 1
    # keyed by the instruction: the bank never sees the internal household id
    assert sent[0].key == instruction_id.encode()
    assert not any(members[0] in (r.value + (r.key or b"")).decode() for r in records)
    assert header(sent[0], "ce_type") == "disbursement.instruction.issued.v1"
    body = sent[0].value.decode()
    assert '"beneficiary_reference":"BR-' in body and "national_id" not in body
    assert '"annual_rate_pct":6.6' in body and '"term_months":36' in body

    async def repaid() -> dict | None:
        r = await stack.client.get(f"/v1/loans/{instruction_id}", headers=officer)
        return r.json() if r.status_code == 200 and r.json()["repaid_vnd"] == 550_000 else None

    from tests.support.wait import eventually

    loan = await eventually(repaid, message="two monthly interest repayments recorded")
    assert loan["principal_vnd"] == 50_000_000
    assert len(loan["schedule"]) == 36
    assert loan["schedule"][0]["interest_vnd"] == 275_000  # 50M × 6.6% / 12
    assert loan["schedule"][-1]["principal_vnd"] == 50_000_000
    assert loan["overdue"] is False and loan["overdue_rate_pct"] == 8.58
    assert loan["outstanding_principal_vnd"] == 50_000_000


async def test_the_partner_rejects_or_fails_and_the_budget_comes_back(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    checker = auth("commune_officer", commune, sub="officer-checker")  # maker ≠ checker
    ids = {}
    for outcome in ("reject", "fail"):
        household = await stack.household(commune)
        r = await stack.client.post("/v1/applications", headers=officer, json={
            "household_id": household, "programme_code": "LIVELIHOOD-LIVESTOCK",
            "amount_vnd": 12_000_000, "purpose": f"Giống lợn #{outcome}"})
        assert r.status_code == 201, r.text
        ids[outcome] = r.json()["application_id"]
        r = await stack.client.post(f"/v1/applications/{ids[outcome]}/approve", headers=officer)
        assert r.status_code == 403 and r.json()["code"] == "maker_checker", r.text
        r = await stack.client.post(f"/v1/applications/{ids[outcome]}/approve", headers=checker)
        assert r.status_code == 201, r.text

    rejected = await stack.instruction_status(ids["reject"], commune, "rejected")
    assert rejected["status"] == "not_disbursed"
    assert rejected["instruction"]["history"][-1]["reason"] == "beneficiary_not_verified"
    failed = await stack.instruction_status(ids["fail"], commune, "failed")
    assert [s["status"] for s in failed["instruction"]["history"]] == [
        "approved", "sent", "accepted", "failed"]
    budgets = await stack.client.get(f"/v1/budgets?commune_code={commune}"
                                     "&programme_code=LIVELIHOOD-LIVESTOCK", headers=officer)
    assert budgets.json()[0]["committed_vnd"] == 0


async def test_reconciliation_counts_per_status_and_exports_csv(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    checker = auth("commune_officer", commune, sub="officer-checker")  # maker ≠ checker
    for purpose in ("Hạt giống ngô", "Hạt giống lúa #reject"):
        household = await stack.household(commune)
        r = await stack.client.post("/v1/applications", headers=officer, json={
            "household_id": household, "programme_code": "LIVELIHOOD-SEED",
            "amount_vnd": 4_000_000, "purpose": purpose})
        application_id = r.json()["application_id"]
        await stack.client.post(f"/v1/applications/{application_id}/approve", headers=checker)
        await stack.instruction_status(application_id, commune,
                                       "rejected" if "#reject" in purpose else "settled")
    r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}", headers=officer)
    assert r.status_code == 200
    by_status = {s["status"]: s for s in r.json()["by_status"]}
    assert by_status["settled"] == {"status": "settled", "count": 1, "amount_vnd": 4_000_000,
                                    "settled_amount_vnd": 4_000_000}
    assert by_status["rejected"]["count"] == 1
    assert r.json()["mismatches"] == []
    csv = await stack.client.get(f"/v1/reconciliation?commune_code={commune}",
                                 headers=officer | {"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("section,status_or_kind,count,amount_vnd")
    assert "status,settled,1,4000000,4000000,,,," in lines
    other = await stack.client.get(f"/v1/reconciliation?commune_code={commune}",
                                   headers=auth("commune_officer", new_commune()))
    assert other.json()["by_status"] == []
