"""Eligibility: the consumer alone, decision latency under steady load, full re-evaluation.

Starts a fresh embedded broker + PostgreSQL and the eligibility service as a separate process.
0. The consumer alone: E registry `household.surveyed.v1` events (new households) are published
   before the service starts; timed from the first decision in its database until all E are
   classified → events/s (the raw baseline's measure: a backlog, the group join untimed).
1. Steady load, for each rate R of a comma-separated list: surveyed events at R/s for D seconds
   (new households); the delay of each is measured from its send to the arrival of the
   `classification.decided.v1` it caused on `eligibility.decisions` (p50/p95/p99).
2. Full re-evaluation: N households (surveys of 2026) are written into the service's database,
   then `POST /v1/rulesets/VN-MDP-2022/reevaluate` decides every one of them (N decisions, 2N
   events); a re-run (nothing changes) and a corrected rule set (rural line raised) follow.
Ends with one `RESULT {json}` line (bench/run.py).
Run: .venv/bin/python bench/eligibility_bench.py [N=100000] [R=100,1000] [D=30] [E=20000]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOME = Path(tempfile.mkdtemp(prefix="everydoor-elig-bench-"))
os.environ["EVERYDOOR_HOME"] = str(HOME)  # dev key shared with the child process

import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from bench.baseline import asyncpg_dsn  # noqa: E402
from bench.common import count_or_zero, drain, report  # noqa: E402
from services.eligibility import events as eligibility_events  # noqa: E402
from services.eligibility.config import RULESETS_DIR  # noqa: E402
from services.registry import events as registry  # noqa: E402
from shared import db  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.envelope import Envelope  # noqa: E402
from shared.infra import EmbeddedInfra, free_port  # noqa: E402
from shared.processes import ServiceProcess  # noqa: E402

CODES = ("employment", "dependants", "nutrition", "health_insurance", "adult_education",
         "school_attendance", "housing_quality", "housing_area", "water_source", "latrine",
         "telecom", "information_access")
ADMIN = {"Authorization": ""}


def answers(rng: random.Random) -> dict[str, bool]:
    """A survey's deprivations: each indicator deprived with probability 0.2."""
    return {c: rng.random() < 0.2 for c in CODES}


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered))) - 1))]


def surveyed(rng: random.Random, i: int) -> Envelope:
    """A new household's `household.surveyed.v1` (snapshot and survey inline)."""
    household_id = str(uuid.uuid4())
    snapshot = registry.HouseholdSnapshotV1(
        household_id=household_id, version=1, area_type=rng.choice(["rural", "urban"]),
        location=registry.Location(province_code="01", commune_code=f"01{i % 50:03d}",
                                   village=f"Thôn {i % 7}"),
        head_name=f"Hộ {i}")
    payload = registry.HouseholdSurveyedV1(
        household_id=household_id, version=1, household=snapshot,
        survey=registry.SurveyV1(survey_id=str(uuid.uuid4()), survey_date=date(2026, 9, 1),
                                 review_round="2026-periodic",
                                 income_per_capita_vnd=rng.randint(800_000, 3_500_000),
                                 deprivations=answers(rng)))
    return Envelope(type=registry.HOUSEHOLD_SURVEYED, source=registry.SOURCE,
                    subject=household_id, data=payload.model_dump(mode="json"))


async def publish_backlog(bootstrap: str, n: int) -> float:
    """N surveyed events of new households on the registry topic; seconds it took."""
    rng = random.Random(5)
    envelopes = [surveyed(rng, i) for i in range(n)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = [await producer.send(registry.TOPIC, value=e.value(), key=e.key,
                                       headers=e.headers()) for e in envelopes]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def steady_load(bootstrap: str, rate: int, seconds: int) -> dict[str, float]:
    """Surveyed events at `rate`/s; per event, send → decided-event arrival in seconds."""
    rng = random.Random(7)
    sent: dict[str, float] = {}
    delays: list[float] = []
    consumer = AIOKafkaConsumer(eligibility_events.TOPIC, bootstrap_servers=bootstrap,
                                group_id=f"bench-{uuid.uuid4()}", auto_offset_reset="earliest",
                                enable_auto_commit=False, session_timeout_ms=2000,
                                heartbeat_interval_ms=300,
                                fetch_max_wait_ms=10)  # the reader adds no wait of its own
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    total = rate * seconds

    joined = asyncio.Event()

    async def read() -> None:
        while len(delays) < total:
            batch = await consumer.getmany(timeout_ms=100)
            if consumer.assignment():
                joined.set()
            for records in batch.values():
                now = time.perf_counter()
                for r in records:
                    h = dict(r.headers or ())
                    if h.get("ce_type") != eligibility_events.CLASSIFICATION_DECIDED.encode():
                        continue
                    cause = h.get("ce_causationid", b"").decode()
                    if cause in sent:
                        delays.append(now - sent.pop(cause))

    reader = asyncio.create_task(read())
    try:
        await asyncio.wait_for(joined.wait(), 60)  # joined before the clock starts
        # Read from the end: the decisions of an earlier backlog are not this load's, and
        # reading through them first would add their reading time to every delay measured.
        parts = list(consumer.assignment())
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            env = surveyed(rng, i)
            sent[env.id] = time.perf_counter()
            await producer.send(registry.TOPIC, value=env.value(), key=env.key,
                                headers=env.headers())
        produce_s = time.perf_counter() - start
        await asyncio.wait_for(reader, timeout=120)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    return {"events": total, "rate": total / produce_s, "p50": statistics.median(delays),
            "p95": pct(delays, 95), "p99": pct(delays, 99), "max": max(delays)}


def seed_rows(rng: random.Random, start: int, stop: int) -> list[dict]:
    """Households start..stop-1 with a 2026 survey and no decision yet."""
    rows = []
    for i in range(start, stop):
        day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 360))
        rows.append({
            "id": f"{uuid.UUID(int=rng.getrandbits(128))}", "area_type": rng.choice(["rural", "urban"]),
            "province_code": f"{1 + i % 34:02d}", "commune_code": f"{1 + i % 34:02d}{i % 97:03d}",
            "village": f"Thôn {i % 11}", "head_name": f"Chủ hộ {i}", "status": "active",
            "member_count": 4, "registry_version": 2, "last_event_id": str(uuid.uuid4()),
            "survey": {"survey_id": str(uuid.uuid4()), "survey_date": day.isoformat(),
                       "review_round": "2026-periodic",
                       "income_per_capita_vnd": rng.randint(800_000, 3_500_000),
                       "deprivations": answers(rng)},
            "survey_date": day, "survey_event_id": str(uuid.uuid4()),
        })
    return rows


async def seed(url: str, n: int) -> None:
    """N households written straight into the table with COPY, 10,000 rows at a time (the
    bench's memory stays flat in N)."""
    from services.eligibility import tables

    rng = random.Random(11)
    engine = db.create_engine(url)
    try:
        async with db.sessionmaker(engine)() as session:
            for k in range(0, n, 10_000):
                await db.copy_rows(session, tables.household, seed_rows(rng, k, min(n, k + 10_000)))
                await session.commit()
    finally:
        await engine.dispose()


async def reevaluate(client: httpx.AsyncClient, ruleset_id: str) -> tuple[dict, float]:
    """POST the job, follow it to the end; return the job and its wall time."""
    t0 = time.perf_counter()
    r = await client.post(f"/v1/rulesets/{ruleset_id}/reevaluate", headers=ADMIN)
    r.raise_for_status()
    location = r.headers["location"]
    while True:
        job = (await client.get(location, headers=ADMIN)).json()
        if job["status"] != "running":
            return job, time.perf_counter() - t0
        await asyncio.sleep(0.2)


async def consumer_alone(infra: EmbeddedInfra, service: ServiceProcess, events: int) -> dict:
    """Publish the backlog, start the service, time until every household is classified."""
    t_pub = await publish_backlog(infra.bootstrap_servers, events)
    print(f"published:     {events} surveyed events before the service started in {t_pub:.1f} s",
          flush=True)
    conn = await asyncpg.connect(asyncpg_dsn(infra.database_url, "everydoor_eligibility"))
    try:
        service.start()
        alone = await drain(lambda: count_or_zero(
            conn, "select count(*) from household where current_classification_id is not null"),
            events, what="households classified")
    finally:
        await conn.close()
    print(f"consumer alone: {alone['rate']:,.0f} events/s ({alone['items']} surveyed events "
          f"classified in {alone['seconds']:.2f} s, from the first decision)", flush=True)
    return alone


async def outbox_drained(infra: EmbeddedInfra, timeout: float = 600.0) -> float:
    """Wait until the service's relay has published every decision of the backlog: a latency
    measured while it still drains tens of thousands of rows would be the backlog's, not the
    steady load's."""
    conn = await asyncpg.connect(asyncpg_dsn(infra.database_url, "everydoor_eligibility"))
    try:
        t0 = time.perf_counter()
        while (left := await count_or_zero(
                conn, "select count(*) from outbox where sent_at is null")) > 0:
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{left} outbox rows still unsent after {timeout:.0f} s")
            await asyncio.sleep(0.2)
        waited = time.perf_counter() - t0
        print(f"outbox drained: every decision published {waited:.1f} s after the last was made",
              flush=True)
        return waited
    finally:
        await conn.close()


def hwm_mib(pid: int | None) -> float | None:
    """Peak RSS (VmHWM) of a process in MiB."""
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


async def main(n: int, rates: list[int], seconds: int, events: int) -> None:
    """Run the measurements, print the figures and the RESULT line."""
    topics = [registry.TOPIC, eligibility_events.TOPIC, "supervision.events"]
    infra = EmbeddedInfra(state=HOME / "infra", broker_port=free_port(), pg_port=free_port(),
                          databases=["everydoor_eligibility"],
                          topics=topics + [t + ".dlq" for t in topics]).start()
    rulesets = HOME / "rulesets"
    rulesets.mkdir()
    for path in RULESETS_DIR.glob("*.yaml"):
        shutil.copy(path, rulesets / path.name)
    port = free_port()
    service = ServiceProcess(name="eligibility", module="services.eligibility", port=port, env={
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers, "DATABASE_URL": infra.database_url,
        "OTEL_TRACES_EXPORTER": "none", "ELIGIBILITY_PORT": str(port),
        "ELIGIBILITY_RULESETS_DIRS": json.dumps([str(rulesets)])},
        log_path=HOME / "eligibility.log")
    ADMIN["Authorization"] = f"Bearer {issue_token(role='national_admin')}"
    result: dict = {"reeval_households": n, "latency_seconds": seconds}
    try:
        if events:
            result["alone"] = await consumer_alone(infra, service, events)
        else:
            service.start()
        await asyncio.to_thread(service.wait_ready, 120)
        # steady state: the backlog's decisions are all published before the steady load
        result["outbox_drain_s"] = await outbox_drained(infra)
        result["latency"] = []
        for rate in rates:
            load = await steady_load(infra.bootstrap_servers, rate, seconds)
            print(f"steady load:   {load['events']} survey events at {load['rate']:.0f}/s "
                  f"(asked {rate}/s) → decision event: p50 {load['p50'] * 1000:.0f} ms, "
                  f"p95 {load['p95'] * 1000:.0f} ms, p99 {load['p99'] * 1000:.0f} ms, "
                  f"max {load['max'] * 1000:.0f} ms", flush=True)
            result["latency"].append({"asked": rate, **load})

        url = sa.engine.make_url(infra.database_url).set(database="everydoor_eligibility")
        t0 = time.perf_counter()
        await seed(url.render_as_string(hide_password=False), n)
        print(f"seeded:        {n} households with a 2026 survey in {time.perf_counter() - t0:.1f} s",
              flush=True)
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            first, t1 = await reevaluate(client, "VN-MDP-2022")
            print(f"re-evaluation: {first['processed']} households, {first['changed']} decided "
                  f"(2 events each) in {t1:.1f} s → {first['processed'] / t1:,.0f} households/s "
                  f"[{first['status']}]", flush=True)
            again, t2 = await reevaluate(client, "VN-MDP-2022")
            print(f"re-run:        {again['processed']} households, {again['changed']} changed in "
                  f"{t2:.1f} s → {again['processed'] / t2:,.0f} households/s [{again['status']}]",
                  flush=True)
            doc = yaml.safe_load((rulesets / "VN-MDP-2022.yaml").read_text(encoding="utf-8"))
            doc["income_lines_vnd"]["rural"] = 1_600_000
            (rulesets / "VN-MDP-2022.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                                       encoding="utf-8")
            fixed, t3 = await reevaluate(client, "VN-MDP-2022")
            print(f"line changed:  rural line 1,500,000 → 1,600,000: {fixed['processed']} households"
                  f" re-decided, {fixed['changed']} changed in {t3:.1f} s → "
                  f"{fixed['processed'] / t3:,.0f} households/s [{fixed['status']}]")
        for name, job, t in (("first", first, t1), ("rerun", again, t2), ("corrected", fixed, t3)):
            result[f"reeval_{name}"] = {"processed": job["processed"], "changed": job["changed"],
                                        "status": job["status"], "seconds": t}
        result["eligibility_hwm_mib"] = hwm_mib(service.pid)
    except BaseException:
        print(f"eligibility log tail:\n{service.log_tail()}", file=sys.stderr)
        raise
    finally:
        service.stop()
        infra.stop()
        shutil.rmtree(HOME, ignore_errors=True)
    report("eligibility", **result)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
                     [int(r) for r in (sys.argv[2] if len(sys.argv) > 2 else "100,1000").split(",")],
                     int(sys.argv[3]) if len(sys.argv) > 3 else 30,
                     int(sys.argv[4]) if len(sys.argv) > 4 else 20_000))
