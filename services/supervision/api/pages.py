"""Server-rendered public pages (Jinja2): Vietnamese by default, English on `?lang=en`."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.supervision import domain
from services.supervision.domain.summaries import COMPLAINT_CATEGORY, vnd_en, vnd_vi

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LANGS = ("vi", "en")

TEXT: dict[str, dict[str, str]] = {
    "sign_in": {"vi": "Đăng nhập cán bộ", "en": "Officer sign-in"},
    "sign_in_text": {"vi": "Dán mã truy cập (access token) do hệ thống đăng nhập của cơ quan cấp. "
                           "Mã được giữ trong trình duyệt này đến khi hết hạn hoặc khi bạn đăng "
                           "xuất, và chỉ dùng để xem.",
                     "en": "Paste the access token your identity provider issued. It is kept in "
                           "this browser until it expires or you sign out, and only for reading."},
    "token": {"vi": "Mã truy cập", "en": "Access token"},
    "token_refused": {"vi": "Mã truy cập không hợp lệ hoặc đã hết hạn.",
                      "en": "The access token is not valid or has expired."},
    "token_missing": {"vi": "Hãy dán mã truy cập.", "en": "Paste the access token."},
    "signed_out": {"vi": "Đã đăng xuất", "en": "Signed out"},
    "sign_out": {"vi": "Đăng xuất", "en": "Sign out"},
    "signed_out_text": {"vi": "Mã truy cập đã được xóa khỏi trình duyệt này.",
                        "en": "The access token was removed from this browser."},
    "site": {"vi": "Công khai, minh bạch — Mọi nhà", "en": "Open and accountable — Every Door"},
    "posting_title": {"vi": "Niêm yết công khai kết quả rà soát hộ nghèo, hộ cận nghèo",
                      "en": "Public posting of the poor and near-poor household review"},
    "commune": {"vi": "Xã", "en": "Commune"},
    "round": {"vi": "Kỳ rà soát", "en": "Review round"},
    "window": {"vi": "Thời gian niêm yết", "en": "Posted"},
    "open_notice": {"vi": "Người dân có ý kiến, khiếu nại về danh sách xin gửi trước {closes} "
                          "bằng mẫu ở cuối trang hoặc tại UBND xã.",
                    "en": "Residents may comment on or contest this list until {closes}, with "
                          "the form at the end of this page or at the commune office."},
    "closed_notice": {"vi": "Thời gian niêm yết đã kết thúc; không nhận thêm khiếu nại qua trang "
                            "này.",
                      "en": "The posting period has ended; this page takes no more complaints."},
    "privacy": {"vi": "Số định danh, ngày sinh và số điện thoại không được công bố; mỗi hộ có một "
                      "mã tham chiếu.",
                "en": "No ID numbers, birth dates or phone numbers are published; each household "
                      "has a reference code."},
    "households": {"vi": "hộ", "en": "households"},
    "reference": {"vi": "Mã tham chiếu", "en": "Reference"},
    "head": {"vi": "Chủ hộ", "en": "Head of household"},
    "category": {"vi": "Phân loại", "en": "Category"},
    "was": {"vi": "trước:", "en": "was"},
    "indicators": {"vi": "Chỉ số thiếu hụt", "en": "Deprivations"},
    "complain": {"vi": "Gửi ý kiến, khiếu nại", "en": "Comment or complain"},
    "fix_errors": {"vi": "Vui lòng sửa các lỗi sau:", "en": "Please correct the following:"},
    "f_category": {"vi": "Nội dung khiếu nại", "en": "What is wrong"},
    "choose": {"vi": "chọn", "en": "choose"},
    "f_household": {"vi": "Hộ liên quan", "en": "Household concerned"},
    "none_general": {"vi": "không cụ thể hộ nào", "en": "no particular household"},
    "not_on_list": {"vi": "Một hộ không có trong danh sách", "en": "A household not on the list"},
    "f_text": {"vi": "Nội dung", "en": "Details"},
    "text_hint": {"vi": "Tối đa {n} ký tự.", "en": "At most {n} characters."},
    "f_contact": {"vi": "Liên hệ (không bắt buộc)", "en": "Contact (optional)"},
    "contact_hint": {"vi": "Chỉ cán bộ giải quyết khiếu nại thấy thông tin này; không công bố và "
                           "không cho hộ liên quan biết.",
                     "en": "Only the officers handling the complaint see this; it is never "
                           "published nor shown to the household concerned."},
    "f_anonymous": {"vi": "Gửi ẩn danh (không lưu thông tin liên hệ)",
                    "en": "File anonymously (no contact is kept)"},
    "submit": {"vi": "Gửi khiếu nại", "en": "Send complaint"},
    "thanks": {"vi": "Đã nhận khiếu nại", "en": "Complaint received"},
    "thanks_text": {"vi": "Cảm ơn bạn. Khiếu nại sẽ được trả lời trước {due}.",
                    "en": "Thank you. The complaint will be answered by {due}."},
    "your_reference": {"vi": "Mã khiếu nại của bạn:", "en": "Your complaint reference:"},
    "back": {"vi": "Quay lại danh sách", "en": "Back to the list"},
    "not_found": {"vi": "Không tìm thấy", "en": "Not found"},
    "not_found_text": {"vi": "Không có trang niêm yết này.", "en": "There is no such posting."},
    "closed": {"vi": "Đã hết thời gian niêm yết", "en": "Posting closed"},
    "too_many": {"vi": "Gửi quá nhiều lần", "en": "Too many complaints"},
    "refused": {"vi": "Không nhận được khiếu nại", "en": "Complaint not accepted"},
    "refused_text": {"vi": "Khiếu nại phải được gửi từ trang niêm yết của xã; vui lòng mở lại "
                           "trang danh sách và gửi lại.",
                     "en": "Complaints must be sent from the commune's posting page; please open "
                           "the list again and resend."},
    "too_many_text": {"vi": "Bạn đã gửi nhiều khiếu nại trong thời gian ngắn; vui lòng thử lại "
                            "sau hoặc đến UBND xã.",
                      "en": "Too many complaints were sent from this connection; please try again "
                            "later or visit the commune office."},
    "commune_title": {"vi": "Giám sát cộng đồng — xã", "en": "Community supervision — commune"},
    "answers_summary": {"vi": "UBND xã trả lời đúng hạn: {in_time} · quá hạn: {breached} · đang "
                              "chờ: {awaiting}",
                        "en": "Commune answers in time: {in_time} · late or overdue: {breached} "
                              "· awaiting: {awaiting}"},
    "postings": {"vi": "Niêm yết danh sách hộ nghèo, cận nghèo", "en": "Household list postings"},
    "open_projects": {"vi": "Công trình, dự án đang thực hiện", "en": "Open local projects"},
    "budget": {"vi": "Tổng vốn", "en": "Budget"},
    "investor": {"vi": "Chủ đầu tư", "en": "Investor"},
    "contractor": {"vi": "Nhà thầu", "en": "Contractor"},
    "no_projects": {"vi": "Không có dự án nào đang thực hiện.", "en": "No open project."},
    "no_findings": {"vi": "Chưa có kiến nghị.", "en": "No findings yet."},
    "recommendations": {"vi": "Kiến nghị của Ban Thanh tra nhân dân",
                        "en": "People's Inspection Board recommendations"},
    "severity": {"vi": "Mức độ", "en": "Severity"},
    "finding": {"vi": "Phát hiện", "en": "Finding"},
    "recommendation": {"vi": "Kiến nghị", "en": "Recommendation"},
    "answer_due": {"vi": "Hạn trả lời", "en": "Answer due"},
    "answer": {"vi": "Trả lời của UBND xã", "en": "Commune's answer"},
}

ERRORS: dict[str, tuple[str, str]] = {
    "category.required": ("Chưa chọn nội dung khiếu nại.", "category: choose what is wrong."),
    "category.unknown_category": ("Nội dung khiếu nại không hợp lệ.",
                                  "category: not one of the listed choices."),
    "household.unknown_household": ("Hộ đã chọn không có trong danh sách này.",
                                    "household: not a household of this posting."),
    "household.listed_household_required": (
        "Khiếu nại này cần chọn một hộ trong danh sách.",
        "household: this kind of complaint must name a household on the list."),
    "household.already_listed": (
        "Hộ này đã có trong danh sách; hãy chọn \"Một hộ không có trong danh sách\".",
        "household: this household is on the list; choose \"a household not on the list\"."),
    "text.required": ("Chưa nhập nội dung.", "text: describe the problem."),
    "text.too_long": ("Nội dung quá dài.", "text: too long."),
    "website.must_be_empty": ("Không gửi được biểu mẫu.", "website: must be left empty."),
    "contact.too_long": ("Thông tin liên hệ quá dài (tối đa 200 ký tự).",
                         "contact: at most 200 characters."),
}

CATEGORY_LABELS = {"vi": {"poor": "Hộ nghèo", "near_poor": "Hộ cận nghèo",
                          "middle": "Hộ có mức sống trung bình", "not_poor": "Hộ không nghèo",
                          "incomplete": "Chưa đủ thông tin"},
                   "en": {"poor": "Poor", "near_poor": "Near-poor",
                          "middle": "Middle living standard", "not_poor": "Not poor",
                          "incomplete": "Incomplete"}}
POSTING_STATUS = {"vi": {"open": "đang niêm yết", "closed": "đã kết thúc niêm yết",
                         "approved": "đã phê duyệt"},
                  "en": {"open": "open", "closed": "closed", "approved": "approved"}}
PROJECT_TYPES = {"vi": {"road": "đường giao thông", "cultural_house": "nhà văn hóa",
                        "irrigation": "thủy lợi", "school": "trường học",
                        "clean_water": "nước sạch", "health_station": "trạm y tế",
                        "market": "chợ", "bridge": "cầu", "other": "khác"},
                 "en": {"road": "road", "cultural_house": "cultural house",
                        "irrigation": "irrigation", "school": "school",
                        "clean_water": "clean water", "health_station": "health station",
                        "market": "market", "bridge": "bridge", "other": "other"}}
SEVERITIES = {"vi": {"low": "thấp", "medium": "trung bình", "high": "cao",
                     "critical": "nghiêm trọng"},
              "en": {"low": "low", "medium": "medium", "high": "high", "critical": "critical"}}
ANSWER_STATES = {"vi": {"answered_in_time": "Đã trả lời đúng hạn",
                        "answered_late": "Trả lời quá hạn", "awaiting": "Đang chờ trả lời",
                        "overdue": "Quá hạn chưa trả lời"},
                 "en": {"answered_in_time": "Answered in time", "answered_late": "Answered late",
                        "awaiting": "Awaiting answer", "overdue": "Overdue, not answered"}}


def language(lang: str | None) -> str:
    """The page language: `vi` unless `en` is asked for."""
    return lang if lang in LANGS else "vi"


def error_message(field: str, code: str, lang: str) -> str:
    """A form error in the page language."""
    vi, en = ERRORS.get(f"{field}.{code}", (f"{field}: {code}", f"{field}: {code}"))
    return vi if lang == "vi" else en


def local_time(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return str(value)
    return value.astimezone(domain.VN_TZ).strftime("%H:%M %d/%m/%Y")


def _money(value: Any, lang: str) -> str:
    return vnd_vi(value) if lang == "vi" else vnd_en(value)


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
_env.filters["local"] = local_time
_env.filters["money"] = _money


def render(template: str, *, lang: str, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a page in `lang`."""
    t = {k: v[lang] for k, v in TEXT.items()}
    html = _env.get_template(template).render(
        lang=lang, t=t, categories=CATEGORY_LABELS[lang], posting_status=POSTING_STATUS[lang],
        project_types=PROJECT_TYPES[lang], severities=SEVERITIES[lang],
        answer_states=ANSWER_STATES[lang],
        complaint_categories={k: (v[0] if lang == "vi" else v[1]).capitalize()
                              for k, v in COMPLAINT_CATEGORY.items()},
        **context)
    return HTMLResponse(html, status_code=status, headers={**security_headers(html),
                                                           **(headers or {})})


_STYLE = re.compile(r"<style>(.*?)</style>", re.S)
NONE = "'none'"


def security_headers(html: str) -> dict[str, str]:
    """Headers of every public page: nothing loads from elsewhere and no script runs (only the
    page's own inline style, by its hash), forms post back here only, no page may be framed
    (clickjacking a complaint form), no content-type sniffing, no referrer leaves the site."""
    styles = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _STYLE.findall(html))
    return {
        "Content-Security-Policy": (f"default-src 'none'; style-src {styles or NONE}; "
                                    "img-src 'self' data:; form-action 'self'; "
                                    "frame-ancestors 'none'; base-uri 'none'"),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def message(*, lang: str, status: int, heading: str, text: str, kind: str = "errors",
            back: str | None = None, reference: str | None = None,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    """A one-message page (thank you, not found, closed, too many)."""
    return render("message.html", lang=lang, status=status, heading=heading, message=text,
                  kind=kind, back=back, reference=reference, headers=headers)


def text(key: str, lang: str) -> str:
    """One string of the page dictionary."""
    return TEXT[key][lang]
