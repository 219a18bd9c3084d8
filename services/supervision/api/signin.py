"""Officers' sign-in for the pages a browser opens (the dashboard and the lists it links to).

The services take bearer tokens from the identity provider; a browser does not send an
Authorization header by itself. `POST /sign-in` takes a token (pasted from the provider, or from
`everydoor token` in dev mode), checks it exactly as every API call is checked, and keeps it in
an HttpOnly, SameSite=Strict cookie until it expires. Every service reads that cookie for GET
and HEAD only (shared/auth.py), so pages open and their links work, while any write still needs
the Authorization header. `POST /sign-out` removes it. Both forms must come from our own page
(Origin/Referer), like the public complaint form."""

from __future__ import annotations

import time
from typing import Annotated

import jwt
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.supervision.api import pages
from services.supervision.api.public import from_a_page_of_ours
from services.supervision.handlers import service_of
from shared.auth import SESSION_COOKIE, Authenticator
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(tags=["sign-in"])
Lang = Annotated[str | None, Query(pattern=r"^(vi|en)$")]
Next = Annotated[str | None, Query(max_length=500, description=(
    "where to go once signed in: a path of the dashboard, an API list or a public page"))]
HTML = {"text/html": {"schema": {"type": "string"}}}
FORM = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
    "schema": {"type": "object", "required": ["token"], "properties": {
        "token": {"type": "string", "maxLength": 8192, "description": "the access token"},
        "next": {"type": "string", "maxLength": 500}}}}}}}
ALLOWED_NEXT = ("/dashboard", "/v1/", "/public/")
LOCATION = {"Location": {"description": "where the browser goes next",
                         "schema": {"type": "string"}}}


def _with_page(status: int, meaning: str) -> dict[int | str, dict]:
    """An answer a browser gets as the page and a malformed request (the middleware's checks)
    as problem+json."""
    out = problem_responses(status, **{f"s{status}": meaning})
    out[status]["content"]["text/html"] = {"schema": {"type": "string"}}
    return out


def safe_next(value: str | None) -> str:
    """A local path we serve (never another site, `//host` or a backslash trick): else the
    dashboard."""
    if value and value.startswith(ALLOWED_NEXT) and "\\" not in value and "//" not in value \
            and not any(ord(c) < 32 for c in value):
        return value
    return "/dashboard"


def _form_page(lang: str, *, next_path: str, status: int = 200,
               error: str | None = None) -> HTMLResponse:
    return pages.render("sign_in.html", lang=lang, status=status, next=next_path, error=error,
                        headers={"Cache-Control": "no-store"})


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(lang: Lang = None, next: Next = None) -> HTMLResponse:
    """The sign-in form (paste an access token)."""
    return _form_page(pages.language(lang), next_path=safe_next(next))


@router.post("/sign-in", status_code=303, response_class=RedirectResponse, openapi_extra=FORM,
             responses={
    303: {"description": "signed in: the cookie is set, on to `next` (default /dashboard)",
          "headers": LOCATION},
    401: {"description": "the token is not valid (the form again, saying so)", "content": HTML},
    403: {"description": "posted from another site's page", "content": HTML},
    **_with_page(422, "no token in the form (the form again, saying so)")})
async def sign_in(request: Request, rt: RuntimeDep, lang: Lang = None) -> Response:
    """Check the token as every API call does; keep it in this browser until it expires."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    lang = pages.language(lang)
    next_path = safe_next(form.get("next"))
    settings = service_of(rt).settings
    if not from_a_page_of_ours(request, settings.public_origins):
        return pages.message(lang=lang, status=403, heading=pages.text("sign_in", lang),
                             text=pages.text("refused_text", lang))
    token = form.get("token", "").strip()
    if not token:
        return _form_page(lang, next_path=next_path, status=422,
                          error=pages.text("token_missing", lang))
    authenticator: Authenticator = request.app.state.authenticator
    try:
        if len(token) > 8192:
            raise HTTPException(401)
        await authenticator.authenticate(token)
        expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    except (HTTPException, jwt.PyJWTError, KeyError, TypeError, ValueError):
        return _form_page(lang, next_path=next_path, status=401,
                          error=pages.text("token_refused", lang))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=max(1, int(expires - time.time())),
                        path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https" or settings.secure_cookies)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/sign-out", status_code=303, response_class=RedirectResponse, responses={
    303: {"description": "the cookie is removed; on to the sign-in form", "headers": LOCATION},
    403: {"description": "posted from another site's page", "content": HTML}})
async def sign_out(request: Request, rt: RuntimeDep, lang: Lang = None) -> Response:
    """Forget the token kept in this browser."""
    lang = pages.language(lang)
    if not from_a_page_of_ours(request, service_of(rt).settings.public_origins):
        return pages.message(lang=lang, status=403, heading=pages.text("signed_out", lang),
                             text=pages.text("refused_text", lang))
    response = RedirectResponse(f"/sign-in?lang={lang}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response

