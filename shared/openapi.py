"""The error answers of every service's OpenAPI document: RFC 9457 problem+json, described once.

Routes name the answers only their use case gives (`responses=problem_responses(404, 409)`);
`document_errors` adds those every route of a kind gives by construction — 401/503 behind a
bearer token, 403 behind a role, 404 for a path id behind a token, 400/413 for a body, 422 everywhere (the
middleware checks every request's `x-correlation-id` and query) — and the shared
`Problem` schema they all point to.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.params import Path
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from shared.auth import current_principal
from shared.problems import MEDIA_TYPE

SCHEMA = "Problem"
REF = f"#/components/schemas/{SCHEMA}"

# What each status means on these APIs (a route may say more in its own `responses`).
MEANING = {
    400: "the body could not be read (not UTF-8, or not the declared content type)",
    401: "no bearer token, or one that is invalid or expired",
    403: "the caller's role may not do this, or the record is in a state the caller may not act "
         "on",
    404: "no such record, or one outside the caller's scope",
    409: "the record's state does not allow this (already done, archived, or taken)",
    412: "If-Match is stale or unreadable; `current_version` holds the version to send",
    413: "the body is larger than the service accepts",
    422: "invalid input (also a malformed `x-correlation-id`); `errors` names each field",
    428: "If-Match (the record's ETag) is required",
    429: "too many requests; try again later",
    503: "a dependency (the identity provider's keys) is unavailable; try again later",
}


class FieldError(BaseModel):
    """One invalid field of a 422 (or a 409 naming the fields that clash)."""

    model_config = ConfigDict(extra="allow")

    field: str
    message: str
    type: str | None = None
    code: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem detail, the body of every 4xx and 5xx answer."""

    model_config = ConfigDict(extra="allow", title=SCHEMA)

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None
    correlation_id: str | None = None


def problem_responses(*statuses: int, **meaning: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these statuses, each a problem+json `Problem` (`meaning`:
    a route's own description of a status, keyed `s409=...`)."""
    return {status: {"description": meaning.get(f"s{status}", MEANING.get(status, "error")),
                     "content": {MEDIA_TYPE: {"schema": {"$ref": REF}}}}
            for status in statuses}


def _calls(dependant: Dependant) -> list[Any]:
    out = []
    for dep in dependant.dependencies:
        out.append(dep.call)
        out += _calls(dep)
    return out


def _statuses(route: RouteContext) -> list[int]:
    """The errors a route gives by construction: its security, parameters and body."""
    calls = _calls(route.dependant)
    out = []
    if current_principal in calls:
        out += [401, 503]
    if any(hasattr(c, "roles") for c in calls):
        out.append(403)
    if current_principal in calls and any(isinstance(p.field_info, Path)
                                          for p in get_flat_params(route.dependant)):
        out.append(404)  # public pages answer an unknown id their own way, and say so
    if route.body_field is not None:
        out += [400, 413]
    # Every route: a malformed `x-correlation-id` or a NUL in the query is refused before it.
    out.append(422)
    return out


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    content = response.get("content", {})
    return MEDIA_TYPE not in content and "HTTPValidationError" in str(content)


def document_errors(app: FastAPI) -> None:
    """Complete the app's OpenAPI document: each operation's by-construction error answers
    (those its route names itself win), FastAPI's own 422 as the problem+json it really is,
    and the `Problem` schema they all point to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = generate()
        routes = {(m.lower(), c.path): c for c in iter_route_contexts(app.routes)
                  if isinstance(c.original_route, APIRoute) for m in c.methods or ()}
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                route = routes.get((method, path))
                if route is None:
                    continue
                answers = operation.setdefault("responses", {})
                if _is_fastapi_422(answers.get("422", {})):
                    del answers["422"]
                for status, answer in problem_responses(*_statuses(route)).items():
                    answers.setdefault(str(status), answer)
                operation["responses"] = dict(sorted(answers.items()))
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[SCHEMA] = schema
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


# Dates and times the handlers already render as ISO text: typed as text so a response model
# passes them through unchanged, documented with their format.
IsoDate = Annotated[str, Field(json_schema_extra={"format": "date"})]
IsoDateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Open(BaseModel):
    """A response model that also passes through members it does not name (added later)."""

    model_config = ConfigDict(extra="allow")
