"""Public pages (no login): the posting with its complaint form, and the commune page."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.supervision import schemas
from services.supervision.api import dashboard as dashboard_page
from services.supervision.api import pages
from services.supervision.handlers import complaints, dashboard, postings, projects, service_of
from shared.openapi import problem_responses
from shared.problems import Problem, problem_response
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/public", tags=["public"])
Lang = Annotated[str | None, Query(pattern=r"^(vi|en)$")]


def wants_html(request: Request) -> bool:
    """A browser (form post) gets pages; API clients get JSON and problem+json."""
    return "text/html" in request.headers.get("accept", "")


def client_address(request: Request, trusted_proxies: int) -> str:
    """The caller's address: behind `trusted_proxies` proxies, the X-Forwarded-For hop the
    outermost one added (counted from the right: the entries left of it are whatever the client
    claimed, so a client cannot pick its own rate-limit key); else the connection's address."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    return hops[-trusted_proxies] if len(hops) >= trusted_proxies else peer


def from_a_page_of_ours(request: Request, allowed: list[str]) -> bool:
    """A browser's form post comes from our own page (Origin, else Referer: same host as the
    request, or a configured origin); a cross-site post is refused (CSRF). A client that sends
    neither is not a browser acting for someone else."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if claimed is None:
        return True
    parts = urlsplit(claimed)
    if not parts.scheme or not parts.netloc:
        return False  # "null" (a sandboxed frame, a data: page) or garbage
    origin = f"{parts.scheme}://{parts.netloc}"
    return parts.netloc == request.headers.get("host") or origin in allowed


def _page_or_problem(*statuses: int, **meaning: str) -> dict[int | str, dict[str, Any]]:
    """Answers a browser gets as a page (`Accept: text/html`) and an API client as JSON."""
    out = problem_responses(*(s for s in statuses if s >= 400), **meaning)
    if 201 in statuses:
        out[201] = {"description": meaning.get("s201", "created"), "content": {}}
    for answer in out.values():
        answer["content"]["text/html"] = {"schema": {"type": "string"}}
    return out


async def _posting_page(rt: RuntimeDep, posting_id: str, lang: str, *, status: int = 200,
                        errors: list[tuple[str, str]] | None = None,
                        values: dict | None = None) -> HTMLResponse:
    async with rt.sessions() as session:
        try:
            view = await postings.public_view(session, posting_id=posting_id)
        except Problem:
            return pages.message(lang=lang, status=404, heading=pages.text("not_found", lang),
                                 text=pages.text("not_found_text", lang))
    errs = [(f, pages.error_message(f, code, lang)) for f, code in errors or []]
    return pages.render("posting.html", lang=lang, status=status, p=view, errors=errs,
                        field_errors=dict(errs), values=values or {},
                        text_max=service_of(rt).settings.complaint_text_max)


@router.get("/postings/{posting_id}", response_class=HTMLResponse,
            responses={404: {"description": "no such posting (a page saying so)",
                             "content": {"text/html": {"schema": {"type": "string"}}}}})
async def posting_page(posting_id: str, rt: RuntimeDep, lang: Lang = None) -> HTMLResponse:
    """The commune's posted list, grouped by village (no ID numbers, birth dates or phones),
    with the complaint form while the posting is open."""
    return await _posting_page(rt, posting_id, pages.language(lang))


@router.post("/postings/{posting_id}/complaints", status_code=201,
             response_model=schemas.ComplaintFiled, responses=_page_or_problem(
                 201, 403, 404, 409, 422, 429, s201="filed (a browser gets a page thanking it)",
                 s403="posted from another site's page (`cross_site`)",
                 s409="the posting is closed to complaints",
                 s422="a field of the form is missing or invalid",
                 s429="too many complaints from this client or on this posting (Retry-After)"))
async def file_complaint(posting_id: str, request: Request, rt: RuntimeDep,
                         lang: Lang = None) -> Response:
    """A resident's complaint (form post; anonymous allowed; rate-limited per client)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    lang = pages.language(lang or form.get("lang"))
    html = wants_html(request)
    svc = service_of(rt)
    back = f"/public/postings/{posting_id}?lang={lang}"
    if not from_a_page_of_ours(request, svc.settings.public_origins):
        if html:
            return pages.message(lang=lang, status=403, heading=pages.text("refused", lang),
                                 text=pages.text("refused_text", lang), back=back)
        return problem_response(request, 403, "the form must be posted from the posting's own "
                                "page (Origin/Referer of another site)", code="cross_site")
    try:
        async with rt.transaction() as session:
            out = await complaints.file_public(
                session, svc, posting_id=posting_id, form=form,
                client=client_address(request, svc.settings.trusted_proxies))
    except complaints.FormErrors as exc:
        if html:
            return await _posting_page(rt, posting_id, lang, status=422, errors=exc.errors,
                                       values=exc.values)
        errors = [{"field": f, "code": c, "message": pages.error_message(f, c, "en")}
                  for f, c in exc.errors]
        return problem_response(request, 422, errors[0]["message"], errors=errors)
    except Problem as exc:
        if not html:
            return problem_response(request, exc.status, exc.detail, headers=exc.headers,
                                    **exc.extra)
        key = {404: "not_found", 409: "closed", 429: "too_many"}.get(exc.status, "not_found")
        body = {404: "not_found_text", 409: "closed_notice", 429: "too_many_text"}.get(
            exc.status, "not_found_text")
        return pages.message(lang=lang, status=exc.status, heading=pages.text(key, lang),
                             text=pages.text(body, lang), headers=exc.headers,
                             back=back if exc.status != 404 else None)
    if html:
        due = pages.local_time(out["due_at"])
        return pages.message(lang=lang, status=201, kind="ok", heading=pages.text("thanks", lang),
                             text=pages.text("thanks_text", lang).format(due=due),
                             reference=out["complaint_id"], back=back)
    return JSONResponse(out, status_code=201)


@router.get("/communes/{commune_code}", response_class=HTMLResponse)
async def commune_page(commune_code: Annotated[str, Path(pattern=r"^\d{5}$")], rt: RuntimeDep,
                       lang: Lang = None) -> HTMLResponse:
    """The commune's open projects, findings, recommendations and whether it answered in time."""
    lang = pages.language(lang)
    async with rt.snapshot() as session:
        view = await projects.public_commune(session, commune_code=commune_code)
        figures = await dashboard.public_figures(session, commune_code=commune_code)
    return pages.render("commune.html", lang=lang, c=view, **dashboard_page.public_context(
        figures, commune_code=commune_code, lang=lang, settings=service_of(rt).settings))
