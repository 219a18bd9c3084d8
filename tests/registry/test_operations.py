"""What an internet-facing deployment restricts (/docs, /openapi.json, /metrics) and the operator
audit log: every replay, discard, retry and republish says who, when and why."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.registry.__main__ import spec
from services.registry.config import Settings
from services.supervision import events as supervision_events
from shared.envelope import Envelope
from shared.runtime import create_app
from shared.settings import PlatformSettings
from tests.registry.conftest import admin
from tests.support.apps import auth
from tests.support.kafka import produce_event
from tests.support.wait import eventually

TOKEN = "metrics-" + "s3cret" * 4


def client_of(registry, **platform: object) -> httpx.AsyncClient:
    """A client of a registry app built with these platform settings, on the running runtime."""
    app = create_app(spec(Settings(platform=PlatformSettings(**platform))))
    app.state.runtime = registry.runtime
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_docs_and_openapi_can_be_turned_off(registry):
    async with client_of(registry, everydoor_docs_enabled=False) as closed:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await closed.get(path)).status_code == 404, path
        assert (await closed.get("/health")).status_code == 200
    assert (await registry.client.get("/openapi.json")).status_code == 200  # on by default
    assert (await registry.client.get("/docs")).status_code == 200


async def test_metrics_need_the_token_when_one_is_set(registry):
    async with client_of(registry, everydoor_metrics_token=TOKEN) as guarded:
        assert (await guarded.get("/metrics")).status_code == 401
        wrong = await guarded.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        jwt = await guarded.get("/metrics", headers=admin())  # a user token is not the token
        assert jwt.status_code == 401
        ok = await guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "everydoor" in ok.text
    assert (await registry.client.get("/metrics")).status_code == 200  # no token: open


def test_a_short_metrics_token_is_refused():
    with pytest.raises(ValueError, match="EVERYDOOR_METRICS_TOKEN"):
        PlatformSettings(everydoor_metrics_token="short")


async def dead_letter(registry, servers, **extra: str) -> dict:
    """A verification request for an unknown household, dead-lettered by the registry."""
    ghost = str(uuid.uuid4())
    request = Envelope(
        type=supervision_events.VERIFICATION_REQUESTED, source=supervision_events.SOURCE,
        subject=ghost, data={"complaint_id": f"CMP-{ghost[:8]}", "household_id": ghost,
                             "commune_code": "01001", "reason": "who?", **extra})
    await produce_event(servers.bootstrap_servers, supervision_events.TOPIC, request)

    async def found() -> dict | None:
        r = await registry.client.get("/v1/ops/dead-letters", headers=admin())
        return next((d for d in r.json() if d["event_id"] == request.id), None)

    return await eventually(found, timeout=30, message="dead letter recorded")


async def audit_log(registry, **params: object) -> list[dict]:
    """The operator audit log as an auditor reads it."""
    r = await registry.client.get("/v1/ops/audit", params=params, headers=auth("auditor"))
    assert r.status_code == 200, r.text
    return r.json()


async def test_operator_actions_need_a_reason_and_are_audited(registry, servers):
    letter = await dead_letter(registry, servers)
    operator = auth("national_admin", sub="ops-linh")
    url = f"/v1/ops/dead-letters/{letter['id']}"
    for path in ("/replay", "/discard"):
        assert (await registry.client.post(url + path, headers=operator)).status_code == 422
        short = await registry.client.post(url + path, params={"reason": "because"},
                                           headers=operator)
        assert short.status_code == 422
    reason = "ghost household: complaint filed against a test record"
    r = await registry.client.post(url + "/discard", params={"reason": reason}, headers=operator)
    assert r.status_code == 200, r.text
    again = await registry.client.post(url + "/replay", headers=operator,
                                       params={"reason": "try it once more after the fix"})
    assert again.status_code == 409
    republished = await registry.client.post(
        "/v1/ops/outbox/republish", headers=operator,
        params={"reason": "refill after broker loss", "since_id": 10**12})
    assert republished.status_code == 200 and republished.json() == {"requeued": 0}

    entries = await audit_log(registry, actor="ops-linh")
    replay, discard = (e for e in entries if e["target"] == f"dead_letter {letter['id']}")
    assert discard["action"] == "dead_letter.discard" and discard["reason"] == reason
    assert discard["role"] == "national_admin" and discard["outcome"]["outcome"] == "discarded"
    assert discard["at"] and discard["correlation_id"]
    assert replay["action"] == "dead_letter.replay" and "already" in replay["outcome"]["refused"]
    assert entries[0]["action"] == "outbox.republish"
    assert entries[0]["outcome"] == {"requeued": 0}
    assert [e["id"] for e in await audit_log(registry, actor="ops-linh",
                                             before_id=entries[0]["id"])] == \
        [e["id"] for e in entries[1:]]

    for role in ("commune_officer", "supervisor"):
        denied = await registry.client.get("/v1/ops/audit", headers=auth(role))
        assert denied.status_code == 403
    assert (await registry.client.post("/v1/ops/outbox/1/retry", headers=auth("auditor"),
                                       params={"reason": "auditors may only read"})
            ).status_code == 403


async def test_auditors_see_dead_letter_payloads_masked(registry, servers):
    national_id = "079188004321"
    letter = await dead_letter(registry, servers, national_id=national_id)
    assert national_id in letter["value"]  # the national admin's view
    r = await registry.client.get("/v1/ops/dead-letters", headers=auth("auditor"))
    seen = next(d for d in r.json() if d["id"] == letter["id"])
    assert national_id not in seen["value"] and "*********321" in seen["value"]
