"""Disbursement end to end: confirmed loan → instruction → reference partner → settled.

Starts a fresh embedded broker + PostgreSQL, the disbursement service and the reference bank
partner as separate processes.
0. The eligibility projection alone: P households' `classification.decided.v1` and
   `program_eligibility.changed.v1` (2P events, as eligibility publishes them) are published
   before the service starts; timed from the first projected household until the `household`
   table has all P → events/s (the raw baseline's measure: a backlog, the group join untimed).
1. Seeds N eligible households in savings-and-loan groups, submits and group-reviews N loan
   applications, then times N confirmations (concurrency C); the reference partner starts after
   the last one and the time until every instruction is settled is the pipeline's alone.
   Ends with the count check: exactly one instruction per confirmed application, in the
   database and on the partner's topic.
Ends with one `RESULT {json}` line (bench/run.py).
Run: .venv/bin/python bench/disbursement_bench.py [N=1000] [C=16] [P=0]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOME = Path(tempfile.mkdtemp(prefix="everydoor-disb-bench-"))
os.environ["EVERYDOOR_HOME"] = str(HOME)  # dev key shared with the child processes

import sqlalchemy as sa  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from bench.baseline import asyncpg_dsn  # noqa: E402
from bench.common import count_or_zero, drain, report  # noqa: E402
from services.disbursement import events  # noqa: E402
from services.eligibility import events as eligibility_events  # noqa: E402
from shared import db  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.envelope import Envelope  # noqa: E402
from shared.infra import EmbeddedInfra, free_port  # noqa: E402
from shared.processes import ServiceProcess  # noqa: E402

PARTNER = "vbsp"
COMMUNE = "01001"
PROJECTION_COMMUNE = "01002"
AMOUNT = 20_000_000


def bearer(role: str) -> dict[str, str]:
    """Dev token header."""
    return {"Authorization": f"Bearer {issue_token(role=role, scope=COMMUNE)}"}


async def seed_eligibility(bootstrap: str, households: list[str]) -> None:
    """One program_eligibility.changed per household, as eligibility publishes it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i, h in enumerate(households):
            data = eligibility_events.ProgramEligibilityChangedV1(
                household_id=h, category="poor", status="recognized", commune_code=COMMUNE,
                village=f"Thôn {i // 60 + 1}", head_name=f"Nguyễn Thị Bench {i}",
                as_of=datetime.now(UTC),
                programs=[eligibility_events.ProgramStatus(program_code="VBSP-POOR-LOAN",
                                                           eligible=True, reason="recognized poor")])
            env = Envelope(type=eligibility_events.PROGRAM_ELIGIBILITY_CHANGED,
                           source=eligibility_events.SOURCE, subject=h,
                           data=data.model_dump(mode="json"))
            futures.append(await producer.send(eligibility_events.TOPIC, value=env.value(),
                                               key=env.key, headers=env.headers()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def projection_envelopes(n: int) -> list[Envelope]:
    """Per household, a classification decision then its programme list (one commune apart
    from the loans' one), both keyed by the household as eligibility publishes them."""
    out = []
    for i in range(n):
        h, village, head = str(uuid.uuid4()), f"Thôn {i % 12 + 1}", f"Lò Văn Chiếu {i}"
        decided = Envelope(
            type=eligibility_events.CLASSIFICATION_DECIDED, source=eligibility_events.SOURCE,
            subject=h, data=eligibility_events.ClassificationDecidedV1(
                classification_id=str(uuid.uuid4()), household_id=h, category="poor",
                ruleset_id="VN-MDP-2022", area_type="rural", province_code="01",
                commune_code=PROJECTION_COMMUNE, village=village, head_name=head,
                decided_at=datetime.now(UTC), explanation=eligibility_events.ExplanationV1(
                    ruleset_id="VN-MDP-2022", area_type="rural", income_per_capita_vnd=1_000_000,
                    income_line_vnd=1_500_000, deprivation_count=3, threshold=3, deprived=[]),
            ).model_dump(mode="json"))
        changed = decided.caused(
            type=eligibility_events.PROGRAM_ELIGIBILITY_CHANGED, source=eligibility_events.SOURCE,
            data=eligibility_events.ProgramEligibilityChangedV1(
                household_id=h, category="poor", status="provisional",
                commune_code=PROJECTION_COMMUNE, village=village, head_name=head,
                as_of=datetime.now(UTC), changed=["VBSP-POOR-LOAN"],
                programs=[eligibility_events.ProgramStatus(
                    program_code="VBSP-POOR-LOAN", eligible=True, reason="poor")],
            ).model_dump(mode="json"))
        out += [decided, changed]
    return out


async def projection_alone(infra: EmbeddedInfra, service: ServiceProcess, n: int) -> dict:
    """Publish the backlog, start the service, time until the projection has every household."""
    items = projection_envelopes(n)
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all",
                                linger_ms=5)
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = [await producer.send(eligibility_events.TOPIC, value=e.value(), key=e.key,
                                       headers=e.headers()) for e in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    print(f"published:              {len(items)} eligibility events ({n} households) before the "
          f"service started in {time.perf_counter() - t0:.1f} s", flush=True)
    conn = await asyncpg.connect(asyncpg_dsn(infra.database_url, "everydoor_disbursement"))
    try:
        service.start()
        done = await drain(lambda: count_or_zero(conn, "select count(*) from household"), n,
                           what="households projected")
    finally:
        await conn.close()
    alone = {"households": n, "events": len(items), "seconds": done["seconds"],
             "rate": 2 * done["rate"]}  # two events per household
    print(f"projection alone:       {alone['rate']:8.1f} events/s ({2 * done['items']} events in "
          f"{done['seconds']:.2f} s, from the first projected household)", flush=True)
    return alone


async def topic_instructions(bootstrap: str, expected: int) -> dict[str, set[str]]:
    """application id → instruction ids seen on the partner's topic."""
    consumer = AIOKafkaConsumer(events.instructions_topic(PARTNER), bootstrap_servers=bootstrap,
                                group_id=f"bench-{uuid.uuid4()}", auto_offset_reset="earliest",
                                enable_auto_commit=False, session_timeout_ms=2000,
                                heartbeat_interval_ms=300)
    await consumer.start()
    seen: dict[str, set[str]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for r in records:
                    body = json.loads(r.value)
                    seen.setdefault(body["application_id"], set()).add(body["instruction_id"])
    finally:
        await consumer.stop()
    return seen


async def main(n: int, concurrency: int, projection: int) -> None:
    """Run the measurement and print the figures."""
    topics = [events.TOPIC, events.instructions_topic(PARTNER), events.status_topic(PARTNER),
              eligibility_events.TOPIC, "supervision.events"]
    infra = EmbeddedInfra(state=HOME / "infra", broker_port=free_port(), pg_port=free_port(),
                          databases=["everydoor_disbursement"],
                          topics=topics + [t + ".dlq" for t in topics]).start()
    env = {"KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers, "DATABASE_URL": infra.database_url,
           "OTEL_TRACES_EXPORTER": "none"}
    port = free_port()
    service = ServiceProcess(name="disbursement", module="services.disbursement", port=port,
                             env=env | {"DISBURSEMENT_PORT": str(port),
                                        "DISBURSEMENT_RELAY_POLL_INTERVAL_S": "0.05"},
                             log_path=HOME / "disbursement.log")
    partner = ServiceProcess(name="bank_partner", module="services.bank_partner", port=None,
                             env=env | {"BANK_PARTNER_SETTLE_DELAY_S": "0",
                                        "BANK_PARTNER_SANDBOX": "true",
                                        "BANK_PARTNER_STATE_FILE": str(HOME / "partner.json")},
                             log_path=HOME / "partner.log")
    alone = None
    try:
        if projection:
            alone = await projection_alone(infra, service, projection)
        else:
            service.start()
        await asyncio.to_thread(service.wait_ready, 120)
        officer, chair, admin = (bearer("commune_officer"), bearer("commune_chair"),
                                 bearer("national_admin"))
        households = [str(uuid.uuid4()) for _ in range(n)]
        await seed_eligibility(infra.bootstrap_servers, households)
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            async def call(method: str, url: str, headers: dict, body: dict | None = None,
                           ok: tuple[int, ...] = (200, 201)) -> dict:
                async with sem:
                    r = await client.request(method, url, headers=headers, json=body)
                if r.status_code not in ok:
                    raise RuntimeError(f"{method} {url}: {r.status_code} {r.text}")
                return r.json()

            deadline = time.monotonic() + 120
            while (await client.put(f"/v1/budgets/VBSP-POOR-LOAN/{COMMUNE}", headers=admin,
                                    json={"total_vnd": n * AMOUNT})).status_code == 404:
                if time.monotonic() > deadline:  # the commune is known once eligibility's
                    raise RuntimeError("disbursement never learnt the commune")  # events land
                await asyncio.sleep(0.2)
            missing = list(households)
            while missing and time.monotonic() < deadline:  # every household projected
                found = await asyncio.gather(*(call("GET", f"/v1/households/{h}", officer,
                                                    ok=(200, 404)) for h in missing))
                missing = [h for h, f in zip(missing, found, strict=True) if "household_id" not in f]
                if missing:
                    await asyncio.sleep(0.2)
            groups = []
            for g in range(0, n, 60):
                group = await call("POST", "/v1/groups", officer, {
                    "commune_code": COMMUNE, "village": f"Thôn {g // 60 + 1}",
                    "organisation": "womens_union", "name": f"Tổ {g // 60 + 1}"})
                groups.append(group["group_id"])
            for i, h in enumerate(households):  # sequential per group (member count)
                await call("POST", f"/v1/groups/{groups[i // 60]}/members", officer,
                           {"household_id": h})
            apps = await asyncio.gather(*(call("POST", "/v1/applications", officer, {
                "household_id": h, "programme_code": "VBSP-POOR-LOAN", "amount_vnd": AMOUNT,
                "term_months": 36, "purpose": "Chăn nuôi bò", "group_id": groups[i // 60]})
                for i, h in enumerate(households)))
            ids = [a["application_id"] for a in apps]
            await asyncio.gather(*(call("POST", f"/v1/applications/{i}/group-review", officer,
                                        {"decision": "approve", "note": "họp tổ"}) for i in ids))

            print(f"confirming:    {n} reviewed applications (concurrency {concurrency})",
                  flush=True)
            t0 = time.perf_counter()
            first = await asyncio.gather(*(call("POST", f"/v1/applications/{i}/confirm", chair)
                                            for i in ids))
            t_confirm = time.perf_counter() - t0
            # The partner starts once every application is confirmed: from here on the time is
            # the pipeline's alone (instructions published → partner → statuses applied).
            t0 = time.perf_counter()
            partner.start()
            while True:
                recon = await call("GET", f"/v1/reconciliation?commune_code={COMMUNE}", admin)
                settled = next((s["count"] for s in recon["by_status"]
                                if s["status"] == "settled"), 0)
                if settled >= n or time.perf_counter() - t0 > 600:
                    break
                await asyncio.sleep(0.05)
            t_all = time.perf_counter() - t0
            # a retry storm after the fact: every confirmation again must change nothing
            again = await asyncio.gather(*(call("POST", f"/v1/applications/{i}/confirm", chair)
                                           for i in ids[: min(n, 200)]))
        engine = db.create_engine(sa.engine.make_url(infra.database_url)
                                  .set(database="everydoor_disbursement")
                                  .render_as_string(hide_password=False))
        try:
            async with engine.connect() as conn:
                confirmed = await conn.scalar(sa.text(
                    "select count(*) from application where id = any(:ids) "
                    "and status in ('confirmed','disbursed')"), {"ids": ids})
                per_app = (await conn.execute(sa.text(
                    "select count(*) as instructions, count(distinct application_id) as apps "
                    "from instruction where application_id = any(:ids)"), {"ids": ids})).one()
                latencies = [r[0] for r in (await conn.execute(sa.text(
                    "select extract(epoch from s.at - i.created_at) from instruction i "
                    "join instruction_status s on s.instruction_id = i.id and s.status = 'settled' "
                    "where i.application_id = any(:ids)"), {"ids": ids})).all()]
        finally:
            await engine.dispose()
        on_topic = await topic_instructions(infra.bootstrap_servers, n)
    except BaseException:
        print(f"disbursement log tail:\n{service.log_tail()}\nbank partner log tail:\n"
              f"{partner.log_tail()}", file=sys.stderr)
        raise
    finally:
        partner.stop()
        service.stop()
        infra.stop()
    lat = sorted(float(x) for x in latencies)
    print(f"applications confirmed: {n} (concurrency {concurrency}), {confirmed} confirmed/disbursed")
    print(f"confirm requests:       {n / t_confirm:8.1f} req/s  ({t_confirm:.2f} s)")
    print(f"confirmed → settled:    {settled / t_all:8.1f} instructions/s, the partner started "
          f"after every confirmation ({settled}/{n} in {t_all:.2f} s)")
    if lat:
        print(f"confirm → settled each: p50 {statistics.median(lat) * 1000:.0f} ms, "
              f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.0f} ms")
    print(f"count check (database): {per_app.instructions} instructions for {per_app.apps} "
          f"applications → {'exactly one each' if per_app.instructions == per_app.apps == n else 'MISMATCH'}")
    dup = sum(1 for v in on_topic.values() if len(v) != 1)
    print(f"count check (topic):    {len(on_topic)} applications on {events.instructions_topic(PARTNER)}, "
          f"{dup} with more than one instruction id")
    same = all(a["instruction"]["instruction_id"] == f["instruction"]["instruction_id"]
               for a, f in zip(again, first, strict=False))
    print(f"retried confirmations:  {len(again)} → {'the same instruction each' if same else 'MISMATCH'}")
    report("disbursement", applications=n, concurrency=concurrency, settled=settled,
           settle_s=t_all, confirm_s=t_confirm, p50_ms=statistics.median(lat) * 1000 if lat else None,
           counts_ok=per_app.instructions == per_app.apps == n and dup == 0 and same,
           projection=alone)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 16,
                     int(sys.argv[3]) if len(sys.argv) > 3 else 0))
