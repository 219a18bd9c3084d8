"""What every API refuses on the way in (NUL characters, integers past 64 bits, malformed
correlation ids) and neutralises on the way out (spreadsheet formulas in CSV cells)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import problems
from shared.db import BIGINT_MAX, BIGINT_MIN

NUL_MESSAGE = "must not contain the NUL character (U+0000)"
RANGE_MESSAGE = f"must be between {BIGINT_MIN} and {BIGINT_MAX}"
# Callers' correlation ids travel into events, logs and bank-partner topics: kept to a plain
# token (UUIDs, ULIDs, W3C trace ids, `job-42:retry.1`).
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CORRELATION_ID_MESSAGE = "1 to 128 characters of A-Z a-z 0-9 . _ : -"
_NO_BODY = {"GET", "HEAD", "OPTIONS", "TRACE"}
# A JSON body is parsed a second time only when it may hold a NUL or a long integer.
_SUSPECT_JSON = re.compile(rb"\\u0000|\d{19,}")


def valid_correlation_id(value: str) -> bool:
    """Whether a caller's X-Correlation-Id may be carried into events."""
    return CORRELATION_ID.fullmatch(value) is not None


def _error(loc: tuple, message: str, type_: str) -> dict[str, Any]:
    return {"field": problems.field_name(loc), "message": message, "type": type_}


def _shown(name: str) -> str:
    return name.replace("\x00", "\\u0000")


def json_errors(value: Any, loc: tuple = ("body",)) -> list[dict[str, Any]]:
    """Each string or key holding a NUL and each integer beyond a bigint, as `errors` items.

    Iterative, so a body nested as deep as the JSON parser allows cannot exhaust the stack."""
    errors: list[dict[str, Any]] = []
    stack: list[tuple[tuple, Any]] = [(loc, value)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                errors.append(_error(where, NUL_MESSAGE, "string_nul"))
        elif isinstance(v, int) and not isinstance(v, bool):
            if not BIGINT_MIN <= v <= BIGINT_MAX:
                errors.append(_error(where, RANGE_MESSAGE, "int_out_of_range"))
        elif isinstance(v, dict):
            for k, item in v.items():
                if "\x00" in k:
                    errors.append(_error((*where, _shown(k)), NUL_MESSAGE, "string_nul"))
                stack.append(((*where, _shown(k)), item))
        elif isinstance(v, list):
            stack.extend(((*where, i), item) for i, item in enumerate(v))
    return sorted(errors, key=lambda e: e["field"])


def _pairs_errors(pairs: Iterable[tuple[str, Any]], where: str) -> list[dict[str, Any]]:
    return [_error((where, _shown(k)), NUL_MESSAGE, "string_nul") for k, v in pairs
            if "\x00" in k or (isinstance(v, str) and "\x00" in v)]


def _path_errors(scope: Scope) -> list[dict[str, Any]]:
    if "\x00" not in scope["path"]:
        return []
    # The parameter's name comes from the documented path templates (FastAPI's routes are
    # nested included routers with no public way to match them from outside).
    openapi = getattr(scope.get("app"), "openapi", None)
    for template in (openapi().get("paths", {}) if callable(openapi) else {}):
        found = compile_path(template)[0].match(scope["path"])
        errors = _pairs_errors(found.groupdict().items(), "path") if found else []
        if errors:
            return errors
    return [_error(("path",), NUL_MESSAGE, "string_nul")]


def _query_errors(scope: Scope) -> list[dict[str, Any]]:
    qs: bytes = scope.get("query_string", b"")
    if b"%00" not in qs and b"\x00" not in qs:
        return []
    return _pairs_errors(parse_qsl(qs.decode("latin-1"), keep_blank_values=True), "query")


async def _body_errors(scope: Scope, body: bytes) -> list[dict[str, Any]]:
    ctype = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if not ctype or ctype == "application/json" or ctype.endswith("+json"):
        # FastAPI reads a body without Content-Type as JSON too.
        if not _SUSPECT_JSON.search(body):
            return []
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return []  # not JSON: the route's own validation answers that
        return json_errors(value)
    if ctype == "application/x-www-form-urlencoded":
        if b"%00" not in body and b"\x00" not in body:
            return []
        return _pairs_errors(parse_qsl(body.decode("latin-1"), keep_blank_values=True), "body")
    if ctype == "multipart/form-data":
        if b"\x00" not in body:
            return []
        try:
            async with Request(scope, _replay([{"type": "http.request", "body": body}],
                                              _never)).form() as form:
                return _pairs_errors(form.multi_items(), "body")  # files may hold NUL
        except HTTPException:
            return []  # a malformed form: the route answers it
    if b"\x00" in body:
        return [_error(("body",), NUL_MESSAGE, "string_nul")]
    return []


async def _never() -> Message:
    return {"type": "http.disconnect"}


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _read(receive: Receive) -> tuple[bytes, list[Message]]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    return b"".join(m.get("body", b"") for m in messages), messages


class RefuseUnstorable:
    """422 problem+json, before any route runs, for input PostgreSQL cannot store: a NUL
    character in a path or query parameter, a form field or a JSON string or key, or an integer
    in a JSON body beyond a bigint. One check for every route of every service, so no field can
    be forgotten; the field is named as schema errors name it (`members.0.full_name`, `q`).

    Bodies of `streamed` paths (bulk imports, which validate each line) are not read here."""

    def __init__(self, app: ASGIApp, *,
                 streamed: Callable[[str], bool]) -> None:
        self.app, self.streamed = app, streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = _path_errors(scope) + _query_errors(scope)
        if scope["method"] not in _NO_BODY and not self.streamed(scope["path"]):
            try:
                body, messages = await _read(receive)
            except HTTPException as exc:  # the streamed body limit, raised while reading
                await problems.problem_response(Request(scope), exc.status_code,
                                                str(exc.detail))(scope, receive, send)
                return
            receive = _replay(messages, receive)
            errors += await _body_errors(scope, body)
        if errors:
            await problems.validation_problem(Request(scope), errors)(scope, receive, send)
            return
        await self.app(scope, receive, send)


# --- CSV out ----------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (OWASP "CSV injection").

    Only text is neutralised, by a leading `'`, when it starts with `=`, `+`, `-`, `@`, a tab or
    a carriage return. Numbers (int, float) are written as they are: a number cannot carry a
    formula, and prefixing would turn a negative amount into text a spreadsheet cannot sum.
    Text that merely looks numeric ("-5") is still text and is prefixed."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class SafeCsvWriter:
    """A `csv.writer` whose text cells go through `csv_cell`."""

    def __init__(self, out: Any, **kwargs: Any) -> None:
        self._w = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, neutralised."""
        self._w.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write rows, neutralised."""
        for row in rows:
            self.writerow(row)

