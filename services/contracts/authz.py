"""`python -m services.contracts.authz [--write | --check]`: docs/security/authz-matrix.md.

Every operation of the four OpenAPI documents against every role and an anonymous caller. Who
may call an operation is read from its route: the roles of its `require_role(...)` dependency
(none: any valid token; no `current_principal` at all: public). Whether the caller's scope
matters is read from the endpoint too: one that hands the caller to a use case is scoped (a
record outside the scope answers 404, a listing leaves it out). Only the notes are typed by hand.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from services.contracts import openapi
from shared.auth import ROLES, Principal, current_principal
from shared.processes import SERVICES

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "docs" / "security" / "authz-matrix.md"
COMMAND = "python -m services.contracts.authz"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

Scope = Literal["none", "record", "listing", "create"]

# What the routes cannot say: answers an allowed caller may still get (by operation key).
NOTES: dict[str, str] = {
    "registry POST /v1/households": "outside the caller's scope: 403 `outside your scope`",
    "registry PATCH /v1/households/{household_id}":
        "moving it outside the caller's scope: 403 `outside your scope`",
    "registry POST /v1/households/{household_id}/visits":
        "a cadre of another commune: 422 `cadre_id`; an archived household: 409",
    "registry GET /v1/coverage": "a commune outside the caller's scope (or unknown): 404",
    "registry POST /v1/cadres": "a commune outside the caller's scope: 403 `outside your scope`",
    "registry POST /v1/assignments":
        "a commune outside the caller's scope: 403 `outside your scope`; a cadre outside it: "
        "422 `cadre_id`",
    "registry POST /v1/imports": "202; lines outside the caller's scope are rejected one by one",
    "registry GET /v1/imports/{import_id}":
        "only its uploader (same `sub`) and national roles see a job",
    "registry GET /v1/imports/{import_id}/errors":
        "only its uploader (same `sub`) and national roles see a job",
    "registry POST /registry/sync/search":
        "DCI search: a listing — records only inside the caller's scope (⊆), nothing refused",
    "registry POST /registry/search":
        "DCI search: the on-search callback holds only records inside the caller's scope (⊆)",
    "registry POST /registry/txn/status": "only the caller (same `sub`) who sent it; else 404",
    "disbursement PUT /v1/budgets/{programme_code}/{commune_code}":
        "a commune outside the scope (or unknown): 404",
    "disbursement POST /v1/groups": "outside the caller's scope: 422 `out_of_scope`",
    "disbursement POST /v1/applications": "a household outside the caller's scope: 404",
    "disbursement POST /v1/applications/{application_id}/approve":
        "403 `maker_checker` for the officer who submitted it",
    "disbursement POST /v1/applications/{application_id}/confirm":
        "403 `maker_checker` for whoever submitted or group-reviewed it",
    "supervision POST /v1/postings": "a commune outside the caller's scope: 404",
    "supervision POST /v1/postings/{posting_id}/close":
        "403 `window_open` for anyone but a national admin while the window is open",
    "supervision POST /v1/complaints": "a commune outside the caller's scope: 404",
    "supervision POST /v1/projects": "a commune outside the caller's scope: 404",
    "supervision POST /v1/boards": "a commune outside the caller's scope: 404",
    "supervision POST /public/postings/{posting_id}/complaints": "rate-limited per client (429)",
    "supervision GET /dashboard": "HTML; aggregates only inside the caller's scope (⊆); a "
                                  "`commune_code`/`province_code` outside it: 404",
}

# Confirmed authorization defects (operation key → what is wrong), marked in the matrix.
FOUND: dict[str, str] = {}


@dataclass(frozen=True)
class Operation:
    """One operation and who may call it."""

    service: str
    method: str
    path: str
    public: bool
    roles: tuple[str, ...]  # the roles let in (every role for "any valid token")
    scope: Scope  # how the caller's scope changes the answer
    in_schema: bool = True

    @property
    def key(self) -> str:
        """`service METHOD path`."""
        return f"{self.service} {self.method} {self.path}"

    def allows(self, role: str | None) -> bool:
        """Whether a caller with `role` (None: no token) gets past authorization."""
        return self.public or (role is not None and role in self.roles)

    def expected(self, role: str | None) -> str:
        """The matrix cell for `role` (None: no token)."""
        if self.public:
            return "✓"
        if role is None:
            return "401"
        if role not in self.roles:
            return "403"
        if self.scope == "none" or _national(role):
            return "✓"
        return {"record": "✓ 404*", "listing": "✓ ⊆", "create": "✓ †"}[self.scope]


def _national(role: str) -> bool:
    """A role that sees every location whatever its token's scope says."""
    return Principal(sub="matrix", role=role, scope=()).national


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _caller_params(dependant: Dependant) -> set[str]:
    """Names of the endpoint's parameters that are the authenticated caller."""
    return {dep.name for dep in dependant.dependencies
            if dep.name and (dep.call is current_principal or hasattr(dep.call, "roles"))}


def _hands_caller(endpoint: Callable[..., Any], names: set[str]) -> bool:
    """Whether the endpoint passes the caller on to a call (a use case that checks scope)."""
    if not names:
        return False
    tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            args = [*node.args, *(k.value for k in node.keywords)]
            if any(isinstance(a, ast.Name) and a.id in names for a in args):
                return True
    return False


def _operation(service: str, method: str, route: RouteContext) -> Operation:
    path = route.path or ""
    calls = list(_calls(route.dependant))
    required = [set(call.roles) for call in calls if hasattr(call, "roles")]
    public = current_principal not in calls and not required
    roles = tuple(r for r in ROLES if all(r in req for req in required)) if not public else ()
    scope: Scope = "none"
    if route.endpoint is not None and _hands_caller(route.endpoint,
                                                    _caller_params(route.dependant)):
        scope = "record" if "{" in path else "listing" if method == "GET" else "create"
    return Operation(service=service, method=method, path=path, public=public,
                     roles=roles, scope=scope)


def service_operations(service: str, app: FastAPI) -> list[Operation]:
    """Every operation of one service's OpenAPI document, then the documentation routes."""
    contexts = list(iter_route_contexts(app.routes))
    routes = {(m, c.path): c for c in contexts if isinstance(c.original_route, APIRoute)
              for m in c.methods or ()}
    out = []
    for path, item in app.openapi()["paths"].items():
        for method in (m.upper() for m in item if m in METHODS):
            route = routes.get((method, path))
            if route is None:
                raise LookupError(f"{service}: no route for {method} {path}")
            out.append(_operation(service, method, route))
    # FastAPI's own pages (the document itself, Swagger UI, ReDoc) are not in the document.
    for c in contexts:
        if not isinstance(c.original_route, APIRoute) and c.path and not c.include_in_schema:
            out += [Operation(service=service, method=method, path=c.path, public=True,
                              roles=(), scope="none", in_schema=False)
                    for method in sorted(c.methods or {"GET"}) if method != "HEAD"]
    return out


def operations() -> list[Operation]:
    """Every operation of the four services."""
    ops = [op for service in SERVICES
           for op in service_operations(service, openapi.app(service))]
    keys = {op.key for op in ops}
    stale = sorted((set(NOTES) | set(FOUND)) - keys)
    if stale:
        raise LookupError(f"notes for operations that no longer exist: {', '.join(stale)}")
    return ops


CALLERS: tuple[str | None, ...] = (*ROLES, None)

LEGEND = """\
| cell | meaning |
|---|---|
| `✓` | allowed: anything but 401/403 (2xx, or 404 for an unknown id, 409, 412, 422 for a bad body); the caller's scope does not change the answer (national roles — `national_admin`, `auditor` — are in scope everywhere) |
| `✓ 404*` | allowed inside the caller's scope; a record outside it answers **404**, never 403, so its existence is not revealed |
| `✓ ⊆` | allowed; the listing holds only what is inside the caller's scope |
| `✓ †` | allowed inside the caller's scope; a create or command outside it is refused (see notes) |
| `403` | the role may not do this (`role … may not do this; needs one of …`) |
| `401` | no token, or an invalid/expired one |
| public | no token needed (`/health`, `/ready`, `/metrics`, the API docs, `/public/...`) |
"""

ABOUT = f"""\
## How it is made

`{COMMAND}` builds each service's app the way `python -m services.contracts` does for the
OpenAPI documents (`shared.runtime.create_app`, never started) and walks every operation of its
document, plus FastAPI's own documentation pages:

- **who**: the roles of the route's `require_role(...)` dependency (`shared/auth.py`), whether
  given in `dependencies=[...]` or as a parameter (`OperatorDep`); a route that depends on
  `current_principal` without a role check takes any valid token; a route that does neither is
  public.
- **scope**: a route whose endpoint hands the authenticated caller to a use case is scoped — with
  a path parameter it reads or changes a record (404 outside the scope), as a `GET` without one it
  is a listing (filtered), otherwise it creates in a location taken from the body (refused). The
  notes column is the one hand-written part (`NOTES` in `services/contracts/authz.py`).

`{COMMAND} --check` writes nothing and exits 1 when this file is stale.

## How it is tested

`tests/security/test_authz_matrix.py` runs the four services in-process on the real PostgreSQL
and broker of the test session and:

1. regenerates this file and compares it with the checked-in one — a new operation, or a changed
   `require_role`, fails until the generator is run;
2. calls every operation of every service with no token and with a token of each role (path
   parameters filled with a dummy id of the right shape, an empty JSON body) and checks each
   answer's class against the matrix: no token → 401, a role not let in → 403, a role let in →
   neither (and no 5xx); public operations answer without a token;
3. checks scope on real records: a household (registry), its classification (eligibility), a
   savings group (disbursement), a complaint (supervision) created in commune 01001 are read and
   changed by commune 01001's officer (2xx) and answer 404 to commune 08001's officer.
"""


def render(ops: list[Operation] | None = None) -> str:
    """The matrix as Markdown."""
    ops = operations() if ops is None else ops
    callers = len(CALLERS)
    lines = [f"<!-- Generated by `{COMMAND}` from the code — do not edit by hand. -->",
             "# Authorization matrix", "",
             f"**{len(ops)} operations × {callers} callers** ({len(ROLES)} roles + no token) = "
             f"**{len(ops) * callers} expected outcomes**, across "
             + ", ".join(f"{s} ({sum(op.service == s for op in ops)})" for s in SERVICES)
             + ". Every cell is checked by a test against the running services.", "",
             "Roles and scope are defined in `shared/auth.py`; a token's `scope` lists `VN`, "
             "province codes or commune codes.", "", LEGEND]
    defects = [op for op in ops if op.key in FOUND]
    lines += ["## Defects found", ""]
    open_to_all = sorted({f"`{op.method} {op.path}`" for op in ops
                          if not op.public and set(op.roles) == set(ROLES)})
    lines += ([f"- **{op.method} {op.path}** ({op.service}): {FOUND[op.key]}" for op in defects]
              or ["None found: every operation that is not public needs a token."])
    lines += ["", "Open to any valid token (every role, `bank_partner` included), to review when "
              "one is added: " + (", ".join(open_to_all) or "none") + "."]
    lines.append("")
    header = ["operation", "service", *ROLES, "no token", "notes"]
    for service in SERVICES:
        lines += [f"## {service}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for op in (o for o in ops if o.service == service):
            notes = []
            if op.public:
                notes.append("public" + ("" if op.in_schema else " (not in the OpenAPI document)"))
            elif set(op.roles) == set(ROLES):
                notes.append("any valid token")
            if op.key in NOTES:
                notes.append(NOTES[op.key])
            if op.key in FOUND:
                notes.append(f"**defect found:** {FOUND[op.key]}")
            cells = [f"`{op.method} {op.path}`", op.service,
                     *(op.expected(c) for c in CALLERS), "; ".join(notes)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(ABOUT)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the matrix (the default, or `--write`), or `--check` it: exit 1 when it is stale."""
    args = set(sys.argv[1:] if argv is None else argv)
    text = render()
    current = MATRIX.read_text(encoding="utf-8") if MATRIX.exists() else None
    if "--check" in args:
        if current != text:
            print(f"stale: {MATRIX.relative_to(ROOT)} (run `{COMMAND}`)", file=sys.stderr)
            return 1
        return 0
    if current != text:
        MATRIX.parent.mkdir(parents=True, exist_ok=True)
        MATRIX.write_text(text, encoding="utf-8")
        print(f"wrote {MATRIX.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
