"""Community supervision of local projects and the People's Inspection Board: inspections with a
checklist, findings, the commune's answer due in 15 days, and the public commune page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.supervision import tables
from tests.supervision.conftest import Sup, new_commune
from tests.support.apps import auth

MEMBERS = [{"name": n, "village": "Thôn Đông"} for n in
           ("Hà Văn Một", "Lò Thị Hai", "Vì Văn Ba", "Lường Thị Bốn", "Cầm Văn Năm")]
OK = {"ok": True}


async def test_project_inspection_findings_answers_and_the_public_page(sup: Sup):
    commune = new_commune()
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    supervisor = auth("supervisor", commune)
    r = await sup.client.post("/v1/projects", headers=officer, json={
        "commune_code": commune, "name": "Đường bê tông thôn Đông – thôn Tây", "type": "road",
        "budget_vnd": 1_850_000_000, "investor": "UBND xã", "contractor": "Công ty XD Tây Bắc",
        "planned_start": "2026-03-01", "planned_end": "2026-12-31"})
    assert r.status_code == 201, r.text
    project_id = r.json()["project_id"]

    r = await sup.client.post("/v1/boards", headers=supervisor, json={
        "commune_code": commune, "kind": "investment_supervision", "project_id": project_id,
        "name": "Ban giám sát đầu tư của cộng đồng", "members": MEMBERS[:4]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "members"
    r = await sup.client.post("/v1/boards", headers=supervisor, json={
        "commune_code": commune, "kind": "investment_supervision",
        "name": "Ban giám sát đầu tư của cộng đồng", "members": MEMBERS})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "project_id"
    r = await sup.client.post("/v1/boards", headers=supervisor, json={
        "commune_code": commune, "kind": "investment_supervision", "project_id": project_id,
        "name": "Ban giám sát đầu tư của cộng đồng", "members": MEMBERS})
    assert r.status_code == 201
    board_id = r.json()["board_id"]

    checklist = {"progress": {"ok": False, "note": "chậm 2 tháng"}, "quality": OK,
                 "materials": {"ok": False, "note": "xi măng không đúng mác"},
                 "environment": OK, "land": OK, "disclosure": OK}
    r = await sup.client.post(f"/v1/projects/{project_id}/inspections", headers=supervisor,
                              json={"board_id": board_id, "inspected_on": "2026-06-10",
                                    "members_present": ["Hà Văn Một", "Người Lạ"],
                                    "checklist": checklist})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "members_present.1"
    r = await sup.client.post(f"/v1/projects/{project_id}/inspections", headers=supervisor,
                              json={"board_id": board_id, "inspected_on": "2026-06-10",
                                    "members_present": ["Hà Văn Một", "Lò Thị Hai"],
                                    "checklist": {**checklist, "land": None}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "checklist.land"
    r = await sup.client.post(f"/v1/projects/{project_id}/inspections", headers=supervisor,
                              json={"board_id": board_id, "inspected_on": "2026-06-10",
                                    "members_present": ["Hà Văn Một", "Lò Thị Hai"],
                                    "checklist": checklist, "findings": [
                                        {"severity": "high",
                                         "description": "Xi măng PCB30 thay cho PCB40",
                                         "recommendation": "Tạm dừng đổ bê tông, kiểm định"},
                                        {"severity": "low", "description": "Biển công khai "
                                                                           "bị che khuất",
                                         "recommendation": "Dời biển ra đầu đường"}]})
    assert r.status_code == 201, r.text
    cement, sign = r.json()["finding_ids"]

    r = await sup.client.post("/v1/boards", headers=supervisor, json={
        "commune_code": commune, "kind": "peoples_inspection",
        "name": "Ban Thanh tra nhân dân xã", "members": MEMBERS})
    pib = r.json()["board_id"]
    r = await sup.client.post(f"/v1/boards/{pib}/recommendations", headers=supervisor, json={
        "severity": "medium", "description": "Danh sách hộ nghèo chưa niêm yết ở thôn Tây",
        "recommendation": "Niêm yết tại nhà văn hóa thôn Tây"})
    assert r.status_code == 201
    recommendation = r.json()["finding_id"]
    r = await sup.client.post(f"/v1/boards/{board_id}/recommendations", headers=supervisor,
                              json={"severity": "low", "description": "abc",
                                    "recommendation": "def"})
    assert r.status_code == 409  # a project board records findings through inspections

    # the cement finding was raised 20 days ago and never answered: breached
    async with sup.service.runtime.transaction() as session:
        ago = datetime.now(UTC) - timedelta(days=20)
        await session.execute(sa.update(tables.finding).where(tables.finding.c.id == cement)
                              .values(raised_at=ago, answer_due_at=ago + timedelta(days=15)))
    r = await sup.client.post(f"/v1/findings/{sign}/answer", headers=chair,
                              json={"answer": "Đã dời biển công khai ngày 12/6."})
    assert r.status_code == 200 and r.json()["answer_state"] == "answered_in_time"
    r = await sup.client.post(f"/v1/findings/{sign}/answer", headers=chair,
                              json={"answer": "Lần nữa"})
    assert r.status_code == 409
    r = await sup.client.post(f"/v1/findings/{sign}/answer", headers=supervisor,
                              json={"answer": "Không phải việc của ban"})
    assert r.status_code == 403

    r = await sup.client.get("/v1/findings", headers=officer,
                             params={"commune_code": commune, "breached": "true"})
    assert [f["finding_id"] for f in r.json()] == [cement]
    assert r.json()[0]["answer_state"] == "overdue"
    r = await sup.client.get("/v1/findings", headers=officer,
                             params={"commune_code": commune, "kind": "recommendation"})
    assert [f["finding_id"] for f in r.json()] == [recommendation]
    r = await sup.client.get(f"/v1/projects/{project_id}", headers=auth("auditor"))
    assert len(r.json()["inspections"]) == 1 and len(r.json()["findings"]) == 2
    assert r.json()["inspections"][0]["checklist"]["materials"]["ok"] is False
    assert (await sup.client.get(f"/v1/projects/{project_id}",
                                 headers=auth("commune_officer", new_commune()))
            ).status_code == 404

    page = await sup.client.get(f"/public/communes/{commune}")
    assert page.status_code == 200
    html = page.text
    assert "Đường bê tông thôn Đông" in html and "Xi măng PCB30" in html
    assert "Quá hạn chưa trả lời" in html and "Đã trả lời đúng hạn" in html
    assert "Niêm yết tại nhà văn hóa thôn Tây" in html
    assert "quá hạn: 1" in html
    english = await sup.client.get(f"/public/communes/{commune}", params={"lang": "en"})
    assert "Overdue, not answered" in english.text and "1,850,000,000 VND" in english.text
    assert (await sup.client.get("/public/communes/abc")).status_code == 422


async def test_bad_projects_are_refused(sup: Sup):
    commune = new_commune()
    officer = auth("commune_officer", commune)
    base = {"commune_code": commune, "name": "Nhà văn hóa", "type": "cultural_house",
            "budget_vnd": 500_000_000, "investor": "UBND xã", "planned_start": "2026-05-01",
            "planned_end": "2026-09-01"}
    for body, field in (({**base, "planned_end": "2026-01-01"}, "planned_end"),
                        ({**base, "type": "spaceport"}, "type"),
                        ({**base, "budget_vnd": 0}, "budget_vnd")):
        r = await sup.client.post("/v1/projects", headers=officer, json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field
    r = await sup.client.get("/v1/projects", headers=officer, params={"commune_code": commune})
    assert r.json() == []
    r = await sup.client.post("/v1/projects/DA-NOTHERE/inspections",
                              headers=auth("supervisor", commune),
                              json={"board_id": "x", "inspected_on": "2026-06-10",
                                    "members_present": ["a"], "checklist": {
                                        k: OK for k in ("progress", "quality", "materials",
                                                        "environment", "land", "disclosure")}})
    assert r.status_code == 404
