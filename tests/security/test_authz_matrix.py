"""docs/security/authz-matrix.md is what the routes say, and the running services answer as it
says: 401 without a token, 403 for a role not let in, never either for a role let in, and 404 for
a record outside the caller's scope."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.contracts import authz
from shared.processes import SERVICES
from tests.support.apps import RunningService, auth
from tests.support.wait import eventually

COMMUNE_A, COMMUNE_B = "01001", "08001"  # Hà Nội and Tuyên Quang, both in the official list
DUMMY_INT = 987654321
# Operations whose empty call would still change something: given a harmless query.
QUERY = {"POST /v1/ops/outbox/republish": {"topic": "authz-matrix.no-such-topic"}}


def test_checked_in_matrix_is_what_the_routes_say():
    rendered = authz.render()
    current = authz.MATRIX.read_text(encoding="utf-8") if authz.MATRIX.exists() else ""
    assert current == rendered, (
        f"{authz.MATRIX.relative_to(authz.ROOT)} is out of date with the routes (a new or "
        f"changed operation, or a changed require_role) — run `{authz.COMMAND}` and review "
        "the rows it changes")


def test_every_authenticated_operation_is_in_the_openapi_documents_with_bearer_security():
    ops = authz.operations()
    for service in SERVICES:
        doc = authz.openapi.app(service).openapi()
        documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item
                      if m in authz.METHODS}
        rows = {(op.method, op.path) for op in ops if op.service == service and op.in_schema}
        assert rows == documented
        for op in (o for o in ops if o.service == service and not o.public):
            security = doc["paths"][op.path][op.method.lower()].get("security")
            assert security == [{"HTTPBearer": []}], op.key


def _request(op: authz.Operation, doc: dict[str, Any]) -> dict[str, Any]:
    """The path with dummy ids of the right shape, and an empty body of the declared kind."""
    spec = doc["paths"].get(op.path, {}).get(op.method.lower(), {})
    path = op.path
    for p in spec.get("parameters", []):
        if p["in"] != "path":
            continue
        schema = p.get("schema", {})
        if schema.get("type") == "integer":
            value = str(DUMMY_INT)
        elif schema.get("pattern") == r"^\d{5}$":
            value = "99999"
        else:
            value = str(uuid.uuid4())
        path = path.replace("{" + p["name"] + "}", value)
    kw: dict[str, Any] = {"params": QUERY.get(f"{op.method} {op.path}", {})}
    content = spec.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        kw["json"] = {}
    elif content:
        kind = next(iter(content))
        kw["content"] = b""
        kw["headers"] = {"Content-Type": kind}
    return {"method": op.method, "url": path, **kw}


def _verdict(op: authz.Operation, caller: str | None, status: int) -> str | None:
    """What is wrong with `status` for this caller, or None."""
    if op.public or op.allows(caller):
        if status in (401, 403):
            return f"expected to be let in, got {status}"
        if status >= 500 and not (op.path == "/ready" and status == 503):
            return f"server error {status}"
        return None
    expected = 401 if caller is None else 403
    return None if status == expected else f"expected {expected}, got {status}"


@pytest.mark.parametrize("service", list(SERVICES))
async def test_every_operation_answers_every_caller_as_the_matrix_says(
        platform: dict[str, RunningService], service: str):
    svc = platform[service]
    doc = svc.app.openapi()
    ops = [op for op in authz.operations() if op.service == service]
    wrong = []
    calls = 0
    for op in ops:
        request = _request(op, doc)
        for caller in authz.CALLERS:
            headers = dict(request.get("headers", {}))
            if caller is not None:
                headers.update(auth(caller, "VN"))
            r = await svc.client.request(**{**request, "headers": headers})
            calls += 1
            problem = _verdict(op, caller, r.status_code)
            if problem:
                wrong.append(f"{op.method} {op.path} as {caller or 'no token'}: {problem} "
                             f"({r.text[:160]})")
    assert calls == len(ops) * len(authz.CALLERS)
    assert not wrong, f"{len(wrong)} of {calls} answers differ from the matrix:\n" + "\n".join(
        wrong)


async def test_an_invalid_token_is_401_everywhere_a_token_is_needed(
        platform: dict[str, RunningService]):
    forged = {"Authorization": "Bearer " + auth("national_admin")["Authorization"][7:-4] + "AAAA"}
    for service in SERVICES:
        svc = platform[service]
        doc = svc.app.openapi()
        for op in (o for o in authz.operations() if o.service == service and not o.public):
            request = _request(op, doc)
            r = await svc.client.request(**{**request, "headers": {
                **request.get("headers", {}), **forged}})
            assert r.status_code == 401, f"{op.key}: {r.status_code}"


# --- scope: a record of commune A answers A's officer and is a 404 to B's ----------------------

def household_body(commune: str) -> dict[str, Any]:
    """A household of two with fresh national IDs."""
    def person(name: str, relation: str, sex: str) -> dict[str, Any]:
        return {"full_name": name, "national_id": f"{uuid.uuid4().int % 10**12:012d}",
                "date_of_birth": "1980-03-04", "sex": sex, "relation": relation}

    return {"area_type": "rural",
            "location": {"province_code": commune[:2], "commune_code": commune,
                         "village": f"Thôn {uuid.uuid4().hex[:8]}"},
            "members": [person("Nguyễn Văn An", "head", "male"),
                        person("Trần Thị Bình", "spouse", "female")]}


SURVEY = {"survey_date": "2025-09-15", "review_round": "2025", "income_per_capita_vnd": 1_200_000,
          "deprivations": {"health_insurance": True, "water_source": False, "latrine": True},
          "facts": {"housing_area_m2": 24.5}, "surveyor": "Lò Văn Khánh"}


def officer(commune: str) -> dict[str, str]:
    """A commune officer of `commune`."""
    return auth("commune_officer", commune)


async def _outside(client: httpx.AsyncClient, method: str, url: str, *,
                   json: dict[str, Any] | None = None, ok: int = 200,
                   headers: dict[str, str] | None = None) -> httpx.Response:
    """B's officer gets 404 (never 403); A's officer gets `ok`."""
    extra = headers or {}
    outside = await client.request(method, url, json=json,
                                   headers={**extra, **officer(COMMUNE_B)})
    assert outside.status_code == 404, f"{method} {url} as {COMMUNE_B}: {outside.text}"
    inside = await client.request(method, url, json=json, headers={**extra, **officer(COMMUNE_A)})
    assert inside.status_code == ok, f"{method} {url} as {COMMUNE_A}: {inside.text}"
    return inside


async def test_records_outside_the_callers_scope_are_404_in_every_service(
        platform: dict[str, RunningService]):
    registry = platform["registry"].client
    r = await registry.post("/v1/households", headers=officer(COMMUNE_A),
                            json=household_body(COMMUNE_A))
    assert r.status_code == 201, r.text
    household_id, etag = r.json()["household_id"], r.headers["ETag"]
    for url in (f"/v1/households/{household_id}", f"/v1/households/{household_id}/history",
                f"/v1/households/{household_id}/surveys"):
        await _outside(registry, "GET", url)
    answer = await _outside(registry, "POST", f"/v1/households/{household_id}/surveys",
                            json=SURVEY, ok=201, headers={"If-Match": etag})
    assert answer.json()["household_id"] == household_id
    outside = await registry.get("/v1/households", params={"commune_code": COMMUNE_A},
                                 headers=officer(COMMUNE_B))
    assert household_id not in outside.text

    eligibility = platform["eligibility"].client

    async def classified() -> bool:
        r = await eligibility.get(f"/v1/households/{household_id}/classification",
                                  headers=auth("national_admin"))
        return r.status_code == 200

    await eventually(classified, timeout=30, message="the survey classified by eligibility")
    for url in (f"/v1/households/{household_id}/classification",
                f"/v1/households/{household_id}/classifications",
                f"/v1/households/{household_id}/programs"):
        await _outside(eligibility, "GET", url)

    disbursement = platform["disbursement"].client
    r = await disbursement.post("/v1/groups", headers=officer(COMMUNE_A), json={
        "commune_code": COMMUNE_A, "village": "Thôn Một", "organisation": "womens_union",
        "name": "Tổ TK&VV Hội Phụ nữ thôn Một", "leader_name": "Hà Thị Lan"})
    assert r.status_code == 201, r.text
    group_id = r.json()["group_id"]
    await _outside(disbursement, "GET", f"/v1/groups/{group_id}")
    r = await disbursement.post(f"/v1/groups/{group_id}/members", headers=officer(COMMUNE_B),
                                json={"household_id": household_id})
    assert r.status_code == 404, r.text

    supervision = platform["supervision"].client
    r = await supervision.post("/v1/complaints", headers=officer(COMMUNE_A), json={
        "commune_code": COMMUNE_A, "channel": "officer", "category": "payment_not_received",
        "text": "Chưa nhận tiền tháng 3."})
    assert r.status_code == 201, r.text
    complaint_id = r.json()["complaint_id"]
    await _outside(supervision, "GET", f"/v1/complaints/{complaint_id}")
    await _outside(supervision, "POST", f"/v1/complaints/{complaint_id}/assign",
                   json={"assignee": "Lò Văn Khánh"})
    r = await supervision.post("/v1/complaints", headers=officer(COMMUNE_B), json={
        "commune_code": COMMUNE_A, "channel": "officer", "category": "misconduct",
        "text": "Ngoài phạm vi."})
    assert r.status_code == 404, r.text
