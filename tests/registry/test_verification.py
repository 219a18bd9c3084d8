"""Verification requests from supervision flag a household; a new survey resolves them."""

from __future__ import annotations

import uuid

from services.registry import events
from services.supervision import events as supervision_events
from shared.envelope import Envelope
from tests.registry.conftest import admin, body, officer, published, survey
from tests.support.kafka import produce_event
from tests.support.wait import eventually


async def test_a_verification_request_round_trip(registry, servers):
    created = (await registry.client.post("/v1/households", json=body(),
                                          headers=officer())).json()
    hid = created["household_id"]
    complaint = f"CMP-{uuid.uuid4().hex[:8]}"
    request = Envelope(
        type=supervision_events.VERIFICATION_REQUESTED, source=supervision_events.SOURCE,
        subject=hid, data=supervision_events.VerificationRequestedV1(
            complaint_id=complaint, household_id=hid, commune_code="01001",
            reason="neighbours say the family owns a truck", actor="chair-01001",
        ).model_dump(mode="json"))
    await produce_event(servers.bootstrap_servers, supervision_events.TOPIC, request)
    await produce_event(servers.bootstrap_servers, supervision_events.TOPIC, request)  # redelivery

    async def flagged() -> dict | None:
        h = (await registry.client.get(f"/v1/households/{hid}", headers=officer())).json()
        return h if h["verification_requested"] else None

    h = await eventually(flagged, timeout=30, message="household flagged")
    assert h["verification_requests"][0]["complaint_id"] == complaint
    assert h["version"] == 2
    listed = (await registry.client.get("/v1/households", headers=officer(), params={
        "verification_requested": "true", "village": created["location"]["village"]})).json()
    assert [x["household_id"] for x in listed["items"]] == [hid]

    r = await registry.client.post(f"/v1/households/{hid}/surveys", json=survey(
        survey_date="2025-11-20", review_round="2025-verification"), headers=officer())
    assert r.status_code == 201, r.text
    after = (await registry.client.get(f"/v1/households/{hid}", headers=officer())).json()
    assert after["verification_requested"] is False and after["version"] == 4

    evts = await published(servers.bootstrap_servers, hid, 4)
    assert [e.type for e in evts] == [events.HOUSEHOLD_REGISTERED, events.VERIFICATION_REQUESTED,
                                      events.HOUSEHOLD_SURVEYED, events.VERIFICATION_RESOLVED]
    requested = events.VerificationRequestedV1.model_validate(evts[1].data)
    assert requested.complaint_id == complaint and requested.household.verification_requested
    assert evts[1].causation_id == request.id
    resolved = events.VerificationResolvedV1.model_validate(evts[3].data)
    assert resolved.complaint_id == complaint and resolved.survey_id == r.json()["survey_id"]
    assert resolved.household.verification_requested is False
    history = (await registry.client.get(f"/v1/households/{hid}/history",
                                         headers=officer())).json()
    assert history[1]["actor"] == "chair-01001" and complaint in history[1]["reason"]
    # The redelivered request (same ce_id) was handled before the survey: it changed nothing.
    assert [v["event_type"] for v in history] == [e.type for e in evts[:4]]


async def test_a_request_for_an_unknown_household_is_dead_lettered(registry, servers):
    ghost = "00000000-0000-4000-8000-0000000000aa"
    request = Envelope(
        type=supervision_events.VERIFICATION_REQUESTED, source=supervision_events.SOURCE,
        subject=ghost, data={"complaint_id": "CMP-ghost", "household_id": ghost,
                             "commune_code": "01001", "reason": "who?"})
    await produce_event(servers.bootstrap_servers, supervision_events.TOPIC, request)

    async def dead_lettered() -> dict | None:
        r = await registry.client.get("/v1/ops/dead-letters", headers=admin())
        return next((d for d in r.json() if d["event_id"] == request.id), None)

    letter = await eventually(dead_lettered, timeout=30, message="dead letter recorded")
    assert "unknown household" in letter["reason"]


async def test_a_request_from_another_communes_complaint_is_dead_lettered(registry, servers):
    """A complaint of one commune cannot flag a household of another (checked at both ends)."""
    created = (await registry.client.post("/v1/households", json=body(),
                                          headers=officer())).json()
    hid = created["household_id"]
    request = Envelope(
        type=supervision_events.VERIFICATION_REQUESTED, source=supervision_events.SOURCE,
        subject=hid, data={"complaint_id": "CMP-elsewhere", "household_id": hid,
                           "commune_code": "79001", "reason": "a complaint in another province"})
    await produce_event(servers.bootstrap_servers, supervision_events.TOPIC, request)

    async def dead_lettered() -> dict | None:
        r = await registry.client.get("/v1/ops/dead-letters", headers=admin())
        return next((d for d in r.json() if d["event_id"] == request.id), None)

    letter = await eventually(dead_lettered, timeout=30, message="dead letter recorded")
    assert "not in commune 79001" in letter["reason"]
    h = (await registry.client.get(f"/v1/households/{hid}", headers=officer())).json()
    assert h["verification_requested"] is False and h["version"] == 1


async def test_a_request_written_by_another_producer_is_dead_lettered(registry, servers):
    """Only supervision writes supervision.events: anything else there is a forgery."""
    created = (await registry.client.post("/v1/households", json=body(),
                                          headers=officer())).json()
    hid = created["household_id"]
    forged = Envelope(
        type=supervision_events.VERIFICATION_REQUESTED, source="/partners/vbsp",
        subject=hid, data={"complaint_id": "CMP-forged", "household_id": hid,
                           "commune_code": created["location"]["commune_code"],
                           "reason": "written by someone who reached the broker"})
    await produce_event(servers.bootstrap_servers, supervision_events.TOPIC, forged)

    async def dead_lettered() -> dict | None:
        r = await registry.client.get("/v1/ops/dead-letters", headers=admin())
        return next((d for d in r.json() if d["event_id"] == forged.id), None)

    letter = await eventually(dead_lettered, timeout=30, message="dead letter recorded")
    assert letter["reason"].startswith("forged source")
    h = (await registry.client.get(f"/v1/households/{hid}", headers=officer())).json()
    assert h["verification_requested"] is False
