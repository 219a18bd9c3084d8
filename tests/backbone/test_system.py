"""Whole-system smoke: four service processes on the embedded pair; the slice flows; one trace."""

from __future__ import annotations

import os
import time

import httpx

from tests.support.apps import auth
from tests.support.system import running_system
from tests.support.wait import eventually


def alive(pid: int) -> bool:
    """Whether a process with this PID still exists (zombies of ours are reaped by wait())."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_four_services_ready_slice_flows_one_trace_and_nothing_left_after_stop(servers):
    with running_system() as system:
        pids = system.pids
        assert len(pids) == 6  # four services + broker + PostgreSQL
        async with httpx.AsyncClient(timeout=10) as client:
            for name in ("registry", "eligibility", "disbursement", "supervision"):
                r = await client.get(f"{system.url(name)}/ready")
                assert r.status_code == 200, (name, r.text)
                assert r.json()["checks"] == {"database": "ok"}
                assert r.json()["broker"] == "ok"
                assert all(t["state"] in ("running", "starting") for t in r.json()["tasks"].values())
                assert (await client.get(f"{system.url(name)}/metrics")).status_code == 200

            body = {"area_type": "rural",
                    "location": {"province_code": "01", "commune_code": "01001",
                                 "village": "Thôn Đông"},
                    "members": [{"full_name": "Hoàng Văn Smoke",
                                 "national_id": str(time.time_ns())[-12:],
                                 "date_of_birth": "1975-07-07", "sex": "male",
                                 "relation": "head"}]}
            token = auth("commune_officer", "01001")
            r = await client.post(f"{system.url('registry')}/v1/households", json=body,
                                  headers=token)
            assert r.status_code == 201, r.text
            household_id = r.json()["household_id"]

            async def registered_in_timeline():
                t = await client.get(
                    f"{system.url('supervision')}/v1/households/{household_id}/timeline",
                    headers=token)
                if t.status_code != 200:
                    return None
                return next((e for e in t.json()["events"]
                             if e["type"] == "registry.household.registered.v1"), None)

            event = await eventually(registered_in_timeline, timeout=30,
                                     message="supervision recorded the registration")
            assert event["trace_id"]

            def consumed_by(service: str) -> list[dict]:
                return [s for s in system.spans() if s["service"] == service
                        and s["kind"] == "CONSUMER"
                        and s["attributes"].get("messaging.message.id") == event["event_id"]]

            await eventually(lambda: consumed_by("eligibility") and consumed_by("supervision"),
                             timeout=30, message="both consumers processed the event")
            spans = system.spans()
            server = [s for s in spans if s["service"] == "registry" and s["kind"] == "SERVER"
                      and s["name"].startswith("POST /v1/households")]
            trace_ids = {s["trace_id"] for s in server}
            assert event["trace_id"] in trace_ids
            for service in ("eligibility", "supervision"):
                process = consumed_by(service)[0]
                assert process["trace_id"] == event["trace_id"]
                assert process["parent_span_id"] is not None
                assert process["links"], "the process span links to the producer context"
            producer = [s for s in spans if s["kind"] == "PRODUCER"
                        and s["trace_id"] == event["trace_id"]]
            assert producer and producer[0]["service"] == "registry"
    # Every child was waited for by PID on stop; none may still exist.
    assert [p for p in pids if alive(p)] == []
