"""Complaints: officer and inspection-board entry, lifecycle, due dates, and what an upheld
complaint sets off — verification of the household, or a payment hold released on closing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.disbursement import events as disbursement_events
from services.supervision import events, tables
from tests.supervision.conftest import Sup, new_commune
from tests.supervision.test_postings import of_type
from tests.support.apps import auth
from tests.support.kafka import collect


async def file(sup: Sup, commune: str, **body) -> str:
    """File a complaint as the commune officer; return its id."""
    r = await sup.client.post("/v1/complaints", headers=auth("commune_officer", commune),
                              json={"commune_code": commune, "channel": "officer", **body})
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith(r.json()["complaint_id"])
    return r.json()["complaint_id"]


async def test_upheld_wrong_category_asks_the_registry_to_verify(sup: Sup):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    household = (await sup.commune_list(commune, n=1))[0]["household_id"]
    complaint_id = await file(sup, commune, category="wrong_category", household_id=household,
                              text="Gọi đường dây nóng: hộ này phải là hộ nghèo, không phải cận "
                                   "nghèo.", contact="0903 111 222")
    r = await sup.client.get(f"/v1/complaints/{complaint_id}", headers=officer)
    body = r.json()
    assert body["status"] == "open" and body["channel"] == "officer"
    due = datetime.fromisoformat(body["due_at"]) - datetime.fromisoformat(body["received_at"])
    assert due == timedelta(days=15) and body["overdue"] is False

    r = await sup.client.post(f"/v1/complaints/{complaint_id}/close", headers=officer)
    assert r.status_code == 409 and "only when resolved or rejected" in r.json()["detail"]
    r = await sup.client.post(f"/v1/complaints/{complaint_id}/resolve", headers=officer,
                              json={"outcome": "upheld", "note": "Khảo sát lại: 3 chỉ số "
                                                                 "thiếu hụt."})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert r.json()["outcome"] == "upheld" and r.json()["action"] == "verification"
    r = await sup.client.post(f"/v1/complaints/{complaint_id}/resolve", headers=officer,
                              json={"outcome": "upheld", "note": "again"})
    assert r.status_code == 409

    records = await collect(sup.bootstrap, events.TOPIC, until=lambda rs: of_type(
        rs, events.VERIFICATION_REQUESTED, complaint_id=complaint_id))
    resolved = of_type(records, events.COMPLAINT_RESOLVED, complaint_id=complaint_id)[0]
    asked = of_type(records, events.VERIFICATION_REQUESTED, complaint_id=complaint_id)[0]
    assert asked["household_id"] == household and asked["commune_code"] == commune
    assert asked["_cause"] == resolved["_id"]
    assert not of_type(records, events.HOLD_REQUESTED, complaint_id=complaint_id)
    assert "0903" not in json.dumps([resolved, asked])
    events.VerificationRequestedV1.model_validate(asked)  # what the registry will parse

    r = await sup.client.post(f"/v1/complaints/{complaint_id}/close", headers=officer,
                              json={"note": "Đã gửi yêu cầu xác minh"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    await sup.seen(household, asked["_id"])
    tree = (await sup.timeline(household, view="tree")).json()["events"]
    nodes = {n["event_id"]: n for n in tree}
    received = next(n for n in tree if n["type"] == events.COMPLAINT_RECEIVED)
    assert "hạn trả lời" in received["summary"]["vi"]
    assert resolved["_id"] in nodes
    assert [c["event_id"] for c in nodes[resolved["_id"]]["children"]] == [asked["_id"]]


async def test_upheld_payment_complaint_holds_payments_until_it_is_closed(sup: Sup):
    commune = new_commune()
    chair = auth("commune_chair", commune)
    household = (await sup.commune_list(commune, n=1))[0]["household_id"]
    r = await sup.client.post("/v1/complaints", headers=auth("supervisor", commune), json={
        "commune_code": commune, "channel": "inspection_board", "category": "misconduct",
        "household_id": household, "text": "Cán bộ thôn thu 500.000 đ 'phí hồ sơ' khi giải "
                                           "ngân."})
    assert r.status_code == 201
    complaint_id = r.json()["complaint_id"]
    r = await sup.client.post(f"/v1/complaints/{complaint_id}/assign", headers=chair,
                              json={"assignee": "Ban Thanh tra nhân dân"})
    assert r.status_code == 200 and r.json()["assignee"] == "Ban Thanh tra nhân dân"
    r = await sup.client.post(f"/v1/complaints/{complaint_id}/resolve", headers=chair,
                              json={"outcome": "upheld", "note": "Đã xác minh, có thu tiền."})
    assert r.json()["hold_active"] is True and r.json()["action"] == "hold"
    r = await sup.client.post(f"/v1/complaints/{complaint_id}/close", headers=chair,
                              json={"note": "Đã hoàn trả tiền cho hộ, kỷ luật cán bộ."})
    assert r.status_code == 200 and r.json()["hold_active"] is False

    records = await collect(sup.bootstrap, events.TOPIC, until=lambda rs: of_type(
        rs, events.HOLD_RELEASED, complaint_id=complaint_id))
    held = of_type(records, events.HOLD_REQUESTED, complaint_id=complaint_id)
    released = of_type(records, events.HOLD_RELEASED, complaint_id=complaint_id)
    assert len(held) == 1 and len(released) == 1
    # exactly what disbursement's consumer parses
    assert events.HoldRequestedV1.model_validate(held[0]).household_id == household
    assert events.HoldReleasedV1.model_validate(released[0]).household_id == household
    assert not of_type(records, events.VERIFICATION_REQUESTED, complaint_id=complaint_id)

    # disbursement's answer shows up in the household's timeline, under the request
    from shared.envelope import Envelope

    applied = Envelope(type=disbursement_events.HOLD_APPLIED, source=disbursement_events.SOURCE,
                       subject=household, causation_id=held[0]["_id"],
                       data=disbursement_events.HoldEventV1(
                           household_id=household, complaint_id=complaint_id,
                           instruction_ids=["i-1"], reason="misconduct").model_dump(mode="json"))
    await sup.publish(disbursement_events.TOPIC, applied)
    entry = await sup.seen(household, applied.id)
    assert entry["summary"]["en"] == f"1 instruction(s) held for complaint {complaint_id}"


async def test_not_upheld_and_the_overdue_flag(sup: Sup):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    household = (await sup.commune_list(commune, n=1))[0]["household_id"]
    r = await sup.client.post("/v1/complaints", headers=officer, json={
        "commune_code": commune, "channel": "officer", "category": "payment_not_received",
        "household_id": "a-household-nobody-knows", "text": "Chưa nhận tiền tháng 3."})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "household_id", r.text
    elsewhere = (await sup.commune_list(new_commune(), n=1))[0]["household_id"]
    r = await sup.client.post("/v1/complaints", headers=officer, json={
        "commune_code": commune, "channel": "officer", "category": "misconduct",
        "household_id": elsewhere, "text": "Giữ tiền của một hộ xã khác."})
    assert r.status_code == 422 and r.json()["code"] == "unknown_household", r.text
    late = await file(sup, commune, category="payment_not_received",
                      household_id=household, text="Chưa nhận tiền tháng 3.")
    fresh = await file(sup, commune, category="other", text="Góp ý về lịch họp thôn.")
    async with sup.service.runtime.transaction() as session:  # filed 20 days ago
        ago = datetime.now(UTC) - timedelta(days=20)
        await session.execute(sa.update(tables.complaint).where(tables.complaint.c.id == late)
                              .values(received_at=ago, due_at=ago + timedelta(days=15)))
    r = await sup.client.get("/v1/complaints", headers=officer,
                             params={"commune_code": commune, "overdue": "true"})
    assert [c["complaint_id"] for c in r.json()] == [late]
    assert r.json()[0]["overdue"] is True
    r = await sup.client.get("/v1/complaints", headers=officer,
                             params={"commune_code": commune, "overdue": "false"})
    assert [c["complaint_id"] for c in r.json()] == [fresh]
    r = await sup.client.get("/v1/complaints", headers=officer,
                             params={"commune_code": commune, "status": "open"})
    assert {c["complaint_id"] for c in r.json()} == {late, fresh}

    r = await sup.client.post(f"/v1/complaints/{late}/resolve", headers=officer,
                              json={"outcome": "not_upheld", "note": "Đã chi ngày 12/3, có chữ "
                                                                     "ký nhận."})
    assert r.json()["status"] == "resolved" and r.json()["overdue"] is True  # answered late
    assert r.json()["hold_active"] is False
    r = await sup.client.post(f"/v1/complaints/{fresh}/reject", headers=officer,
                              json={"note": "Không thuộc thẩm quyền; chuyển Hội Nông dân."})
    assert r.json()["status"] == "rejected" and r.json()["overdue"] is False
    r = await sup.client.post(f"/v1/complaints/{fresh}/reject", headers=officer,
                              json={"note": "again"})
    assert r.status_code == 409
    r = await sup.client.post(f"/v1/complaints/{fresh}/close", headers=officer)
    assert r.json()["status"] == "closed"
    assert [h["status"] for h in r.json()["history"]] == ["open", "rejected", "closed"]

    records = await collect(sup.bootstrap, events.TOPIC, until=lambda rs: of_type(
        rs, events.COMPLAINT_RESOLVED, complaint_id=fresh))
    assert of_type(records, events.COMPLAINT_RESOLVED, complaint_id=late)[0]["overdue"] is True
    assert of_type(records, events.COMPLAINT_RESOLVED, complaint_id=fresh)[0]["status"] == \
        "rejected"
    assert not of_type(records, events.HOLD_REQUESTED, complaint_id=late)


async def test_bad_complaints_are_refused_and_nothing_is_stored(sup: Sup):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    base = {"commune_code": commune, "channel": "officer", "text": "Nội dung"}
    cases = [({**base}, "category"),
             ({**base, "category": "bribery"}, "category"),
             ({**base, "category": "other", "text": "x" * 2001}, "text"),
             ({**base, "category": "other", "channel": "web"}, "channel"),
             ({**base, "category": "other", "posting_id": "NY-nothere"}, "posting_id"),
             ({**base, "category": "other", "commune_code": "1"}, "commune_code"),
             ({**base, "category": "other", "secret": 1}, "secret")]
    for body, field in cases:
        r = await sup.client.post("/v1/complaints", headers=officer, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in r.json()["errors"]], (field, r.json())
    r = await sup.client.post("/v1/complaints", headers=auth("commune_officer", new_commune()),
                              json={**base, "category": "other"})
    assert r.status_code == 404
    r = await sup.client.post("/v1/complaints", headers=auth("auditor"),
                              json={**base, "category": "other"})
    assert r.status_code == 403
    r = await sup.client.get("/v1/complaints", headers=officer, params={"commune_code": commune})
    assert r.json() == []
    r = await sup.client.post("/v1/complaints/KN-NOTHERE/assign", headers=officer,
                              json={"assignee": "x"})
    assert r.status_code == 404
    r = await sup.client.post("/v1/complaints/KN-NOTHERE/resolve", headers=officer,
                              json={"outcome": "maybe", "note": "x"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"outcome", "note"}
