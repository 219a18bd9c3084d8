"""Pure supervision rules: posting window, masked references, the public form, complaint
lifecycle, answer deadlines, and a summary for every event type of every contract."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.disbursement import events as disb
from services.eligibility import events as elig
from services.registry import events as reg
from services.supervision import domain
from services.supervision import events as sup_events
from services.supervision.domain.postings import ComplaintState


def vn(y: int, m: int, d: int, h: int = 9) -> datetime:
    """A Vietnam local time."""
    return datetime(y, m, d, h, tzinfo=domain.VN_TZ)


def test_the_window_counts_whole_working_days_after_the_opening_day():
    # opened Thursday → Fri, Mon, Tue → closes Tuesday 17:00 local
    closes = domain.close_after_working_days(vn(2026, 11, 26), days=3)
    assert closes == vn(2026, 12, 1, 17).astimezone(UTC)
    # opened Friday night, Monday a holiday → Tue, Wed, Thu
    closes = domain.close_after_working_days(vn(2026, 11, 27, 22), days=3,
                                             holidays=[date(2026, 11, 30)])
    assert closes.astimezone(domain.VN_TZ).date() == date(2026, 12, 3)
    # a UTC evening is already the next day in Vietnam
    closes = domain.close_after_working_days(datetime(2026, 11, 26, 20, tzinfo=UTC), days=1,
                                             office_close=time(16, 30))
    assert closes.astimezone(domain.VN_TZ) == vn(2026, 11, 30, 16).replace(minute=30)
    with pytest.raises(domain.PostingError):
        domain.close_after_working_days(vn(2026, 11, 26), days=0)


def test_masked_reference_is_stable_keyed_and_reveals_nothing():
    hid = "5f0c2d1e-0000-4000-8000-000000000001"
    ref = domain.masked_reference(hid, key="k" * 32)
    assert ref == domain.masked_reference(hid, key="k" * 32)
    assert ref.startswith("HGD-") and len(ref) == 13 and "5f0c" not in ref.lower()
    # without the key, hashing candidate ids does not find the household
    assert ref != domain.masked_reference(hid, key="another key " * 3)
    plain = hashlib.sha256(hid.encode()).hexdigest().upper()
    assert ref != f"HGD-{plain[:4]}-{plain[4:8]}"


def test_approval_needs_every_complaint_settled_or_carried_over():
    complaints = [ComplaintState("a", "resolved"), ComplaintState("b", "in_progress"),
                  ComplaintState("c", "received"), ComplaintState("d", "closed"),
                  ComplaintState("e", "rejected")]
    assert domain.approval_blockers(complaints, carried_over=[]) == ["b", "c"]
    assert domain.approval_blockers(complaints, carried_over=["b", "c"]) == []


def test_public_form_checks():
    refs = {"HGD-AAAA-BBBB"}
    ok, errors = domain.check_public_form(
        {"category": "wrongly_excluded", "household": "not_on_list", "text": " Nhà bà Hoa ",
         "contact": "0912", "anonymous": "on"}, references=refs, text_max=10)
    assert errors == [] and ok["contact"] is None and ok["text"] == "Nhà bà Hoa"
    _, errors = domain.check_public_form({"text": "x" * 11}, references=refs, text_max=10)
    assert errors == [("category", "required"), ("text", "too_long")]
    _, errors = domain.check_public_form({"category": "wrong_category", "text": "t"},
                                         references=refs, text_max=10)
    assert errors == [("household", "listed_household_required")]
    _, errors = domain.check_public_form(
        {"category": "other", "household": "HGD-ZZZZ", "text": "t", "contact": "c" * 201},
        references=refs, text_max=10)
    assert errors == [("household", "unknown_household"), ("contact", "too_long")]


def test_complaint_lifecycle_and_deadlines():
    assert domain.initial_status("web") == "received"
    assert domain.initial_status("inspection_board") == "open"
    assert domain.next_status("received", "assign") == "in_progress"
    assert domain.next_status("in_progress", "resolve") == "resolved"
    assert domain.next_status("received", "reject") == "rejected"
    assert domain.next_status("rejected", "close") == "closed"
    for current, action in (("received", "resolve"), ("open", "close"),
                            ("closed", "assign"), ("resolved", "reject")):
        with pytest.raises(domain.ComplaintError):
            domain.next_status(current, action)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    due = domain.due_date(t, days=15)
    assert due == t + timedelta(days=15)
    assert not domain.is_overdue(status="open", due_at=due, now=due)
    assert domain.is_overdue(status="open", due_at=due, now=due + timedelta(seconds=1))
    assert domain.is_overdue(status="closed", due_at=due, now=due,
                             resolved_at=due + timedelta(days=1))
    assert not domain.is_overdue(status="closed", due_at=due, now=due + timedelta(days=99),
                                 resolved_at=due)
    assert domain.action_on_upheld("wrongly_included", "h") == "verification"
    assert domain.action_on_upheld("payment_not_received", "h") == "hold"
    assert domain.action_on_upheld("misconduct", None) is None
    assert domain.action_on_upheld("other", "h") is None


def test_answer_states():
    t = datetime(2026, 3, 1, tzinfo=UTC)
    due = domain.answer_due(t)
    assert due == t + timedelta(days=15)
    assert domain.answer_state(due_at=due, answered_at=None, now=t) == "awaiting"
    assert domain.answer_state(due_at=due, answered_at=None, now=due + timedelta(1)) == "overdue"
    assert domain.answer_state(due_at=due, answered_at=due, now=due) == "answered_in_time"
    assert domain.answer_state(due_at=due, answered_at=due + timedelta(1),
                               now=due) == "answered_late"


@pytest.mark.parametrize("event_type", sorted({*reg.EVENTS, *elig.EVENTS, *sup_events.EVENTS,
                                               *disb.EVENTS}))
def test_every_event_type_has_its_own_summary(event_type):
    vi, en = domain.summarize(event_type, {})
    assert vi and en and not en.startswith("Event "), (event_type, vi, en)
    assert domain.summarize("unknown.thing.v1", {}) == ("Sự kiện unknown.thing.v1",
                                                        "Event unknown.thing.v1")


def test_a_restructure_instruction_reads_as_applied_never_as_paid_out():
    issued = domain.summarize(disb.INSTRUCTION_ISSUED, {
        "kind": "restructure", "amount_vnd": 0, "restructure": {
            "option": "interest_freeze", "months": 3, "new_maturity_date": "2029-10-05"}})
    assert issued == ("Lệnh cơ cấu nợ gửi ngân hàng: khoanh lãi 3 tháng, đáo hạn 2029-10-05",
                      "Restructure instruction to the bank: interest freeze of 3 months, "
                      "maturity 2029-10-05")
    settled = {"instruction_id": "1234567890", "status": "settled", "kind": "restructure"}
    assert domain.summarize(disb.INSTRUCTION_STATUS_CHANGED, settled) == (
        "Lệnh cơ cấu nợ 12345678: ngân hàng đã áp dụng",
        "Restructure instruction 12345678: applied by the bank")
    assert domain.summarize(disb.BANK_MESSAGE_RECEIVED, settled | {"partner": "vbsp"})[1] == (
        "VBSP reported restructure instruction 12345678: applied by the bank")
    assert domain.summarize(disb.INSTRUCTION_STATUS_CHANGED, settled | {"kind": None})[1] == (
        "Instruction 12345678: paid out")


def test_approval_parts_bound_every_event():
    from services.supervision.domain.postings import approval_parts

    assert approval_parts([], [], size=3) == [([], [])]
    parts = approval_parts(list(range(7)), ["x"] * 4, size=3)
    assert parts == [([0, 1, 2], ["x"] * 3), ([3, 4, 5], ["x"]), ([6], [])]
