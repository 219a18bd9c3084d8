"""The officers' dashboard (login): a server-rendered page with inline SVG charts, vi/en."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from services.supervision.api import charts, pages
from services.supervision.api.common import CommuneQ, read_role
from services.supervision.config import Settings
from services.supervision.handlers import dashboard, service_of
from shared.auth import CurrentUser
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(tags=["dashboard"])
ProvinceQ = Annotated[str | None, Query(pattern=r"^\d{2}$")]
Lang = Annotated[str | None, Query(pattern=r"^(vi|en)$")]
RoundQ = Annotated[str | None, Query(max_length=100)]

TEXT: dict[str, dict[str, str]] = {
    "title": {"vi": "Bảng theo dõi", "en": "Dashboard"},
    "scope_all": {"vi": "Toàn bộ phạm vi của bạn", "en": "Your whole scope"},
    "province": {"vi": "Tỉnh/thành phố", "en": "Province"},
    "by_category": {"vi": "Hộ theo phân loại", "en": "Households by category"},
    "by_village": {"vi": "Hộ nghèo, cận nghèo theo thôn", "en": "Poor and near-poor households "
                                                               "by village"},
    "funnel": {"vi": "Tiến độ kỳ rà soát", "en": "Review round progress"},
    "visited": {"vi": "Đã đến hộ", "en": "Visited"},
    "surveyed": {"vi": "Đã khảo sát", "en": "Surveyed"},
    "classified": {"vi": "Đã phân loại", "en": "Classified"},
    "posted": {"vi": "Đã niêm yết", "en": "Posted"},
    "recognized": {"vi": "Đã công nhận", "en": "Recognized"},
    "complaints": {"vi": "Khiếu nại (hạn trả lời 15 ngày)",
                   "en": "Complaints (15-day answer deadline)"},
    "c_open": {"vi": "Đang giải quyết", "en": "Open"},
    "c_overdue": {"vi": "Quá hạn", "en": "Overdue"},
    "loans": {"vi": "Vay vốn ưu đãi", "en": "Preferential loans"},
    "l_confirmed": {"vi": "Hồ sơ đã xác nhận", "en": "Applications confirmed"},
    "l_disbursed": {"vi": "Đã giải ngân", "en": "Disbursed"},
    "l_repaid": {"vi": "Đã trả", "en": "Repaid"},
    "l_outstanding": {"vi": "Dư nợ", "en": "Outstanding"},
    "l_overdue": {"vi": "Nợ quá hạn", "en": "Overdue"},
    "l_restructured": {"vi": "Cơ cấu lại nợ", "en": "Restructured"},
    "unknown": {"vi": "chưa có dữ liệu (ngân hàng chưa báo về)",
                "en": "not known (the banks do not report it yet)"},
    "support": {"vi": "Hỗ trợ đã chi", "en": "Support paid"},
    "findings": {"vi": "Kiến nghị giám sát: UBND xã trả lời", "en": "Supervision findings: "
                                                                   "commune answers"},
    "f_in_time": {"vi": "Đúng hạn", "en": "In time"},
    "f_late": {"vi": "Trễ hạn", "en": "Late"},
    "f_awaiting": {"vi": "Đang chờ", "en": "Awaiting"},
    "f_overdue": {"vi": "Quá hạn chưa trả lời", "en": "Overdue"},
    "count_money": {"vi": "{n} khoản · {vnd}", "en": "{n} · {vnd}"},
    "as_of": {"vi": "Số liệu lúc", "en": "Figures as of"},
    "round_none": {"vi": "chưa có", "en": "none yet"},
}


def _link(path: str, area: dashboard.Area, **query: Any) -> str:
    q = {**area.query(), **{k: v for k, v in query.items() if v is not None}}
    return f"{path}?{urlencode(q)}" if q else path


@router.get("/dashboard", response_class=HTMLResponse, dependencies=[read_role],
            responses=problem_responses(404, s404="commune or province outside your scope"))
async def dashboard_page(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                         province_code: ProvinceQ = None, review_round: RoundQ = None,
                         lang: Lang = None) -> HTMLResponse:
    """Households by category and village, the review round's funnel, complaints, loans and
    findings in your scope (or one commune / province of it); each figure links to its list."""
    lang = pages.language(lang)
    async with rt.snapshot() as session:
        area = await dashboard.area_of(session, user, commune_code=commune_code,
                                       province_code=province_code)
        f = await dashboard.figures(session, user=user, area=area, review_round=review_round)
    settings = service_of(rt).settings
    d = {k: v[lang] for k, v in TEXT.items()}
    cats = pages.CATEGORY_LABELS[lang]
    postings = _link("/v1/postings", area)
    svg = {
        "by_category": charts.bars(
            name="by_category", title=d["by_category"], lang=lang,
            items=[charts.Bar(k, cats.get(k, k), n, postings) for k, n in f["by_category"]]),
        "by_village": charts.bars(
            name="by_village", title=d["by_village"], lang=lang,
            items=[charts.Bar(v, v, n, postings) for v, n in f["by_village"]]),
        "funnel": charts.bars(
            name="funnel", title=d["funnel"], lang=lang, funnel=True,
            items=[charts.Bar(k, d[k], n, postings if k in ("posted", "recognized") else None)
                   for k, n in f["funnel"]]),
        "complaints": charts.bars(
            name="complaints", title=d["complaints"], lang=lang,
            items=[charts.Bar("open", d["c_open"], f["complaints"]["open"],
                              _link("/v1/complaints", area, status="open")),
                   charts.Bar("overdue", d["c_overdue"], f["complaints"]["overdue"],
                              _link("/v1/complaints", area, overdue="true"))]),
        "findings": charts.bars(
            name="findings", title=d["findings"], lang=lang,
            items=[charts.Bar(k, d[f"f_{k}"], f["findings"][k],
                              _link("/v1/findings", area,
                                    breached="false" if k in ("in_time", "awaiting") else "true"))
                   for k in ("in_time", "late", "awaiting", "overdue")]),
        "loans": charts.bars(
            name="loans", title=d["loans"] + " (VND)", lang=lang, total=False,
            items=[charts.Bar(k, d[f"l_{k}"], f["loans"][f"{k}_vnd"])
                   for k in ("confirmed", "disbursed", "repaid", "outstanding")]),
    }
    name = None
    if area.commune_code:
        name = dashboard.unit_name(settings.admin_units_file, area.commune_code)
    elif area.province_code:
        name = dashboard.unit_name(settings.admin_units_file, area.province_code)
    return pages.render("dashboard.html", lang=lang, d=d, f=f, svg=svg, area=area,
                        area_name=name, links={"postings": postings})


PUBLIC_TEXT: dict[str, dict[str, str]] = {
    "published": {"vi": "Kết quả công khai", "en": "Published results"},
    "beneficiaries": {"vi": "Hộ nghèo, hộ cận nghèo được công nhận",
                      "en": "Recognized poor and near-poor households"},
    "support": {"vi": "Hỗ trợ đã chi trả", "en": "Support paid"},
    "credit": {"vi": "Vay vốn ưu đãi đã giải ngân", "en": "Preferential loans disbursed"},
    "outstanding": {"vi": "Dư nợ còn lại", "en": "Outstanding"},
    "households_reached": {"vi": "Số hộ được hỗ trợ hoặc vay vốn",
                           "en": "Households supported or lent to"},
    "aggregate_only": {"vi": "Chỉ công bố số liệu tổng hợp, không công bố thông tin cá nhân.",
                       "en": "Totals only; no personal information is published."},
}


def public_context(figures: dict[str, Any], *, commune_code: str, lang: str,
                   settings: Settings) -> dict[str, Any]:
    """What the public commune page adds: the commune's name and its published results."""
    p = {k: v[lang] for k, v in PUBLIC_TEXT.items()}
    cats = pages.CATEGORY_LABELS[lang]
    chart = charts.bars(name="beneficiaries", title=p["beneficiaries"], lang=lang,
                        items=[charts.Bar(k, cats.get(k, k), n) for k, n in figures["by_category"]])
    return {"p": p, "figures": figures, "beneficiaries_chart": chart,
            "commune_name": dashboard.unit_name(settings.admin_units_file, commune_code)}
