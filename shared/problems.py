"""RFC 9457 problem+json responses for every error the APIs return."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          409: "Conflict", 412: "Precondition failed", 413: "Payload too large",
          422: "Unprocessable content", 428: "Precondition required", 429: "Too many requests",
          500: "Internal server error", 503: "Service unavailable"}


class Problem(Exception):
    """An error with an HTTP status, a human detail and optional extra members."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 type: str = "about:blank", headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.type = type
        self.headers = headers
        self.extra = extra


def invalid(field: str, message: str) -> Problem:
    """A 422 naming one bad field (for rules checked beyond the schema)."""
    return Problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


def not_found(what: str, ident: str) -> Problem:
    """404 — also the answer for ids outside the caller's scope (never 403, which would leak)."""
    return Problem(404, f"no {what} {ident}")


def problem_response(request: Request, status: int, detail: str, *, title: str | None = None,
                     type: str = "about:blank", headers: dict[str, str] | None = None,
                     **extra: Any) -> JSONResponse:
    """Build a problem+json response."""
    body = {"type": type, "title": title or TITLES.get(status, "Error"), "status": status,
            "detail": detail, "instance": str(request.url.path), **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def field_name(loc: tuple | list) -> str:
    """A field's name in `errors`: its location without `body`/`query`/… (`members.0.sex`)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "form"):
        parts = parts[1:] or parts
    return ".".join(parts)


def validation_problem(request: Request, errors: list[dict[str, Any]]) -> JSONResponse:
    """422 listing each bad field as `{field, message, type}` (the shape of schema errors)."""
    fields = sorted({e["field"] for e in errors})
    return problem_response(request, 422, "invalid fields: " + ", ".join(fields), errors=errors)


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.detail, title=exc.title, type=exc.type,
                                headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": field_name(e["loc"]), "message": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        if errors and all(e["field"].lower() == "if-match" and e["type"] == "missing"
                          for e in errors):
            # A required If-Match is a precondition (RFC 6585), not a malformed request.
            return problem_response(request, 428, "If-Match with the current version (its "
                                                  "ETag) is required")
        return validation_problem(request, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(request, exc.status_code, str(exc.detail),
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after answering, so the server logs the traceback; the caller
        # gets no internals, only the correlation id to quote.
        cid = getattr(request.state, "correlation_id", None)
        return problem_response(
            request, 500, "an unexpected error; it is logged under the correlation id",
            headers={"x-correlation-id": cid} if cid else None, correlation_id=cid)
