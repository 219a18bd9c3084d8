"""The officers' dashboard and the public commune page: known events in, the totals read back
from the SVG and the page; scope refused; nothing personal on the public page."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.disbursement import events as disbursement_events
from services.eligibility import events as eligibility_events
from services.registry import events as registry_events
from services.supervision import tables
from services.supervision.api import charts
from services.supervision.handlers import dashboard
from shared.envelope import Envelope
from tests.supervision.conftest import Sup, new_commune
from tests.supervision.test_projects import MEMBERS
from tests.support.apps import auth

LOAN_VND, REPAID_VND, SUPPORT_VND = 30_000_000, 5_000_000, 1_000_000


@dataclass
class Seeded:
    """A commune fed with known events, and what they were about."""

    commune: str
    households: list[dict[str, str]]


async def _disbursement(sup: Sup, household_id: str, type_: str, data: dict) -> Envelope:
    return await sup.publish(disbursement_events.TOPIC, Envelope(
        type=type_, source=disbursement_events.SOURCE, subject=household_id, data=data))


async def seed(sup: Sup) -> Seeded:
    """Three households (two poor in Thôn Đông/Thôn Tây, one near-poor in Thôn Đông), two
    surveyed, all posted, one recognized; two complaints (one overdue); two recommendations
    (one answered in time); one loan settled, restructured and partly repaid, one support
    payment settled, one loan instruction only sent."""
    commune = new_commune()
    officer, chair = auth("commune_officer", commune), auth("commune_chair", commune)
    hs = await sup.commune_list(commune, n=3)
    for h in hs[:2]:
        ev = await sup.publish(registry_events.TOPIC, Envelope(
            type=registry_events.HOUSEHOLD_SURVEYED, source=registry_events.SOURCE,
            subject=h["household_id"], data={
                "household_id": h["household_id"], "version": 2, "is_current": True,
                "survey": {"survey_id": str(uuid.uuid4()), "survey_date": "2026-10-01",
                           "review_round": "2026-periodic", "income_per_capita_vnd": 900_000,
                           "deprivations": {}},
                "household": {"household_id": h["household_id"], "location": {
                    "province_code": commune[:2], "commune_code": commune,
                    "village": h["village"]}}}))
        await sup.seen(h["household_id"], ev.id)
    r = await sup.client.post("/v1/postings", headers=officer, json={
        "commune_code": commune, "review_round": "2026-periodic",
        "closes_at": (datetime.now(UTC) + timedelta(days=10)).isoformat()})
    assert r.status_code == 201, r.text
    posting_id = r.json()["posting_id"]
    poor = hs[0]
    ev = await sup.publish(eligibility_events.TOPIC, Envelope(
        type=eligibility_events.CLASSIFICATION_RECOGNIZED, source=eligibility_events.SOURCE,
        subject=poor["household_id"], data=eligibility_events.ClassificationRecognizedV1(
            classification_id=poor["classification_id"], household_id=poor["household_id"],
            category="poor", posting_id=posting_id, recognized_at=datetime.now(UTC),
            commune_code=commune, province_code=commune[:2]).model_dump(mode="json")))
    await sup.seen(poor["household_id"], ev.id)

    ids = []
    for text in ("Chưa nhận tiền tháng 3.", "Góp ý về lịch họp thôn."):
        r = await sup.client.post("/v1/complaints", headers=officer, json={
            "commune_code": commune, "channel": "officer", "category": "other", "text": text})
        assert r.status_code == 201, r.text
        ids.append(r.json()["complaint_id"])
    async with sup.service.runtime.transaction() as session:  # filed 20 days ago
        ago = datetime.now(UTC) - timedelta(days=20)
        await session.execute(sa.update(tables.complaint).where(tables.complaint.c.id == ids[0])
                              .values(received_at=ago, due_at=ago + timedelta(days=15)))

    supervisor = auth("supervisor", commune)
    r = await sup.client.post("/v1/boards", headers=supervisor, json={
        "commune_code": commune, "kind": "peoples_inspection",
        "name": "Ban Thanh tra nhân dân xã", "members": MEMBERS})
    board = r.json()["board_id"]
    found = []
    for what in ("Danh sách chưa niêm yết ở thôn Tây", "Biên bản họp thôn thiếu chữ ký"):
        r = await sup.client.post(f"/v1/boards/{board}/recommendations", headers=supervisor,
                                  json={"severity": "medium", "description": what,
                                        "recommendation": "Khắc phục trong tuần"})
        assert r.status_code == 201, r.text
        found.append(r.json()["finding_id"])
    r = await sup.client.post(f"/v1/findings/{found[0]}/answer", headers=chair,
                              json={"answer": "Đã niêm yết tại nhà văn hóa thôn Tây."})
    assert r.status_code == 200, r.text

    loan_app, loan, sent = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    hid = poor["household_id"]
    await _disbursement(sup, hid, disbursement_events.APPLICATION_CONFIRMED, {
        "application_id": loan_app, "household_id": hid, "programme_code": "VBSP-POOR",
        "amount_vnd": LOAN_VND, "term_months": 36, "status": "confirmed"})
    for instruction, amount, term in ((loan, LOAN_VND, 36), (sent, 20_000_000, 24)):
        await _disbursement(sup, hid, disbursement_events.INSTRUCTION_ISSUED, {
            "instruction_id": instruction, "application_id": loan_app,
            "programme_code": "VBSP-POOR", "beneficiary_reference": "HGD-1", "payee_name": "X",
            "commune_code": commune, "transaction_point": "Điểm giao dịch xã",
            "amount_vnd": amount, "purpose": "chăn nuôi", "term_months": term,
            "annual_rate_pct": 6.6, "scheduled_date": "2026-11-02"})
    await _disbursement(sup, hid, disbursement_events.INSTRUCTION_STATUS_CHANGED, {
        "instruction_id": sent, "application_id": loan_app, "household_id": hid,
        "status": "sent", "occurred_at": datetime.now(UTC).isoformat()})
    for status in ("sent", "settled"):
        await _disbursement(sup, hid, disbursement_events.INSTRUCTION_STATUS_CHANGED, {
            "instruction_id": loan, "application_id": loan_app, "household_id": hid,
            "status": status, "amount_vnd": LOAN_VND if status == "settled" else None,
            "occurred_at": datetime.now(UTC).isoformat()})
    # the loan restructured after a flood: a restructure instruction (no money) settled/applied
    restructure = str(uuid.uuid4())
    await _disbursement(sup, hid, disbursement_events.INSTRUCTION_ISSUED, {
        "instruction_id": restructure, "application_id": loan_app, "programme_code": "VBSP-POOR",
        "beneficiary_reference": "HGD-1", "payee_name": "X", "commune_code": commune,
        "transaction_point": "Điểm giao dịch xã", "amount_vnd": 0, "kind": "restructure",
        "purpose": "restructure: extension 6 months", "scheduled_date": "2026-11-20"})
    await _disbursement(sup, hid, disbursement_events.INSTRUCTION_STATUS_CHANGED, {
        "instruction_id": restructure, "application_id": loan_app, "household_id": hid,
        "status": "settled", "amount_vnd": 0, "kind": "restructure",
        "occurred_at": datetime.now(UTC).isoformat()})
    await _disbursement(sup, hid, disbursement_events.RESTRUCTURING_APPLIED, {
        "restructuring_id": str(uuid.uuid4()), "loan_instruction_id": loan, "household_id": hid,
        "programme_code": "VBSP-POOR", "shock_id": "sh-1", "option": "extension", "months": 6,
        "status": "applied", "instruction_id": restructure})
    last = await _disbursement(sup, hid, disbursement_events.REPAYMENT_RECORDED, {
        "instruction_id": loan, "household_id": hid, "amount_vnd": REPAID_VND,
        "repaid_vnd": REPAID_VND, "outstanding_principal_vnd": LOAN_VND - REPAID_VND,
        "occurred_at": datetime.now(UTC).isoformat()})
    await sup.seen(hid, last.id)
    other = hs[1]["household_id"]
    support = str(uuid.uuid4())
    await _disbursement(sup, other, disbursement_events.INSTRUCTION_ISSUED, {
        "instruction_id": support, "application_id": str(uuid.uuid4()),
        "programme_code": "HEALTH-INSURANCE", "beneficiary_reference": "HGD-2",
        "payee_name": "Y", "commune_code": commune, "transaction_point": "UBND xã",
        "amount_vnd": SUPPORT_VND, "purpose": "hỗ trợ", "scheduled_date": "2026-11-02"})
    last = await _disbursement(sup, other, disbursement_events.INSTRUCTION_STATUS_CHANGED, {
        "instruction_id": support, "application_id": "-", "household_id": other,
        "status": "settled", "occurred_at": datetime.now(UTC).isoformat()})
    await sup.seen(other, last.id)
    return Seeded(commune=commune, households=hs)


def chart(html: str, name: str) -> tuple[int, dict[str, int]]:
    """A chart's `data-total` and its bars' values, read from the SVG."""
    m = re.search(rf'<svg[^>]*data-chart="{name}"[^>]*data-total="(\d+)".*?</svg>', html, re.S)
    assert m, f"no chart {name}"
    bars = {k: int(v) for k, v in
            re.findall(r'data-key="([^"]+)" data-value="(\d+)"', m.group(0))}
    return int(m.group(1)), bars


def figure(html: str, name: str, attr: str = "data-total") -> int:
    """A figure's `data-total` (or another attribute) on the page."""
    m = re.search(rf'data-figure="{name}"[^>]*?{attr}="(\d+)"', html)
    assert m, f"no figure {name}"
    return int(m.group(1))


async def test_the_dashboard_counts_what_the_events_said(sup: Sup):
    s = await seed(sup)
    officer = auth("commune_officer", s.commune)
    r = await sup.client.get("/dashboard", params={"commune_code": s.commune}, headers=officer)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    html = r.text
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "Bảng theo dõi" in html

    assert chart(html, "by_category") == (3, {"poor": 2, "near_poor": 1})
    assert chart(html, "by_village") == (3, {"Thôn Đông": 2, "Thôn Tây": 1})
    # no visit event yet: that stage is left out
    assert chart(html, "funnel") == (2, {"surveyed": 2, "classified": 3, "posted": 3,
                                         "recognized": 1})
    assert chart(html, "complaints") == (3, {"open": 2, "overdue": 1})
    assert chart(html, "findings") == (2, {"in_time": 1, "late": 0, "awaiting": 1,
                                           "overdue": 0})
    _, loans = chart(html, "loans")
    assert loans == {"confirmed": LOAN_VND, "disbursed": LOAN_VND, "repaid": REPAID_VND,
                     "outstanding": LOAN_VND - REPAID_VND}
    assert figure(html, "loans_confirmed") == 1 and figure(html, "loans_disbursed") == 1
    assert figure(html, "support_paid") == 1  # the restructure instruction paid nothing
    assert figure(html, "loans_restructured") == 1
    # each number links to the list behind it, and that list has as many entries
    link = re.search(r'<a href="([^"]+)" aria-label="Quá hạn: 1"', html)
    assert link, "overdue complaints link"
    href = link.group(1).replace("&amp;", "&")
    assert href == f"/v1/complaints?commune_code={s.commune}&overdue=true"
    listed = await sup.client.get(href, headers=officer)
    assert len(listed.json()) == 1
    listed = await sup.client.get(f"/v1/complaints?commune_code={s.commune}&status=open",
                                  headers=officer)
    assert f'href="/v1/complaints?commune_code={s.commune}&amp;status=open"' in html

    r = await sup.client.get("/dashboard", params={"commune_code": s.commune, "lang": "en"},
                             headers=officer)
    assert "Households by category" in r.text and 'lang="en"' in r.text
    assert chart(r.text, "by_category")[0] == 3

    # the province view counts this commune too; a national auditor sees it in the whole scope
    r = await sup.client.get("/dashboard", params={"province_code": s.commune[:2]},
                             headers=auth("province_officer", s.commune[:2]))
    assert r.status_code == 200
    assert chart(r.text, "by_category")[1]["poor"] >= 2


async def test_the_dashboard_keeps_to_the_callers_scope(sup: Sup):
    commune, elsewhere = new_commune(), new_commune()
    await sup.commune_list(commune, n=1)
    officer = auth("commune_officer", elsewhere)
    r = await sup.client.get("/dashboard", params={"commune_code": commune}, headers=officer)
    assert r.status_code == 404
    other_province = "01" if commune[:2] != "01" else "08"
    r = await sup.client.get("/dashboard", params={"province_code": commune[:2]},
                             headers=auth("province_officer", other_province))
    assert r.status_code == 404
    r = await sup.client.get("/dashboard", params={"commune_code": commune})
    assert r.status_code == 401
    # a commune officer without a filter sees only their own commune's households
    r = await sup.client.get("/dashboard", headers=officer)
    assert r.status_code == 200 and chart(r.text, "by_category")[0] == 0


async def test_the_public_commune_page_publishes_totals_and_nothing_personal(sup: Sup):
    s = await seed(sup)
    r = await sup.client.get(f"/public/communes/{s.commune}")
    assert r.status_code == 200
    html = r.text
    assert chart(html, "beneficiaries") == (1, {"poor": 1})  # recognized households only
    assert figure(html, "support_paid") == 1
    assert figure(html, "support_paid", "data-vnd") == SUPPORT_VND
    assert figure(html, "loans_disbursed") == 1
    assert figure(html, "loans_disbursed", "data-vnd") == LOAN_VND
    assert figure(html, "loans_outstanding", "data-vnd") == LOAN_VND - REPAID_VND
    assert figure(html, "households_reached") == 2
    for h in s.households:
        for personal in (h["head_name"], h["national_id"], h["household_id"]):
            assert personal not in html
    assert "/v1/" not in html  # no link into the officers' lists

    r = await sup.client.get("/public/communes/08001", params={"lang": "en"})
    assert "Xã Lâm Bình" in r.text and "Published results" in r.text


async def test_the_funnel_starts_with_visits_once_the_registry_announces_them(sup: Sup):
    commune = new_commune()
    hs = await sup.commune_list(commune, n=2)
    officer = auth("commune_officer", commune)
    r = await sup.client.get("/dashboard", params={"commune_code": commune}, headers=officer)
    assert "visited" not in chart(r.text, "funnel")[1]
    h = hs[0]["household_id"]
    ev = await sup.publish(registry_events.TOPIC, Envelope(
        type=dashboard.VISITED, source=registry_events.SOURCE, subject=h,
        data={"household_id": h, "version": 1, "actor": "commune_officer:t",
              "visit": {"visit_id": str(uuid.uuid4()), "cadre_id": "c1",
                        "cadre_name": "Lò Văn Cán", "organisation": "womens_union",
                        "visited_on": "2026-10-01", "outcome": "follow_up",
                        "review_round": "2026-periodic"}}))
    other = await sup.publish(registry_events.TOPIC, Envelope(  # another round's: not counted
        type=dashboard.VISITED, source=registry_events.SOURCE, subject=hs[1]["household_id"],
        data={"household_id": hs[1]["household_id"], "version": 1,
              "visit": {"visit_id": str(uuid.uuid4()), "review_round": "2025-periodic"}}))
    await sup.seen(hs[1]["household_id"], other.id)
    await sup.seen(h, ev.id)
    r = await sup.client.get("/dashboard", params={"commune_code": commune}, headers=officer)
    assert chart(r.text, "funnel") == (1, {"visited": 1, "surveyed": 0, "classified": 2,
                                           "posted": 0, "recognized": 0})


def test_a_chart_says_its_total_and_escapes_its_labels():
    svg = charts.bars(name="x", title="<b>", lang="vi", items=[
        charts.Bar("a", "Thôn <Đông>", 1200, "/v1/postings?a=1&b=2"), charts.Bar("b", "B", 3)])
    assert 'data-total="1203"' in svg and "1.200" in svg
    assert "<Đông>" not in svg and "&amp;b=2" in svg and "<b>" not in svg
    assert 'data-total="5"' in charts.bars(name="f", title="f", lang="en", funnel=True,
                                           items=[charts.Bar("a", "A", 5),
                                                  charts.Bar("b", "B", 2)])
