"""Schemathesis fuzzing of each service's published OpenAPI document (docs/contracts/openapi),
in-process over ASGI against the real broker and PostgreSQL, as a national admin: no request
is answered with a server error, and every answer is one the document lists, as it types it."""

from __future__ import annotations

import asyncio
import collections
import os
import time
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.requests import REQUESTS_TRANSPORT

from tests.support.apps import RunningService, auth

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "openapi"
# Examples per operation: 119 operations x at most 25 (~2,500 requests) keep the run near a
# minute on 2 cores; EVERYDOOR_FUZZ_EXAMPLES raises it for a deeper run.
EXAMPLES = int(os.environ.get("EVERYDOOR_FUZZ_EXAMPLES", "25"))

# Operator actions that change state broadly, or whose small integer ids would hit other
# tests' rows: not fuzzed (each is covered by its own tests).
EXCLUDED: dict[str, str] = {
    "POST /v1/ops/outbox/republish": "re-sends a topic's events to every consumer group",
    "POST /v1/ops/dead-letters/{dead_letter_id}/replay":
        "ids are small integers: would replay another test's dead letter",
    "POST /v1/ops/dead-letters/{dead_letter_id}/discard":
        "ids are small integers: would discard another test's dead letter",
    "POST /v1/ops/outbox/{row_id}/retry": "ids are small integers: would re-send another test's row",
    "POST /v1/ops/outbox/{row_id}/discard":
        "ids are small integers: would discard another test's parked row",
    "POST /v1/rulesets/{ruleset_id}/reevaluate": "re-classifies every household of the rule set",
    "POST /v1/admin-units": "loads rows into the administrative-unit list every commune check uses",
    "PUT /v1/budgets/{programme_code}/{commune_code}":
        "sets a real commune's programme budget, which other tests' applications draw on",
}

# Every operation: no server error, a status the document lists for it, with a content type and
# a body the document gives for that status (the error answers are documented problem+json).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

REQUESTS: collections.Counter[str] = collections.Counter()
STARTED = time.monotonic()


def _schema(service: str) -> Any:
    schema = schemathesis.openapi.from_path(OPENAPI / f"{service}.json")
    schema.config.generation.update(max_examples=EXAMPLES, deterministic=True,
                                    with_security_parameters=False)
    # The coverage phase sends every boundary case the schema defines (hundreds for a large
    # body): unbounded, so only the bounded phases run.
    schema.config.phases.update(phases=["examples", "fuzzing"])
    for name in EXCLUDED:
        method, path = name.split(" ", 1)
        schema = schema.exclude(method=method, path=path)
    return schema


def _admin() -> dict[str, str]:
    """A national admin's header, issued once the session's dev key exists (not at import)."""
    return auth("national_admin")


def _send(case: Any, svc: RunningService, loop: asyncio.AbstractEventLoop) -> httpx.Response:
    """The case as a request on the service's in-process client, on the services' loop."""
    # requests prepares the body and URL as schemathesis would send them (its `prepare_request`
    # would also mask the token, as it does for a report).
    kwargs = REQUESTS_TRANSPORT.serialize_case(case, base_url="http://test", headers=_admin())
    prepared = requests.Request(**kwargs).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return loop.run_until_complete(svc.client.request(
        prepared.method or "GET", prepared.url or "/", headers=dict(prepared.headers),
        content=body))


def _fuzz(service: str, case: Any, platform: dict[str, RunningService],
          loop: asyncio.AbstractEventLoop) -> None:
    response = _send(case, platform[service], loop)
    REQUESTS[service] += 1
    case.validate_response(response, checks=CHECKS, headers=_admin())


SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck))

registry = _schema("registry")
eligibility = _schema("eligibility")
disbursement = _schema("disbursement")
supervision = _schema("supervision")


@registry.parametrize()
@SETTINGS
def test_registry(case, platform, loop):
    _fuzz("registry", case, platform, loop)


@eligibility.parametrize()
@SETTINGS
def test_eligibility(case, platform, loop):
    _fuzz("eligibility", case, platform, loop)


@disbursement.parametrize()
@SETTINGS
def test_disbursement(case, platform, loop):
    _fuzz("disbursement", case, platform, loop)


@supervision.parametrize()
@SETTINGS
def test_supervision(case, platform, loop):
    _fuzz("supervision", case, platform, loop)


def test_zz_report(capsys):
    """How many requests the run sent (docs/security/fuzzing.md records the figure)."""
    with capsys.disabled():
        print(f"\nfuzz: {sum(REQUESTS.values())} requests {dict(REQUESTS)} in "
              f"{time.monotonic() - STARTED:.0f} s, no server error")
    assert sum(REQUESTS.values()) >= 1000  # every service was fuzzed, not skipped
