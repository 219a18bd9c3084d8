"""SIGKILL the disbursement service in the middle of approvals and partner answers: after a
restart and client retries, every application has exactly one instruction, and all settle."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

from services.bank_partner.partner import Partner
from services.disbursement.config import Settings
from shared import db
from shared.infra import free_port
from shared.processes import ServiceProcess
from tests.disbursement.conftest import (
    ALL_PROGRAMMES,
    new_commune,
    partner_config,
    programmes_file,
    publish_eligibility,
)
from tests.support.apps import auth
from tests.support.kafka import collect
from tests.support.wait import eventually

N = 40


def disbursement_process(*, port: int, partner: str, programmes: Path, prefix: str,
                         log: Path) -> ServiceProcess:
    """The service as a child process, reacting fast."""
    return ServiceProcess(name="disbursement", module="services.disbursement", port=port, env={
        "DISBURSEMENT_PORT": str(port), "DISBURSEMENT_PARTNERS": json.dumps([partner]),
        "DISBURSEMENT_PROGRAMMES_FILE": str(programmes),
        "DISBURSEMENT_CONSUMER_GROUP_PREFIX": prefix,
        "DISBURSEMENT_CONSUMER_SESSION_TIMEOUT_MS": "2000",
        "DISBURSEMENT_CONSUMER_HEARTBEAT_INTERVAL_MS": "300",
        "DISBURSEMENT_RELAY_POLL_INTERVAL_S": "0.05", "OTEL_TRACES_EXPORTER": "none"},
        log_path=log)


async def test_killed_mid_flow_no_instruction_is_lost_or_duplicated(servers):
    partner = f"k{uuid.uuid4().hex[:8]}"
    commune = new_commune()
    officer = auth("commune_officer", commune)
    checker = auth("commune_officer", commune, sub="officer-checker")  # maker ≠ checker
    port, logs = free_port(), Path(tempfile.mkdtemp(prefix="disb-kill-"))
    args = {"port": port, "partner": partner, "programmes": programmes_file(partner),
            "prefix": f"kill{uuid.uuid4().hex[:6]}-"}
    first = disbursement_process(**args, log=logs / "disbursement-1.log").start()
    reference = Partner(partner_config(partner, servers.bootstrap_servers, settle_delay_s=0.05))
    stop = asyncio.Event()
    partner_task: asyncio.Task | None = None
    second: ServiceProcess | None = None
    try:
        await asyncio.to_thread(first.wait_ready, 90)
        partner_task = asyncio.create_task(reference.run(stop))
        households = [str(uuid.uuid4()) for _ in range(N)]
        await asyncio.gather(*(publish_eligibility(
            servers.bootstrap_servers, household_id=h, commune=commune, village="Bản Pá",
            eligible=ALL_PROGRAMMES) for h in households))
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as client:
            async def projected() -> bool:
                rs = await asyncio.gather(*(client.get(f"/v1/households/{h}", headers=officer)
                                            for h in households))
                return all(r.status_code == 200 for r in rs)

            await eventually(projected, timeout=30, message="households projected")
            ids = []
            for h in households:
                r = await client.post("/v1/applications", headers=officer, json={
                    "household_id": h, "programme_code": "LIVELIHOOD-SEED",
                    "amount_vnd": 2_000_000, "purpose": "Giống ngô lai"})
                assert r.status_code == 201, r.text
                ids.append(r.json()["application_id"])

            approved: list[str] = []

            async def approve(application_id: str) -> None:
                try:
                    r = await client.post(f"/v1/applications/{application_id}/approve",
                                          headers=checker)
                    if r.status_code == 201:
                        approved.append(application_id)
                except httpx.HTTPError:
                    pass  # the process was killed under this request: the client retries later

            async def kill_when_half_done() -> None:
                await eventually(lambda: len(approved) >= N // 2, timeout=30)
                await asyncio.to_thread(first.stop, kill=True)

            await asyncio.gather(kill_when_half_done(), *(approve(i) for i in ids))
        assert first.proc is not None and first.proc.returncode == -9
        # at least half answered before the kill (on a fast run the rest may also have landed
        # before the SIGKILL did: the retries below must then change nothing either)
        assert N // 2 <= len(approved) <= N

        second = disbursement_process(**args, log=logs / "disbursement-2.log").start()
        await asyncio.to_thread(second.wait_ready, 90)
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as client:
            retries = await asyncio.gather(*(
                client.post(f"/v1/applications/{i}/approve", headers=checker) for i in ids))
            assert {r.status_code for r in retries} <= {200, 201}
            assert all(r.status_code == 200 for i, r in zip(ids, retries, strict=True)
                       if i in approved)

            async def all_settled() -> bool:
                r = await client.get(f"/v1/applications?commune_code={commune}&status=disbursed",
                                     headers=officer, params={"limit": 1000})
                return len(r.json()) == N

            await eventually(all_settled, timeout=60, message="every application disbursed")

        engine = db.create_engine(Settings().db_url)
        try:
            async with engine.connect() as conn:
                per_application = (await conn.execute(sa.text(
                    "select a.id, count(i.id) from application a left join instruction i "
                    "on i.application_id = a.id where a.id = any(:ids) group by a.id"),
                    {"ids": ids})).all()
        finally:
            await engine.dispose()
        assert len(per_application) == N
        assert {count for _, count in per_application} == {1}

        records = await collect(servers.bootstrap_servers, f"disbursement.instructions.{partner}",
                                until=lambda rs: len({json.loads(r.value)["application_id"]
                                                      for r in rs}) >= N)
        by_application: dict[str, set[str]] = {}
        for r in records:
            body = json.loads(r.value)
            by_application.setdefault(body["application_id"], set()).add(body["instruction_id"])
        assert set(by_application) == set(ids)
        assert all(len(v) == 1 for v in by_application.values())
    finally:
        stop.set()
        if partner_task is not None:
            await asyncio.wait_for(partner_task, 30)
        first.stop(kill=True)
        if second is not None:
            second.stop()
