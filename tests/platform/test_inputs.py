"""Every service, in-process: input PostgreSQL cannot store (a NUL, an integer past 64 bits, a
negative limit) is a 422 problem+json naming the field, a caller's correlation id is checked,
and an unexpected error is a 500 problem+json without internals."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import pytest

from tests.support.apps import auth, running, unique_prefix

SERVICES = ["registry", "eligibility", "disbursement", "supervision"]
PROBLEM = "application/problem+json"
TOO_BIG = str(2**64)


@pytest.fixture(scope="module", params=SERVICES)
async def service(request, servers):
    """One service in-process with its default settings (the shipped rule sets, programmes)."""
    name = request.param
    spec = importlib.import_module(f"services.{name}.__main__").spec
    settings = importlib.import_module(f"services.{name}.config").Settings(
        consumer_group_prefix=unique_prefix(), consumer_session_timeout_ms=2000,
        consumer_heartbeat_interval_ms=300, shutdown_drain_s=1)
    async with running(spec(settings)) as svc:
        yield name, svc


def admin() -> dict[str, str]:
    """A national admin (every route below is within its role and scope)."""
    return auth("national_admin")


def assert_422(r: httpx.Response, *fields: str) -> list[dict[str, Any]]:
    """A validation problem naming exactly `fields`."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    errors = r.json()["errors"]
    assert {e["field"] for e in errors} == set(fields), errors
    return errors


# The requests the fuzzer answered with 500 (or would have): a NUL in a query, path, JSON body,
# dict key or form field, each otherwise valid.
PROJECT = {"commune_code": "01001", "name": "Đường thôn 3", "type": "road",
           "budget_vnd": 1_500_000_000, "investor": "UBND xã", "planned_start": "2026-03-01",
           "planned_end": "2026-09-30"}
REGISTRATION = {"area_type": "rural",
                "location": {"province_code": "01", "commune_code": "01001", "village": "Thôn 1"},
                "members": [{"full_name": "Nguyễn\x00Văn An", "national_id": "001080000001",
                             "date_of_birth": "1980-03-04", "sex": "male", "relation": "head"}]}
NUL_CASES: dict[str, list[tuple[str, str, dict[str, Any], str]]] = {
    "registry": [
        ("GET", "/v1/households?q=a%00b", {}, "q"),
        ("GET", "/v1/households/a%00b", {}, "household_id"),
        ("POST", "/v1/households", {"json": REGISTRATION}, "members.0.full_name"),
    ],
    "eligibility": [
        ("GET", "/v1/households/a%00b/classification", {}, "household_id"),
        ("POST", "/v1/evaluate", {"json": {"area_type": "rural", "income_per_capita_vnd": 1,
                                           "deprivations": {"latrine\x00": True}}},
         "deprivations.latrine\\u0000"),
    ],
    "disbursement": [
        ("GET", "/v1/applications?household_id=a%00b", {}, "household_id"),
        ("POST", "/v1/groups", {"json": {"commune_code": "01001", "village": "Thôn\x001",
                                         "organisation": "womens_union", "name": "Tổ 1"}},
         "village"),
    ],
    "supervision": [
        ("GET", "/v1/complaints/a%00b", {}, "complaint_id"),
        ("POST", "/v1/projects", {"json": {**PROJECT, "name": "Đường\x00"}}, "name"),
        ("POST", "/v1/projects", {"json": {**PROJECT, "budget_vnd": 2**64}}, "budget_vnd"),
        ("POST", "/public/postings/p1/complaints", {"data": {"text": "sai\x00", "lang": "vi"}},
         "text"),
        ("POST", "/public/postings/p1/complaints",
         {"files": {"text": (None, "sai\x00")}}, "text"),
    ],
}


async def test_a_nul_anywhere_is_422_naming_the_field(service):
    name, svc = service
    cases = [*NUL_CASES[name],
             ("POST", "/v1/ops/dead-letters/1/discard?reason=a%00b", {}, "reason")]
    for method, url, kw, field in cases:
        r = await svc.client.request(method, url, headers=admin(), **kw)
        errors = assert_422(r, field)
        assert errors[0]["type"] in ("string_nul", "int_out_of_range"), (url, errors)


# Integers past what their column holds; each was a 500 (the database refused them).
RANGE_CASES: dict[str, list[tuple[str, str, dict[str, Any], str]]] = {
    "registry": [("GET", "/v1/households?cursor=czk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", {}, "cursor")],
    "eligibility": [("GET", f"/v1/classifications?offset={TOO_BIG}", {}, "offset"),
                    ("GET", "/v1/classifications?offset=-1", {}, "offset")],
    "disbursement": [("GET", f"/v1/applications?offset={TOO_BIG}", {}, "offset")],
    "supervision": [("POST", "/v1/projects", {"json": {**PROJECT, "budget_vnd": 2**63 - 1}},
                     "budget_vnd")],
}


async def test_an_integer_past_its_column_is_422_naming_the_field(service):
    name, svc = service
    for method, url, kw, field in RANGE_CASES[name]:
        assert_422(await svc.client.request(method, url, headers=admin(), **kw), field)


@pytest.mark.parametrize("url, field", [
    ("/v1/ops/dead-letters?limit=-1", "limit"),
    ("/v1/ops/dead-letters?limit=0", "limit"),
    ("/v1/ops/dead-letters?limit=1001", "limit"),
    ("/v1/ops/outbox/parked?limit=-5", "limit"),
])
async def test_operator_listings_refuse_a_limit_out_of_bounds(service, url, field):
    _, svc = service
    assert_422(await svc.client.get(url, headers=admin()), field)


async def test_operator_ids_past_64_bits_are_422(service):
    _, svc = service
    why = {"reason": "a fuzzing check of the id bounds"}  # operator actions need a reason
    for url, field, extra in [(f"/v1/ops/dead-letters/{TOO_BIG}/replay", "dead_letter_id", {}),
                              (f"/v1/ops/outbox/{TOO_BIG}/retry", "row_id", {}),
                              ("/v1/ops/outbox/republish", "since_id", {"since_id": TOO_BIG})]:
        assert_422(await svc.client.post(url, headers=admin(), params=why | extra), field)
    r = await svc.client.get("/v1/ops/dead-letters?limit=1000", headers=admin())
    assert r.status_code == 200, r.text
    # Found by the deeper fuzz run (EVERYDOOR_FUZZ_EXAMPLES=100): it was a 500.
    assert_422(await svc.client.get(f"/v1/ops/audit?before_id={TOO_BIG}", headers=admin()),
               "before_id")


@pytest.mark.parametrize("given", ["a b", "x" * 129, "id\nX-Injected: 1", "<script>", "é".encode()])
async def test_a_malformed_correlation_id_is_422_naming_the_header(service, given):
    _, svc = service
    r = await svc.client.get("/v1/whoami", headers={**admin(), "X-Correlation-Id": given})
    assert_422(r, "x-correlation-id")


async def test_a_well_formed_correlation_id_is_kept(service):
    _, svc = service
    for given in ["job-42:retry.1", "0af7651916cd43dd8448eb211c80319c", "x" * 128]:
        r = await svc.client.get("/v1/whoami", headers={**admin(), "X-Correlation-Id": given})
        assert r.status_code == 200, r.text
        assert r.headers["x-correlation-id"] == given


async def test_an_unexpected_error_is_a_500_problem_without_internals(service):
    _, svc = service

    async def explode() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    svc.app.add_api_route("/v1/test-explode", explode)
    # As a server does: the exception is logged, the caller gets the response.
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/v1/test-explode", headers={"X-Correlation-Id": "fuzz-500"})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 500 and body["title"] == "Internal server error"
    assert body["correlation_id"] == "fuzz-500" == r.headers["x-correlation-id"]
    assert "hunter2" not in r.text and "RuntimeError" not in r.text
    assert "Traceback" not in r.text
