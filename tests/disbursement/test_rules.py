"""Application rules: every refusal is a 422 naming the field and the reason; concurrency never
breaks the budget or the one-instruction rule."""

from __future__ import annotations

import asyncio

from tests.disbursement.conftest import ALL_PROGRAMMES, Stack, admin, new_commune
from tests.support.apps import auth


async def loan(stack: Stack, officer: dict, **body: object):
    """POST an application with defaults of a poor-household loan."""
    return await stack.client.post("/v1/applications", headers=officer, json={
        "programme_code": "VBSP-POOR-LOAN", "amount_vnd": 30_000_000, "term_months": 24,
        "purpose": "Trồng quế", **body})


def refusal(r) -> tuple[str, str]:  # noqa: ANN001
    """(field, code) of a 422."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()["errors"][0]["field"], r.json().get("code") or r.json()["errors"][0]["type"]


async def test_each_reason_an_application_is_refused_is_named(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    members = [await stack.household(commune) for _ in range(3)]
    outsider = await stack.household(commune, village="Thôn Hai")
    not_poor = await stack.household(commune, eligible=("LIVELIHOOD-MODEL",))
    small = await stack.group(commune, members[:2])

    assert refusal(await loan(stack, officer, household_id=members[0], group_id=small)) == (
        "group_id", "group_too_small")
    r = await stack.client.post(f"/v1/groups/{small}/members", headers=officer,
                                json={"household_id": outsider})
    assert refusal(r) == ("household_id", "other_village")
    r = await stack.client.post(f"/v1/groups/{small}/members", headers=officer,
                                json={"household_id": members[2]})
    assert r.status_code == 201 and r.json()["takes_applications"] is True
    group = small

    assert refusal(await loan(stack, officer, household_id=outsider, group_id=group)) == (
        "group_id", "not_group_member")
    r = await loan(stack, officer, household_id=not_poor, group_id=group)
    assert refusal(r) == ("household_id", "not_eligible")
    assert "the household is not recognized poor" in r.json()["detail"]
    assert refusal(await loan(stack, officer, household_id=members[0], group_id=group,
                              amount_vnd=100_000_001)) == ("amount_vnd", "above_ceiling")
    assert refusal(await loan(stack, officer, household_id=members[0], group_id=group,
                              term_months=121)) == ("term_months", "above_max_term")
    assert refusal(await loan(stack, officer, household_id=members[0], group_id=group,
                              programme_code="VBSP-ESCAPED-LOAN", term_months=61)) == (
        "term_months", "above_max_term")
    assert refusal(await loan(stack, officer, household_id=members[0], group_id=group,
                              programme_code="NO-SUCH")) == ("programme_code",
                                                             "unknown_programme")
    assert refusal(await loan(stack, officer, household_id=members[0], amount_vnd=-5)) == (
        "amount_vnd", "greater_than")

    first = await loan(stack, officer, household_id=members[0], group_id=group)
    assert first.status_code == 201, first.text
    again = await loan(stack, officer, household_id=members[0], group_id=group)
    assert refusal(again) == ("programme_code", "open_application")
    assert again.json()["application_id"] == first.json()["application_id"]

    # a chair cannot confirm before the group meeting; out of scope is 404
    application_id = first.json()["application_id"]
    r = await stack.client.post(f"/v1/applications/{application_id}/confirm",
                                headers=auth("commune_chair", commune))
    assert r.status_code == 409 and r.json()["code"] == "wrong_status"
    r = await stack.client.get(f"/v1/applications/{application_id}",
                               headers=auth("commune_officer", new_commune()))
    assert r.status_code == 404
    r = await stack.client.post(f"/v1/applications/{application_id}/group-review",
                                headers=auth("commune_chair", "99999"),
                                json={"decision": "approve", "note": "ok"})
    assert r.status_code == 404


async def test_budget_exhausted_is_refused_at_submission(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    # a commune disbursement has not heard of is unknown, whatever province the body claims
    r = await stack.client.put(f"/v1/budgets/LIVELIHOOD-CASH-GRANT/{commune}",
                               headers=auth("province_officer", commune[:2]),
                               json={"total_vnd": 5_000_000, "province_code": commune[:2]})
    assert r.status_code == 404, r.text
    household = await stack.household(commune)
    r = await stack.client.put(f"/v1/budgets/LIVELIHOOD-CASH-GRANT/{commune}", headers=admin(),
                               json={"total_vnd": 5_000_000})
    assert r.status_code == 200 and r.json()["remaining_vnd"] == 5_000_000
    r = await stack.client.put(f"/v1/budgets/LIVELIHOOD-CASH-GRANT/{commune}",
                               headers=auth("commune_officer", commune), json={"total_vnd": 1})
    assert r.status_code == 403
    r = await stack.client.post("/v1/applications", headers=officer, json={
        "household_id": household, "programme_code": "LIVELIHOOD-CASH-GRANT",
        "amount_vnd": 6_000_000, "purpose": "Mở quán tạp hoá"})
    assert refusal(r) == ("amount_vnd", "budget_exhausted")


async def test_concurrent_approvals_never_spend_more_than_the_budget(stack: Stack):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    checker = auth("commune_officer", commune, sub="officer-checker")  # maker ≠ checker
    households = await asyncio.gather(*(stack.household(commune, eligible=ALL_PROGRAMMES)
                                        for _ in range(8)))
    r = await stack.client.put(f"/v1/budgets/LIVELIHOOD-CASH-GRANT/{commune}", headers=admin(),
                               json={"total_vnd": 15_000_000})
    assert r.status_code == 200
    ids = []
    for household in households:
        r = await stack.client.post("/v1/applications", headers=officer, json={
            "household_id": household, "programme_code": "LIVELIHOOD-CASH-GRANT",
            "amount_vnd": 5_000_000, "purpose": "Chăn nuôi gà"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["application_id"])

    # every approval at once, and each one twice (a double click, a retry)
    results = await asyncio.gather(*(
        stack.client.post(f"/v1/applications/{i}/approve", headers=checker) for i in ids * 2))
    codes = sorted(r.status_code for r in results)
    issued = [r for r in results if r.status_code in (200, 201)]
    refused = [r for r in results if r.status_code == 422]
    assert codes.count(201) == 3, codes
    assert {r.json()["code"] for r in refused} == {"budget_exhausted"}
    assert len({r.json()["instruction"]["instruction_id"] for r in issued}) == 3

    r = await stack.client.get(f"/v1/budgets?commune_code={commune}"
                               "&programme_code=LIVELIHOOD-CASH-GRANT", headers=officer)
    assert r.json()[0]["committed_vnd"] == 15_000_000
    assert r.json()[0]["remaining_vnd"] == 0
    listed = await stack.client.get(f"/v1/applications?commune_code={commune}&status=approved",
                                    headers=officer)
    assert len(listed.json()) <= 3
    r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}", headers=officer)
    assert r.json()["totals"]["count"] == 3
    assert r.json()["totals"]["amount_vnd"] == 15_000_000
