"""One-line human summaries (Vietnamese, English) of every event a household's timeline shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Summary = tuple[str, str]
D = dict[str, Any]

CATEGORY = {
    "poor": ("hộ nghèo", "poor"),
    "near_poor": ("hộ cận nghèo", "near-poor"),
    "middle": ("hộ có mức sống trung bình", "middle living standard"),
    "not_poor": ("hộ không nghèo", "not poor"),
    "incomplete": ("chưa đủ thông tin", "incomplete"),
}
COMPLAINT_CATEGORY = {
    "wrongly_included": ("đưa vào danh sách không đúng", "wrongly included"),
    "wrongly_excluded": ("bị bỏ sót khỏi danh sách", "wrongly excluded"),
    "wrong_category": ("xếp loại không đúng", "wrong category"),
    "payment_not_received": ("chưa nhận được tiền hỗ trợ/vay", "payment not received"),
    "misconduct": ("sai phạm, tiêu cực", "misconduct or bribery"),
    "other": ("khác", "other"),
}
CHANNEL = {"web": ("trang niêm yết công khai", "the public posting page"),
           "officer": ("cán bộ tiếp nhận", "an officer"),
           "inspection_board": ("Ban Thanh tra nhân dân", "the People's Inspection Board")}
OUTCOME = {"upheld": ("có cơ sở", "upheld"), "not_upheld": ("không có cơ sở", "not upheld")}
RESTRUCTURE_OPTION = {"extension": ("gia hạn nợ", "term extension"),
                      "interest_freeze": ("khoanh lãi", "interest freeze")}
RESTRUCTURE_STATUS = {"settled": ("ngân hàng đã áp dụng", "applied by the bank")}
INSTRUCTION_STATUS = {
    "approved": ("đã duyệt", "approved"), "sent": ("đã gửi ngân hàng", "sent to the bank"),
    "accepted": ("ngân hàng đã nhận", "accepted by the bank"),
    "rejected": ("ngân hàng từ chối", "rejected by the bank"),
    "settled": ("đã chi trả", "paid out"), "failed": ("chi trả thất bại", "failed"),
    "reversed": ("bị hoàn lại", "reversed"), "on_hold": ("tạm dừng", "on hold"),
    "cancelled": ("đã hủy", "cancelled"),
    "repayment_received": ("đã nhận tiền trả nợ", "repayment received"),
}
SHOCK = {"flood": ("lũ lụt", "flood"), "storm": ("bão", "storm"), "drought": ("hạn hán", "drought"),
         "landslide": ("sạt lở đất", "landslide"),
         "saltwater_intrusion": ("xâm nhập mặn", "saltwater intrusion"),
         "epidemic": ("dịch bệnh", "epidemic"), "other": ("thiên tai khác", "other disaster")}
ORGANISATION = {
    "party_cell": ("Chi bộ", "Party cell"), "womens_union": ("Hội Phụ nữ", "Women's Union"),
    "farmers_association": ("Hội Nông dân", "Farmers' Association"),
    "veterans_association": ("Hội Cựu chiến binh", "Veterans' Association"),
    "youth_union": ("Đoàn Thanh niên", "Youth Union"),
    "commune_staff": ("cán bộ xã", "commune staff"),
}
VISIT_OUTCOME = {
    "surveyed": ("đã khảo sát", "surveyed"), "not_home": ("không có ai ở nhà", "nobody at home"),
    "refused": ("hộ từ chối tiếp", "refused"), "moved": ("hộ đã chuyển đi", "moved away"),
    "deceased": ("người được thăm đã mất", "deceased"),
    "follow_up": ("cần đến lại", "follow-up needed"),
}
TRANSITION = {"escaped_poverty": ("thoát nghèo", "escaped poverty"),
              "escaped_near_poverty": ("thoát cận nghèo", "escaped near-poverty")}


def vnd_vi(amount: Any) -> str:
    """1.500.000 đ."""
    return f"{int(amount):,}".replace(",", ".") + " đ"


def vnd_en(amount: Any) -> str:
    """1,500,000 VND."""
    return f"{int(amount):,} VND"


def _pair(table: dict[str, tuple[str, str]], key: Any) -> tuple[str, str]:
    return table.get(str(key), (str(key), str(key)))


def _head(d: D) -> str:
    return (d.get("household") or {}).get("head_name") or d.get("head_name") or "?"


def _date(value: Any) -> str:
    return str(value or "?")[:10]


# --- registry -------------------------------------------------------------------------------

def _registered(d: D) -> Summary:
    village = ((d.get("household") or {}).get("location") or {}).get("village", "?")
    return (f"Hộ {_head(d)} ({village}) được đăng ký",
            f"Household of {_head(d)} ({village}) registered")


def _updated(d: D) -> Summary:
    fields = ", ".join(c.get("field", "?") for c in d.get("changes") or []) or "—"
    reason = d.get("reason") or "—"
    return (f"Cập nhật thông tin hộ ({fields}); lý do: {reason}",
            f"Household details changed ({fields}); reason: {reason}")


def _member(verb_vi: str, verb_en: str) -> Callable[[D], Summary]:
    def summary(d: D) -> Summary:
        name = (d.get("member") or {}).get("full_name", "?")
        return f"{verb_vi} thành viên {name}", f"Member {name} {verb_en}"
    return summary


def _surveyed(d: D) -> Summary:
    s = d.get("survey") or {}
    n = sum(1 for v in (s.get("deprivations") or {}).values() if v)
    income = s.get("income_per_capita_vnd", 0)
    return (f"Khảo sát ngày {_date(s.get('survey_date'))} (kỳ {s.get('review_round', '?')}): thu "
            f"nhập {vnd_vi(income)}/người/tháng, thiếu hụt {n} chỉ số",
            f"Surveyed on {_date(s.get('survey_date'))} (round {s.get('review_round', '?')}): "
            f"income {vnd_en(income)} per person per month, deprived in {n} indicators")


def _archived(d: D) -> Summary:
    reason = d.get("reason") or "—"
    return f"Hồ sơ hộ được lưu trữ; lý do: {reason}", f"Household archived; reason: {reason}"


def _registry_verification(d: D) -> Summary:
    return (f"Hộ được đánh dấu cần xác minh lại (khiếu nại {d.get('complaint_id', '?')})",
            f"Household flagged for re-verification (complaint {d.get('complaint_id', '?')})")


def _registry_verified(d: D) -> Summary:
    return (f"Đã xác minh lại bằng khảo sát {d.get('survey_id', '?')} "
            f"(khiếu nại {d.get('complaint_id', '?')})",
            f"Re-verified by survey {d.get('survey_id', '?')} "
            f"(complaint {d.get('complaint_id', '?')})")


def _visited(d: D) -> Summary:
    v = d.get("visit") or {}
    org_vi, org_en = _pair(ORGANISATION, v.get("organisation"))
    out_vi, out_en = _pair(VISIT_OUTCOME, v.get("outcome"))
    due = v.get("next_visit_due")
    name = v.get("cadre_name") or "?"
    return (f"Cán bộ {name} ({org_vi}) đến thăm hộ ngày {_date(v.get('visited_on'))}: {out_vi}"
            + (f"; hẹn đến lại ngày {_date(due)}" if due else ""),
            f"Visited on {_date(v.get('visited_on'))} by {name} ({org_en}): {out_en}"
            + (f"; next visit due {_date(due)}" if due else ""))


# --- eligibility ----------------------------------------------------------------------------

def _decided(d: D) -> Summary:
    cat_vi, cat_en = _pair(CATEGORY, d.get("category"))
    x = d.get("explanation") or {}
    if d.get("category") == "incomplete":
        missing = ", ".join(x.get("missing") or []) or "?"
        return (f"Chưa xếp loại được: thiếu chỉ số {missing}",
                f"Could not be classified: missing indicators {missing}")
    deprived = x.get("deprived") or []
    names_vi = ", ".join(i.get("name_vi", i.get("code", "?")) for i in deprived) or "không"
    names_en = ", ".join(i.get("name_en", i.get("code", "?")) for i in deprived) or "none"
    prev = d.get("previous_category")
    prev_vi = f" (trước: {_pair(CATEGORY, prev)[0]})" if prev else ""
    prev_en = f" (was {_pair(CATEGORY, prev)[1]})" if prev else ""
    return (f"Xếp loại tạm thời: {cat_vi}{prev_vi} — thu nhập "
            f"{vnd_vi(x.get('income_per_capita_vnd', 0))} (chuẩn {vnd_vi(x.get('income_line_vnd', 0))}),"
            f" thiếu hụt {x.get('deprivation_count', len(deprived))}/{x.get('threshold', '?')}: "
            f"{names_vi}",
            f"Provisionally classified {cat_en}{prev_en}: income "
            f"{vnd_en(x.get('income_per_capita_vnd', 0))} (line {vnd_en(x.get('income_line_vnd', 0))}),"
            f" {x.get('deprivation_count', len(deprived))} deprivations (threshold "
            f"{x.get('threshold', '?')}): {names_en}")


def _recognized(d: D) -> Summary:
    cat_vi, cat_en = _pair(CATEGORY, d.get("category"))
    t = d.get("transition")
    t_vi = f", {_pair(TRANSITION, t)[0]}" if t else ""
    t_en = f", {_pair(TRANSITION, t)[1]}" if t else ""
    return (f"Được công nhận {cat_vi}{t_vi} (niêm yết {d.get('posting_id', '?')})",
            f"Recognized as {cat_en}{t_en} (posting {d.get('posting_id', '?')})")


def _programmes(d: D) -> Summary:
    programs = d.get("programs") or []
    yes = [p.get("program_code", "?") for p in programs if p.get("eligible")]
    no = len(programs) - len(yes)
    return (f"Đủ điều kiện: {', '.join(yes) or 'không chương trình nào'}; không đủ: {no}",
            f"Eligible for: {', '.join(yes) or 'no programme'}; not eligible for {no}")


# --- supervision ----------------------------------------------------------------------------

def _posting_opened(d: D) -> Summary:
    return (f"Kết quả rà soát kỳ {d.get('review_round', '?')} được niêm yết công khai tại xã "
            f"{d.get('commune_code', '?')} đến {_date(d.get('closes_at'))}",
            f"Review results of round {d.get('review_round', '?')} posted publicly in commune "
            f"{d.get('commune_code', '?')} until {_date(d.get('closes_at'))}")


def _posting_closed(d: D) -> Summary:
    return (f"Kết thúc niêm yết công khai {d.get('posting_id', '?')}",
            f"Public posting {d.get('posting_id', '?')} closed")


def _posting_approved(d: D) -> Summary:
    parts = d.get("parts") or 1
    vi = f" (phần {d.get('part', 1)}/{parts})" if parts > 1 else ""
    en = f" (part {d.get('part', 1)} of {parts})" if parts > 1 else ""
    return (f"Chủ tịch UBND xã phê duyệt kết quả rà soát kỳ {d.get('review_round', '?')}{vi}",
            f"Commune chair approved the review results of round {d.get('review_round', '?')}"
            f"{en}")


def _complaint_received(d: D) -> Summary:
    cat_vi, cat_en = _pair(COMPLAINT_CATEGORY, d.get("category"))
    ch_vi, ch_en = _pair(CHANNEL, d.get("channel"))
    return (f"Tiếp nhận khiếu nại ({cat_vi}) qua {ch_vi}, hạn trả lời {_date(d.get('due_at'))}",
            f"Complaint received ({cat_en}) through {ch_en}, answer due {_date(d.get('due_at'))}")


def _complaint_resolved(d: D) -> Summary:
    cat_vi, cat_en = _pair(COMPLAINT_CATEGORY, d.get("category"))
    o_vi, o_en = _pair(OUTCOME, d.get("outcome"))
    note = d.get("note") or ""
    return (f"Khiếu nại ({cat_vi}) được giải quyết: {o_vi} — {note}",
            f"Complaint ({cat_en}) resolved: {o_en} — {note}")


def _verification(d: D) -> Summary:
    return (f"Yêu cầu xác minh lại thông tin hộ: {d.get('reason', '')}",
            f"Re-verification of the household requested: {d.get('reason', '')}")


def _hold_requested(d: D) -> Summary:
    return (f"Yêu cầu tạm dừng chi trả: {d.get('reason', '')}",
            f"Payment hold requested: {d.get('reason', '')}")


def _hold_released_sup(d: D) -> Summary:
    return (f"Yêu cầu gỡ tạm dừng chi trả (khiếu nại {d.get('complaint_id', '?')})",
            f"Payment hold release requested (complaint {d.get('complaint_id', '?')})")


# --- disbursement ---------------------------------------------------------------------------

def _application(verb_vi: str, verb_en: str) -> Callable[[D], Summary]:
    def summary(d: D) -> Summary:
        why = d.get("reason") or d.get("note")
        return (f"Hồ sơ {d.get('programme_code', '?')} {vnd_vi(d.get('amount_vnd', 0))} {verb_vi}"
                + (f": {why}" if why else ""),
                f"Application for {d.get('programme_code', '?')} {vnd_en(d.get('amount_vnd', 0))} "
                f"{verb_en}" + (f": {why}" if why else ""))
    return summary


def _issued(d: D) -> Summary:
    if d.get("kind") == "restructure":
        r = d.get("restructure") or {}
        o_vi, o_en = _pair(RESTRUCTURE_OPTION, r.get("option"))
        return (f"Lệnh cơ cấu nợ gửi ngân hàng: {o_vi} {r.get('months', '?')} tháng, đáo hạn "
                f"{_date(r.get('new_maturity_date'))}",
                f"Restructure instruction to the bank: {o_en} of {r.get('months', '?')} months, "
                f"maturity {_date(r.get('new_maturity_date'))}")
    return (f"Lệnh chi {vnd_vi(d.get('amount_vnd', 0))} ({d.get('programme_code', '?')}) ngày "
            f"{_date(d.get('scheduled_date'))} tại {d.get('transaction_point', '?')}",
            f"Payment instruction {vnd_en(d.get('amount_vnd', 0))} ({d.get('programme_code', '?')}) "
            f"for {_date(d.get('scheduled_date'))} at {d.get('transaction_point', '?')}")


def _instruction_words(d: D) -> tuple[str, str, str, str]:
    """What the instruction is called, and its status, in vi and en (a settled restructure
    instruction was applied: no money was paid out)."""
    if d.get("kind") == "restructure":
        s_vi, s_en = _pair(INSTRUCTION_STATUS | RESTRUCTURE_STATUS, d.get("status"))
        return "lệnh cơ cấu nợ", "restructure instruction", s_vi, s_en
    s_vi, s_en = _pair(INSTRUCTION_STATUS, d.get("status"))
    return "lệnh chi", "instruction", s_vi, s_en


def _instruction_status(d: D) -> Summary:
    n_vi, n_en, s_vi, s_en = _instruction_words(d)
    why = d.get("reason")
    ref = d.get("instruction_id", "?")[:8]
    return (f"{n_vi.capitalize()} {ref}: {s_vi}" + (f" ({why})" if why else ""),
            f"{n_en.capitalize()} {ref}: {s_en}" + (f" ({why})" if why else ""))


def _hold_applied(d: D) -> Summary:
    n, sent = len(d.get("instruction_ids") or []), len(d.get("already_sent_instruction_ids") or [])
    return (f"Tạm dừng {n} lệnh chi do khiếu nại {d.get('complaint_id', '?')}"
            + (f"; {sent} lệnh đã gửi ngân hàng" if sent else ""),
            f"{n} instruction(s) held for complaint {d.get('complaint_id', '?')}"
            + (f"; {sent} already with the bank" if sent else ""))


def _hold_released(d: D) -> Summary:
    n = len(d.get("instruction_ids") or [])
    return (f"Gỡ tạm dừng (khiếu nại {d.get('complaint_id', '?')}): tiếp tục {n} lệnh chi",
            f"Hold released (complaint {d.get('complaint_id', '?')}): {n} instruction(s) resume")


def _repayment(d: D) -> Summary:
    return (f"Trả nợ {vnd_vi(d.get('amount_vnd', 0))}; dư nợ gốc còn "
            f"{vnd_vi(d.get('outstanding_principal_vnd', 0))}",
            f"Repayment of {vnd_en(d.get('amount_vnd', 0))}; outstanding principal "
            f"{vnd_en(d.get('outstanding_principal_vnd', 0))}")


def _bank_status(d: D) -> Summary:
    s_vi, s_en = _pair(INSTRUCTION_STATUS, d.get("status"))
    return f"Ngân hàng báo: {s_vi}", f"Bank reported: {s_en}"


def _bank_message(d: D) -> Summary:
    n_vi, n_en, s_vi, s_en = _instruction_words(d)
    ref = d.get("bank_reference")
    bank = str(d.get("partner", "?")).upper()
    return (f"{bank} báo {n_vi} {d.get('instruction_id', '?')[:8]}: {s_vi}"
            + (f" (số tham chiếu {ref})" if ref else ""),
            f"{bank} reported {n_en} {d.get('instruction_id', '?')[:8]}: {s_en}"
            + (f" (reference {ref})" if ref else ""))





def _restructuring_what(d: D) -> tuple[str, str]:
    o_vi, o_en = _pair(RESTRUCTURE_OPTION, d.get("option"))
    months = d.get("months", "?")
    return (f"{o_vi} {months} tháng (khoản vay {str(d.get('loan_instruction_id', '?'))[:8]})",
            f"{o_en} of {months} months (loan {str(d.get('loan_instruction_id', '?'))[:8]})")


def _restructuring_requested(d: D) -> Summary:
    vi, en = _restructuring_what(d)
    why = d.get("reason") or ""
    return (f"Đề nghị {vi} do thiệt hại sau thiên tai {d.get('shock_id', '?')}: {why}",
            f"Restructuring requested: {en} after shock {d.get('shock_id', '?')}: {why}")


def _restructuring_reviewed(d: D) -> Summary:
    vi, en = _restructuring_what(d)
    ok = d.get("decision") != "reject"
    note = d.get("note") or ""
    return (f"Tổ TK&VV {'đồng ý' if ok else 'không đồng ý'} {vi}: {note}",
            f"Savings group {'approved' if ok else 'rejected'} the {en}: {note}")


def _restructuring_confirmed(d: D) -> Summary:
    vi, en = _restructuring_what(d)
    return (f"UBND xã xác nhận {vi}; lệnh cơ cấu nợ gửi ngân hàng",
            f"Commune confirmed the {en}; restructure instruction sent to the bank")


def _restructuring_applied(d: D) -> Summary:
    vi, en = _restructuring_what(d)
    if d.get("option") == "interest_freeze":
        return (f"Ngân hàng đã áp dụng {vi}: không tính lãi từ "
                f"{_date(d.get('interest_frozen_from'))} đến {_date(d.get('interest_frozen_until'))}",
                f"Bank applied the {en}: no interest from {_date(d.get('interest_frozen_from'))} "
                f"until {_date(d.get('interest_frozen_until'))}")
    return (f"Ngân hàng đã áp dụng {vi}: đáo hạn mới {_date(d.get('new_maturity_date'))}",
            f"Bank applied the {en}: new maturity {_date(d.get('new_maturity_date'))}")


def _shock(d: D) -> Summary:
    vi, en = _pair(SHOCK, d.get("type"))
    places = ", ".join(
        (a.get("commune_code") or "?") + (f" ({', '.join(a['villages'])})" if a.get("villages")
                                          else "") for a in d.get("areas") or ())
    return (f"Công bố {vi} ngày {_date(d.get('occurred_on'))}: {d.get('title', '')} "
            f"— xã {places}",
            f"{en.capitalize()} of {_date(d.get('occurred_on'))} declared: {d.get('title', '')} "
            f"— communes {places}")


def _review_opened(d: D) -> Summary:
    vi, en = _pair(SHOCK, d.get("shock_type"))
    title = d.get("shock_title") or ""
    return (f"Đưa vào rà soát thường xuyên do {vi} ngày {_date(d.get('occurred_on'))} "
            f"({title}); cần khảo sát lại trước {_date(d.get('due_on'))}",
            f"Listed for an ad-hoc review after the {en} of {_date(d.get('occurred_on'))} "
            f"({title}); to be re-surveyed by {_date(d.get('due_on'))}")


def _review_closed(d: D) -> Summary:
    late_vi, late_en = (" (quá hạn)", " (late)") if d.get("overdue") else ("", "")
    return (f"Đã khảo sát lại ngày {_date(d.get('survey_date'))}{late_vi}: kết thúc rà soát",
            f"Re-surveyed on {_date(d.get('survey_date'))}{late_en}: review closed")


SUMMARIES: dict[str, Callable[[D], Summary]] = {
    "registry.household.registered.v1": _registered,
    "registry.household.updated.v1": _updated,
    "registry.household.member_added.v1": _member("Thêm", "added"),
    "registry.household.member_removed.v1": _member("Xóa", "removed"),
    "registry.household.member_updated.v1": _member("Cập nhật", "updated"),
    "registry.household.surveyed.v1": _surveyed,
    "registry.household.archived.v1": _archived,
    "registry.household.verification_requested.v1": _registry_verification,
    "registry.household.verification_resolved.v1": _registry_verified,
    "registry.household.visited.v1": _visited,
    "eligibility.classification.decided.v1": _decided,
    "eligibility.classification.recognized.v1": _recognized,
    "eligibility.program_eligibility.changed.v1": _programmes,
    "registry.shock.declared.v1": _shock,
    "eligibility.review.opened.v1": _review_opened,
    "eligibility.review.closed.v1": _review_closed,
    "supervision.posting.opened.v1": _posting_opened,
    "supervision.posting.closed.v1": _posting_closed,
    "supervision.posting.approved.v1": _posting_approved,
    "supervision.complaint.received.v1": _complaint_received,
    "supervision.complaint.resolved.v1": _complaint_resolved,
    "supervision.verification_requested.v1": _verification,
    "supervision.hold_requested.v1": _hold_requested,
    "supervision.hold_released.v1": _hold_released_sup,
    "disbursement.application.submitted.v1": _application("được nộp", "submitted"),
    "disbursement.application.reviewed.v1": _application("đã được tổ/hội xét", "reviewed"),
    "disbursement.application.confirmed.v1": _application("được UBND xã xác nhận", "confirmed"),
    "disbursement.application.rejected.v1": _application("bị từ chối", "rejected"),
    "disbursement.instruction.issued.v1": _issued,
    "disbursement.instruction.status_changed.v1": _instruction_status,
    "disbursement.hold.applied.v1": _hold_applied,
    "disbursement.hold.released.v1": _hold_released,
    "disbursement.loan.repayment_recorded.v1": _repayment,
    "disbursement.bank_message.received.v1": _bank_message,
    "disbursement.restructuring.requested.v1": _restructuring_requested,
    "disbursement.restructuring.reviewed.v1": _restructuring_reviewed,
    "disbursement.restructuring.confirmed.v1": _restructuring_confirmed,
    "disbursement.restructuring.applied.v1": _restructuring_applied,
    "bank.instruction.status.v1": _bank_status,
}


def summarize(event_type: str, data: dict[str, Any]) -> Summary:
    """A one-line human summary (vi, en) of an event for the beneficiary timeline."""
    fn = SUMMARIES.get(event_type)
    if fn is not None:
        try:
            return fn(data)
        except (AttributeError, KeyError, TypeError, ValueError):
            pass  # a malformed payload still gets a line: the generic one below
    return f"Sự kiện {event_type}", f"Event {event_type}"
