"""Public posting: snapshot, public page without personal identifiers, complaints through the
form, close, approve only when every complaint is settled → `supervision.posting.approved`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from services.eligibility import events as eligibility_events
from services.supervision import events
from services.supervision.handlers.common import service_of
from shared.envelope import Envelope
from tests.supervision.conftest import Sup, new_commune
from tests.support.apps import auth
from tests.support.kafka import collect, header
from tests.support.wait import eventually


def of_type(records, type_: str, **match) -> list[dict]:
    """Payloads of `type_` on a topic whose fields equal `match`."""
    out = []
    for r in records:
        if header(r, "ce_type") != type_:
            continue
        data = json.loads(r.value)
        if all(data.get(k) == v for k, v in match.items()):
            out.append(data | {"_id": header(r, "ce_id"), "_cause": header(r, "ce_causationid")})
    return out


async def test_posting_page_complaint_close_and_approval(sup: Sup):
    commune = new_commune()
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    households = await sup.commune_list(commune, n=3)

    r = await sup.client.post("/v1/postings", headers=officer,
                              json={"commune_code": commune, "review_round": "2026-periodic"})
    assert r.status_code == 201, r.text
    posting = r.json()
    posting_id = posting["posting_id"]
    assert posting["status"] == "open" and posting["accepting_complaints"]
    assert {i["household_id"] for i in posting["items"]} == {h["household_id"]
                                                            for h in households}
    # default window: three working days, closing at 17:00 Vietnam time on a weekday
    closes = datetime.fromisoformat(posting["closes_at"]).astimezone(
        datetime.now(UTC).astimezone().tzinfo).astimezone(UTC) + timedelta(hours=7)
    assert closes.weekday() < 5 and closes.hour == 17
    opens = datetime.fromisoformat(posting["opens_at"])
    assert timedelta(days=3) <= datetime.fromisoformat(posting["closes_at"]) - opens \
        <= timedelta(days=6)

    # the public page: grouped by village, names and indicators, never an ID number or birth date
    page = await sup.client.get(f"/public/postings/{posting_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Thôn Đông" in html and "Thôn Tây" in html
    assert "Hộ nghèo" in html and "Bảo hiểm y tế" in html
    for h in households:
        assert h["head_name"] in html
        assert h["national_id"] not in html
        assert h["household_id"] not in html
    assert "1971" not in html and "@media print" in html and "size: A4" in html
    english = await sup.client.get(f"/public/postings/{posting_id}", params={"lang": "en"})
    assert "Poor" in english.text and "Health insurance" in english.text
    assert '<html lang="en">' in english.text

    reference = next(i["reference"] for i in posting["items"]
                     if i["household_id"] == households[0]["household_id"])
    r = await sup.client.post(f"/public/postings/{posting_id}/complaints", data={
        "category": "wrongly_included", "household": reference,
        "text": "Gia đình này có xe tải và nhà hai tầng.", "contact": "0912 345 678"})
    assert r.status_code == 201, r.text
    complaint_id = r.json()["complaint_id"]

    r = await sup.client.get("/v1/complaints", params={"commune_code": commune},
                             headers=officer)
    listed = {c["complaint_id"]: c for c in r.json()}
    assert listed[complaint_id]["status"] == "received"
    assert listed[complaint_id]["household_id"] == households[0]["household_id"]
    assert listed[complaint_id]["has_contact"] and "0912" not in r.text
    detail = await sup.client.get(f"/v1/complaints/{complaint_id}", headers=officer)
    assert detail.json()["contact"] == "0912 345 678"  # the officer handling it may call back
    audit = await sup.client.get(f"/v1/complaints/{complaint_id}", headers=auth("auditor"))
    assert "0912" not in audit.text
    assert "0912" not in (await sup.client.get(f"/public/postings/{posting_id}")).text

    # approval waits for the window's end and for every complaint
    r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=chair)
    assert r.status_code == 409 and "close it first" in r.json()["detail"]
    r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=officer)
    assert r.status_code == 403  # only the commune chair approves
    # the window is not over: the officer may not end it early; a national admin may, with a
    # reason that the posting and its closing event keep
    r = await sup.client.post(f"/v1/postings/{posting_id}/close", headers=officer)
    assert r.status_code == 403 and r.json()["code"] == "window_open", r.text
    admin = auth("national_admin")
    r = await sup.client.post(f"/v1/postings/{posting_id}/close", headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason", r.text
    early = "Bão số 3: UBND tỉnh cho phép rút ngắn thời gian niêm yết."
    r = await sup.client.post(f"/v1/postings/{posting_id}/close", headers=admin,
                              json={"reason": early})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert r.json()["close_reason"] == early and r.json()["closed_by"]

    r = await sup.client.post(f"/public/postings/{posting_id}/complaints", data={
        "category": "other", "text": "Quá hạn rồi"})
    assert r.status_code == 409
    assert len((await sup.client.get("/v1/complaints", params={"posting_id": posting_id},
                                     headers=officer)).json()) == 1  # nothing stored

    r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=chair)
    assert r.status_code == 409 and r.json()["unresolved_complaints"] == [complaint_id]
    r = await sup.client.post(f"/v1/complaints/{complaint_id}/assign", headers=officer,
                              json={"assignee": "Trần Văn Cán Bộ"})
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    r = await sup.client.post(f"/v1/complaints/{complaint_id}/resolve", headers=officer, json={
        "outcome": "not_upheld", "note": "Xe tải của người thân; thu nhập đã xác minh."})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert r.json()["outcome"] == "not_upheld" and r.json()["action"] is None
    assert [h["status"] for h in r.json()["history"]] == ["received", "open", "in_progress",
                                                          "resolved"]

    r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=chair)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    r = await sup.client.post(f"/v1/postings/{posting_id}/approve", headers=chair)
    assert r.status_code == 409

    records = await collect(sup.bootstrap, events.TOPIC, until=lambda rs: of_type(
        rs, events.POSTING_APPROVED, posting_id=posting_id))
    approved = of_type(records, events.POSTING_APPROVED, posting_id=posting_id)[0]
    assert {(i["household_id"], i["classification_id"]) for i in approved["items"]} == {
        (h["household_id"], h["classification_id"]) for h in households}
    assert of_type(records, events.POSTING_OPENED, posting_id=posting_id)
    assert of_type(records, events.POSTING_CLOSED, posting_id=posting_id)[0]["reason"] == early
    received = of_type(records, events.COMPLAINT_RECEIVED, complaint_id=complaint_id)[0]
    assert "contact" not in received and "0912" not in json.dumps(received)

    # eligibility recognises: the household's timeline nests the recognition under the approval
    h = households[0]
    recognized = Envelope(type=eligibility_events.CLASSIFICATION_RECOGNIZED,
                          source=eligibility_events.SOURCE, subject=h["household_id"],
                          correlation_id=str(uuid.uuid4()), causation_id=approved["_id"],
                          data=eligibility_events.ClassificationRecognizedV1(
                              classification_id=h["classification_id"],
                              household_id=h["household_id"], category="poor",
                              posting_id=posting_id, recognized_at=datetime.now(UTC),
                              commune_code=commune).model_dump(mode="json"))
    await sup.publish(eligibility_events.TOPIC, recognized)
    await sup.seen(h["household_id"], recognized.id)
    tree = (await sup.timeline(h["household_id"], view="tree")).json()["events"]

    def find(nodes, event_id):
        for n in nodes:
            if n["event_id"] == event_id:
                return n
            found = find(n["children"], event_id)
            if found:
                return found
        return None

    node = find(tree, approved["_id"])
    assert node is not None and node["summary"]["en"].startswith("Commune chair approved")
    assert [c["event_id"] for c in node["children"]] == [recognized.id]
    # the entry keeps the household's own item, not the whole list once per household
    assert [i["household_id"] for i in node["data"]["items"]] == [h["household_id"]]
    assert node["data"]["items_in_part"] == len(households) > 1
    assert node["children"][0]["summary"]["vi"].startswith("Được công nhận hộ nghèo")

    # a recognised classification is not posted again
    r = await sup.client.post("/v1/postings", headers=officer,
                              json={"commune_code": commune, "review_round": "2026-periodic"})
    assert r.status_code == 201
    assert h["household_id"] not in {i["household_id"] for i in r.json()["items"]}


async def test_public_form_refuses_bad_input_and_stores_nothing(sup: Sup):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    await sup.commune_list(commune, n=1)
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic"})
    assert r.status_code == 201
    posting_id, reference = r.json()["posting_id"], r.json()["items"][0]["reference"]
    url = f"/public/postings/{posting_id}/complaints"

    r = await sup.client.post("/public/postings/NY-00000-nothere/complaints",
                              data={"category": "other", "text": "x"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await sup.client.get("/public/postings/NY-00000-nothere")
    assert r.status_code == 404 and "Không tìm thấy" in r.text

    r = await sup.client.post(url, data={"household": reference, "text": "Sai rồi"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["category"]
    r = await sup.client.post(url, data={"category": "wrong_category", "household": reference,
                                         "text": "x" * 2001})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "text"
    r = await sup.client.post(url, data={"category": "wrongly_excluded", "household": reference,
                                         "text": "Hộ này đã có trong danh sách"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "household"
    r = await sup.client.post(url, data={"category": "bribery", "household": "HGD-XXXX-XXXX",
                                         "text": ""})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"category", "household", "text"}

    r = await sup.client.post(url, data={"category": "other", "text": "Mua thuốc giá rẻ",
                                         "website": "http://spam.example"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "website"

    # a browser gets the page back, with the errors and what was typed
    r = await sup.client.post(url, headers={"accept": "text/html"},
                              data={"household": reference, "text": "Tôi thấy không đúng"})
    assert r.status_code == 422 and "Chưa chọn nội dung khiếu nại." in r.text
    assert "Tôi thấy không đúng" in r.text

    listed = await sup.client.get("/v1/complaints", params={"posting_id": posting_id},
                                  headers=officer)
    assert listed.json() == []  # nothing stored by any of the above

    # anonymous: the contact is dropped; rate limit per client
    async with sup.client_from(f"10.9.{uuid.uuid4().int % 250}.7") as resident:
        r = await resident.post(url, data={"category": "wrongly_excluded",
                                           "household": "not_on_list",
                                           "text": "Nhà bà Lò Thị Hoa ở cuối thôn bị bỏ sót.",
                                           "contact": "zalo 0987", "anonymous": "on"})
        assert r.status_code == 201, r.text
        for _ in range(4):
            r = await resident.post(url, data={"category": "other", "text": "Góp ý thêm"})
            assert r.status_code == 201
        r = await resident.post(url, data={"category": "other", "text": "Lần thứ sáu"})
        assert r.status_code == 429 and r.headers["retry-after"]
        r = await resident.post(url, headers={"accept": "text/html"},
                                data={"category": "other", "text": "Lần thứ bảy"})
        assert r.status_code == 429 and "Gửi quá nhiều lần" in r.text
    async with sup.client_from("10.200.1.1") as neighbour:
        r = await neighbour.post(url, headers={"accept": "text/html"},
                                 data={"category": "other", "text": "Hộ bên cạnh góp ý"})
        assert r.status_code == 201 and "Đã nhận khiếu nại" in r.text
    listed = (await sup.client.get("/v1/complaints", params={"posting_id": posting_id},
                                   headers=officer)).json()
    assert len(listed) == 6
    excluded = next(c for c in listed if c["category"] == "wrongly_excluded")
    assert excluded["not_on_list"] and not excluded["has_contact"]


async def test_posting_rules(sup: Sup):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    households = await sup.commune_list(commune, n=2)

    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic",
        "closes_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "closes_at"
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic",
        "closes_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()})
    assert r.status_code == 422 and r.json()["code"] == "window_too_short", r.text
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic",
        "closes_at": "2030-01-01T10:00:00"})  # no time zone: ambiguous
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "closes_at"
    r = await sup.client.post("/v1/postings", headers=officer,
                              json={"commune_code": commune, "review_round": "2031-regular"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "commune_code"
    r = await sup.client.post("/v1/postings", headers=auth("commune_officer", new_commune()),
                              json={"commune_code": commune, "review_round": "2026-periodic"})
    assert r.status_code == 404  # another commune's officer

    # a newer decision replaces the household's provisional classification before posting
    h = households[0]
    newer = await sup.decided(commune, h["household_id"], village=h["village"],
                              head_name=h["head_name"], category="near_poor",
                              deprived=("latrine",))
    await sup.seen(h["household_id"], newer.id)
    far = datetime.now(UTC) + timedelta(days=30)
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic", "closes_at": far.isoformat()})
    assert r.status_code == 201, r.text
    posting = r.json()
    assert datetime.fromisoformat(posting["closes_at"]) == far
    item = next(i for i in posting["items"] if i["household_id"] == h["household_id"])
    assert item["category"] == "near_poor"
    assert item["classification_id"] == newer.data["classification_id"]
    r = await sup.client.post("/v1/postings", headers=officer,
                              json={"commune_code": commune, "review_round": "2026-periodic"})
    assert r.status_code == 409  # one open posting per commune and round

    # superseded after posting: left out of the approval, with the reason
    latest = await sup.decided(commune, h["household_id"], village=h["village"],
                               head_name=h["head_name"], category="not_poor", deprived=(),
                               income=2_500_000)
    await sup.seen(h["household_id"], latest.id)
    admin, why = auth("national_admin"), {"reason": "Thử nghiệm: đóng sớm có lý do."}
    r = await sup.client.post(f"/v1/postings/{posting['posting_id']}/close", headers=admin,
                              json=why)
    assert r.status_code == 200
    r = await sup.client.post(f"/v1/postings/{posting['posting_id']}/close", headers=admin,
                              json=why)
    assert r.status_code == 409
    r = await sup.client.post(f"/v1/postings/{posting['posting_id']}/approve",
                              headers=auth("commune_chair", commune))
    assert r.status_code == 200
    assert r.json()["approved"]["households"] == 1
    assert r.json()["approved"]["excluded"][0]["household_id"] == h["household_id"]

    listed = await sup.client.get("/v1/postings", params={"commune_code": commune},
                                  headers=auth("province_officer", commune[:2]))
    assert [p["status"] for p in listed.json()] == ["approved"]
    assert (await sup.client.get(f"/v1/postings/{posting['posting_id']}",
                                 headers=auth("commune_officer", new_commune()))).status_code == 404


async def test_a_posting_closes_itself_when_its_window_ends(sup: Sup):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    await sup.commune_list(commune, n=1)
    settings = service_of(sup.service.runtime).settings
    saved, settings.posting_min_working_days = settings.posting_min_working_days, 0
    try:  # a deployment without a minimum window (the default minimum is 3 working days)
        r = await sup.client.post("/v1/postings", headers=officer, json={
            "commune_code": commune, "review_round": "2026-periodic",
            "closes_at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()})
    finally:
        settings.posting_min_working_days = saved
    posting_id = r.json()["posting_id"]

    async def closed() -> bool:
        r = await sup.client.get(f"/v1/postings/{posting_id}", headers=officer)
        return r.json()["status"] == "closed"

    await eventually(closed, timeout=10, message="posting closed by the window")
    page = await sup.client.get(f"/public/postings/{posting_id}")
    assert "Thời gian niêm yết đã kết thúc" in page.text and "<form" not in page.text

