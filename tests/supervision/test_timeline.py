"""The beneficiary timeline: every event type of every topic, with who, why and which trace,
in order or nested under its cause; scoped to the caller's communes (auditors everywhere)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.disbursement import events as disb
from services.eligibility import events as elig
from services.registry import events as reg
from services.supervision import events as sup_events
from shared.envelope import Envelope
from tests.supervision.conftest import Sup, new_commune
from tests.support.apps import auth


def traceparent() -> str:
    """A W3C traceparent with a fresh trace id."""
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


async def test_every_event_type_is_told_in_both_languages_in_causal_order(sup: Sup):
    commune = new_commune()
    national_id = "079188001234"
    first = await sup.registered(commune, village="Bản Mới", head_name="Lò Văn Pấng",
                                 national_id=national_id)
    household = first.subject or ""
    snap = first.data["household"]
    member = snap["members"][0]
    t0 = datetime.now(UTC)
    trace = traceparent()
    chain: list[Envelope] = [first]

    def next_event(topic_source: str, type_: str, data: dict, *, minutes: int) -> Envelope:
        cause = chain[-1]
        env = Envelope(type=type_, source=topic_source, subject=household, data=data,
                       time=t0 + timedelta(minutes=minutes),
                       correlation_id=first.correlation_id or first.id, causation_id=cause.id,
                       traceparent=trace)
        chain.append(env)
        return env

    survey = {"survey_id": "s-1", "survey_date": "2026-09-10", "review_round": "2026-periodic",
              "income_per_capita_vnd": 1_100_000,
              "deprivations": {"health_insurance": True, "latrine": True, "telecom": True}}
    plan = [
        (reg.TOPIC, reg.SOURCE, reg.HOUSEHOLD_UPDATED, {
            "household_id": household, "version": 2, "reason": "sai địa chỉ", "household": snap,
            "changes": [{"field": "address", "before": "a", "after": "b"},
                        {"field": "phone", "before": "0901", "after": "0902"},
                        {"field": f"members.{member['member_id']}.date_of_birth",
                         "before": "1971-03-09", "after": "1971-03-19"}]}),
        (reg.TOPIC, reg.SOURCE, reg.MEMBER_ADDED, {"household_id": household, "version": 3,
                                                   "member": member, "household": snap}),
        (reg.TOPIC, reg.SOURCE, reg.MEMBER_UPDATED, {"household_id": household, "version": 4,
                                                     "member": member, "household": snap}),
        (reg.TOPIC, reg.SOURCE, reg.MEMBER_REMOVED, {"household_id": household, "version": 5,
                                                     "member": member, "household": snap}),
        (reg.TOPIC, reg.SOURCE, reg.HOUSEHOLD_SURVEYED, {"household_id": household,
                                                         "version": 6, "survey": survey,
                                                         "household": snap}),
        (elig.TOPIC, elig.SOURCE, elig.CLASSIFICATION_DECIDED, None),
        (elig.TOPIC, elig.SOURCE, elig.PROGRAM_ELIGIBILITY_CHANGED, {
            "household_id": household, "as_of": t0.isoformat(), "programs": [
                {"program_code": "VBSP-POOR-LOAN", "eligible": True, "reason": "poor"},
                {"program_code": "HOUSING-SUPPORT", "eligible": False, "reason": "no"}]}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.POSTING_OPENED, {
            "posting_id": "NY-1", "commune_code": commune, "review_round": "2026-periodic",
            "opens_at": t0.isoformat(), "closes_at": (t0 + timedelta(days=3)).isoformat(),
            "items": [{"household_id": household, "classification_id": "c-1",
                       "category": "poor"}]}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.COMPLAINT_RECEIVED, {
            "complaint_id": "KN-1", "commune_code": commune, "household_id": household,
            "category": "wrong_category", "channel": "web", "due_at": t0.isoformat()}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.COMPLAINT_RESOLVED, {
            "complaint_id": "KN-1", "commune_code": commune, "household_id": household,
            "category": "wrong_category", "outcome": "upheld", "note": "đúng"}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.VERIFICATION_REQUESTED, {
            "complaint_id": "KN-1", "household_id": household, "commune_code": commune,
            "reason": "khảo sát lại"}),
        (reg.TOPIC, reg.SOURCE, reg.VERIFICATION_REQUESTED, {
            "household_id": household, "version": 7, "complaint_id": "KN-1",
            "household": snap}),
        (reg.TOPIC, reg.SOURCE, reg.VERIFICATION_RESOLVED, {
            "household_id": household, "version": 8, "complaint_id": "KN-1",
            "survey_id": "s-2", "household": snap}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.POSTING_CLOSED, {
            "posting_id": "NY-1", "commune_code": commune, "closed_at": t0.isoformat(),
            "items": [{"household_id": household, "classification_id": "c-1",
                       "category": "poor"}]}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.POSTING_APPROVED, {
            "posting_id": "NY-1", "commune_code": commune, "review_round": "2026-periodic",
            "approved_at": t0.isoformat(), "items": [{"household_id": household,
                                                      "classification_id": "c-1",
                                                      "category": "poor"}]}),
        (elig.TOPIC, elig.SOURCE, elig.CLASSIFICATION_RECOGNIZED, {
            "classification_id": "c-1", "household_id": household, "category": "poor",
            "posting_id": "NY-1", "recognized_at": t0.isoformat()}),
        (disb.TOPIC, disb.SOURCE, disb.APPLICATION_SUBMITTED, {
            "application_id": "a-1", "household_id": household,
            "programme_code": "VBSP-POOR-LOAN", "amount_vnd": 50_000_000, "status": "submitted",
            "actor": "commune_officer:lan"}),
        (disb.TOPIC, disb.SOURCE, disb.APPLICATION_REVIEWED, {
            "application_id": "a-1", "household_id": household,
            "programme_code": "VBSP-POOR-LOAN", "amount_vnd": 50_000_000, "status": "reviewed"}),
        (disb.TOPIC, disb.SOURCE, disb.APPLICATION_CONFIRMED, {
            "application_id": "a-1", "household_id": household,
            "programme_code": "VBSP-POOR-LOAN", "amount_vnd": 50_000_000,
            "status": "confirmed"}),
        (disb.TOPIC, disb.SOURCE, disb.INSTRUCTION_ISSUED, {
            "instruction_id": "i-1", "application_id": "a-1", "programme_code": "VBSP-POOR-LOAN",
            "beneficiary_reference": "BR-1", "payee_name": "Lò Văn Pấng",
            "commune_code": commune, "transaction_point": "Điểm giao dịch xã",
            "amount_vnd": 50_000_000, "purpose": "loan",
            "scheduled_date": date.today().isoformat()}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.HOLD_REQUESTED, {
            "complaint_id": "KN-2", "household_id": household, "reason": "misconduct"}),
        (disb.TOPIC, disb.SOURCE, disb.HOLD_APPLIED, {
            "household_id": household, "complaint_id": "KN-2", "instruction_ids": ["i-1"]}),
        (sup_events.TOPIC, sup_events.SOURCE, sup_events.HOLD_RELEASED, {
            "complaint_id": "KN-2", "household_id": household}),
        (disb.TOPIC, disb.SOURCE, disb.HOLD_RELEASED, {
            "household_id": household, "complaint_id": "KN-2", "instruction_ids": ["i-1"]}),
        (disb.TOPIC, disb.SOURCE, disb.BANK_MESSAGE_RECEIVED, {
            "instruction_id": "i-1", "application_id": "a-1", "household_id": household,
            "partner": "vbsp", "status": "settled", "message_id": "m-1",
            "bank_reference": "VBSP-123", "amount_vnd": 50_000_000,
            "occurred_at": t0.isoformat(), "actor": "partner:vbsp"}),
        (disb.TOPIC, disb.SOURCE, disb.INSTRUCTION_STATUS_CHANGED, {
            "instruction_id": "i-1", "application_id": "a-1", "household_id": household,
            "status": "settled", "occurred_at": t0.isoformat()}),
        (disb.TOPIC, disb.SOURCE, disb.REPAYMENT_RECORDED, {
            "instruction_id": "i-1", "household_id": household, "amount_vnd": 1_000_000,
            "repaid_vnd": 1_000_000, "outstanding_principal_vnd": 49_000_000,
            "occurred_at": t0.isoformat()}),
        (disb.TOPIC, disb.SOURCE, disb.APPLICATION_REJECTED, {
            "application_id": "a-2", "household_id": household,
            "programme_code": "HOUSING-SUPPORT", "amount_vnd": 40_000_000,
            "status": "rejected", "reason": "not eligible"}),
        (reg.TOPIC, reg.SOURCE, reg.HOUSEHOLD_VISITED, {
            "household_id": household, "version": 8, "household": snap, "visit": {
                "visit_id": "v-1", "cadre_id": "c-9", "cadre_name": "Lò Thị Mai",
                "organisation": "womens_union", "visited_on": "2026-09-10",
                "outcome": "follow_up", "next_visit_due": "2026-10-01"}}),
        (reg.TOPIC, reg.SOURCE, reg.SHOCK_DECLARED, {
            "shock_id": "sh-1", "type": "flood", "occurred_on": "2026-10-12",
            "severity": "severe", "title": "Lũ quét", "review_due_on": "2026-11-12",
            "declared_at": t0.isoformat(), "actor": "province_officer:minh",
            "areas": [{"province_code": snap["location"]["province_code"],
                       "commune_code": commune, "villages": []}]}),
        (elig.TOPIC, elig.SOURCE, elig.REVIEW_OPENED, {
            "review_id": "r-1", "household_id": household, "shock_id": "sh-1",
            "shock_type": "flood", "shock_title": "Lũ quét", "occurred_on": "2026-10-12",
            "due_on": "2026-11-12", "opened_at": t0.isoformat()}),
        (elig.TOPIC, elig.SOURCE, elig.REVIEW_CLOSED, {
            "review_id": "r-1", "household_id": household, "shock_id": "sh-1",
            "survey_date": "2026-10-20", "survey_event_id": "e-9", "closed_at": t0.isoformat()}),
        *[(disb.TOPIC, disb.SOURCE, type_, {
            "restructuring_id": "rs-1", "loan_instruction_id": "i-1", "household_id": household,
            "programme_code": "VBSP-POOR-LOAN", "shock_id": "sh-1", "option": "extension",
            "months": 6, "status": status, "reason": "lũ cuốn trôi chuồng bò",
            "decision": "approve", "note": "Họp tổ", "new_term_months": 42,
            "new_maturity_date": "2030-03-10", "instruction_id": "i-2"})
          for type_, status in ((disb.RESTRUCTURING_REQUESTED, "requested"),
                                (disb.RESTRUCTURING_REVIEWED, "reviewed"),
                                (disb.RESTRUCTURING_CONFIRMED, "confirmed"),
                                (disb.RESTRUCTURING_APPLIED, "applied"))],
        (reg.TOPIC, reg.SOURCE, reg.HOUSEHOLD_ARCHIVED, {
            "household_id": household, "version": 9, "reason": "chuyển đi", "household": snap}),
    ]
    for minutes, (topic, source, type_, data) in enumerate(plan, start=1):
        if type_ == elig.CLASSIFICATION_DECIDED:
            env = await sup.decided(commune, household, village="Bản Mới",
                                    head_name="Lò Văn Pấng", cause=chain[-1])
            chain.append(env)
            continue
        env = next_event(source, type_, data, minutes=minutes)
        await sup.publish(topic, env)
    await sup.seen(household, chain[-1].id)
    await sup.seen(household, chain[6].id)  # the decision (its own clock)

    body = (await sup.timeline(household)).json()
    seen = {e["type"]: e for e in body["events"]}
    every = {*reg.EVENTS, *elig.EVENTS, *sup_events.EVENTS,
             *(t for t in disb.EVENTS if t != disb.BANK_STATUS)}
    assert every <= set(seen), every - set(seen)
    for type_, e in seen.items():
        assert e["summary"]["vi"] and e["summary"]["en"], type_
        assert not e["summary"]["en"].startswith("Event "), (type_, e["summary"])
        assert e["source"].startswith("/services/")
    assert seen[reg.HOUSEHOLD_REGISTERED]["summary"]["vi"] == "Hộ Lò Văn Pấng (Bản Mới) được " \
                                                              "đăng ký"
    assert seen[disb.REPAYMENT_RECORDED]["summary"]["en"] == (
        "Repayment of 1,000,000 VND; outstanding principal 49,000,000 VND")
    assert seen[disb.INSTRUCTION_STATUS_CHANGED]["summary"]["vi"].endswith("đã chi trả")
    assert seen[elig.REVIEW_OPENED]["summary"]["en"] == (
        "Listed for an ad-hoc review after the flood of 2026-10-12 (Lũ quét); to be re-surveyed "
        "by 2026-11-12")
    assert seen[disb.RESTRUCTURING_APPLIED]["summary"]["en"] == (
        "Bank applied the term extension of 6 months (loan i-1): new maturity 2030-03-10")
    assert seen[disb.RESTRUCTURING_REQUESTED]["summary"]["vi"].startswith("Đề nghị gia hạn nợ 6")
    bank = seen[disb.BANK_MESSAGE_RECEIVED]
    assert bank["actor"] == "partner:vbsp" and "reference VBSP-123" in bank["summary"]["en"]
    assert "1.100.000 đ" in seen[reg.HOUSEHOLD_SURVEYED]["summary"]["vi"]
    assert seen[reg.HOUSEHOLD_VISITED]["summary"]["en"] == (
        "Visited on 2026-09-10 by Lò Thị Mai (Women's Union): follow-up needed; next visit due "
        "2026-10-01")
    assert seen[disb.APPLICATION_SUBMITTED]["actor"] == "commune_officer:lan"
    assert seen[disb.INSTRUCTION_ISSUED]["trace_id"] == trace.split("-")[1]
    assert seen[disb.INSTRUCTION_ISSUED]["correlation_id"] == (first.correlation_id or first.id)
    assert seen[disb.INSTRUCTION_ISSUED]["causation_id"] == chain[
        [c.type for c in chain].index(disb.INSTRUCTION_ISSUED) - 1].id
    decided = seen[elig.CLASSIFICATION_DECIDED]["data"]
    assert decided["classification_id"] == chain[6].data["classification_id"]
    assert decided["explanation"]["threshold"] == 3  # which rule decided, for the auditor
    times = [e["time"] for e in body["events"]]
    assert times == sorted(times)
    r = await sup.timeline(household)
    assert national_id not in r.text and "1971-03-09" not in r.text and "0902" not in r.text
    assert "1971-03-19" not in r.text  # a member's field changed, named by its path

    # tree: a single chain, each event under its cause
    tree = (await sup.timeline(household, view="tree")).json()["events"]
    depth, node = 0, next(n for n in tree if n["event_id"] == first.id)
    while node["children"]:
        node = node["children"][0]
        depth += 1
    assert depth == len(chain) - 1 and node["event_id"] == chain[-1].id

    # scope: the commune's officers and auditors read it; another commune's officer does not
    assert (await sup.timeline(household, role="commune_officer", scope=commune)).status_code \
        == 200
    assert (await sup.timeline(household, role="province_officer", scope=commune[:2])
            ).status_code == 200
    assert (await sup.timeline(household, role="commune_officer", scope=new_commune())
            ).status_code == 404
    r = await sup.client.get(f"/v1/households/{household}/timeline",
                             headers=auth("bank_partner", partner="vbsp"))
    assert r.status_code == 403
    assert (await sup.timeline(str(uuid.uuid4()))).status_code == 404
