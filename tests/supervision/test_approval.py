"""Approval with complaints carried over, and a household found after a complaint that it was
not on the list (upheld → the registry is asked to verify it)."""

from __future__ import annotations

from services.supervision import events
from services.supervision.handlers.common import service_of
from tests.supervision.conftest import Sup, new_commune
from tests.supervision.test_postings import of_type
from tests.support.apps import auth
from tests.support.kafka import collect


async def test_carry_over_and_a_household_found_after_a_not_on_the_list_complaint(sup: Sup):
    commune = new_commune()
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    households = await sup.commune_list(commune, n=2)
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic"})
    posting_id = r.json()["posting_id"]
    ref = {i["household_id"]: i["reference"] for i in r.json()["items"]}
    url = f"/public/postings/{posting_id}/complaints"
    async with sup.client_from("10.77.0.1") as resident:
        missing = (await resident.post(url, data={
            "category": "wrongly_excluded", "household": "not_on_list",
            "text": "Nhà ông Sùng A Páo (thôn Tây) ốm dài ngày, không có tên."})).json()
        pending = (await resident.post(url, data={
            "category": "wrongly_included", "household": ref[households[1]["household_id"]],
            "text": "Hộ này có người làm công chức."})).json()
    await sup.client.post(f"/v1/postings/{posting_id}/close", headers=auth("national_admin"),
                          json={"reason": "Thử nghiệm: rút ngắn thời gian niêm yết."})

    # the officer finds the omitted household in the registry; upheld → verification for it
    found = await sup.registered(commune, village="Thôn Tây", head_name="Sùng A Páo")
    await sup.seen(found.subject or "", found.id)
    r = await sup.client.post(f"/v1/complaints/{missing['complaint_id']}/assign",
                              headers=officer, json={"assignee": "Cán bộ LĐTBXH"})
    r = await sup.client.post(f"/v1/complaints/{missing['complaint_id']}/resolve",
                              headers=officer, json={"outcome": "upheld",
                                                     "note": "Đưa vào rà soát bổ sung.",
                                                     "household_id": found.subject})
    assert r.status_code == 200 and r.json()["household_id"] == found.subject

    r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=chair,
                              json={"carry_over": ["KN-NOT-ON-THIS-POSTING"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "carry_over.0"
    r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=chair,
                              json={"carry_over": [pending["complaint_id"]]})
    assert r.status_code == 200, r.text
    assert r.json()["approved"]["carried_over_complaints"] == [pending["complaint_id"]]
    complaint = await sup.client.get(f"/v1/complaints/{pending['complaint_id']}",
                                     headers=officer)
    assert complaint.json()["carried_over"] and complaint.json()["status"] == "received"

    records = await collect(sup.bootstrap, events.TOPIC, until=lambda rs: of_type(
        rs, events.POSTING_APPROVED, posting_id=posting_id))
    asked = of_type(records, events.VERIFICATION_REQUESTED,
                    complaint_id=missing["complaint_id"])
    assert [a["household_id"] for a in asked] == [found.subject]
    approved = of_type(records, events.POSTING_APPROVED, posting_id=posting_id)[0]
    assert approved["carried_over_complaints"] == [pending["complaint_id"]]
    assert len(approved["items"]) == 2


async def test_a_large_list_is_approved_in_bounded_parts(sup: Sup):
    commune = new_commune()
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    households = await sup.commune_list(commune, n=5)
    settings = service_of(sup.service.runtime).settings
    saved, settings.posting_approval_part_size = settings.posting_approval_part_size, 2
    try:
        r = await sup.client.post("/v1/postings", headers=officer, json={
            "commune_code": commune, "review_round": "2026-periodic"})
        posting_id = r.json()["posting_id"]
        await sup.client.post(f"/v1/postings/{posting_id}/close", headers=auth("national_admin"),
                              json={"reason": "Thử nghiệm: rút ngắn thời gian niêm yết."})
        r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=chair, json={})
        assert r.status_code == 200, r.text
        assert r.json()["approved"]["households"] == 5
    finally:
        settings.posting_approval_part_size = saved
    records = await collect(sup.bootstrap, events.TOPIC, until=lambda rs: len(of_type(
        rs, events.POSTING_APPROVED, posting_id=posting_id)) >= 3)
    for type_ in (events.POSTING_OPENED, events.POSTING_CLOSED, events.POSTING_APPROVED):
        parts = sorted(of_type(records, type_, posting_id=posting_id), key=lambda p: p["part"])
        assert [(p["part"], p["parts"], len(p["items"])) for p in parts] == [
            (1, 3, 2), (2, 3, 2), (3, 3, 1)], type_
        assert sorted(i["household_id"] for p in parts for i in p["items"]) == sorted(
            h["household_id"] for h in households), type_
