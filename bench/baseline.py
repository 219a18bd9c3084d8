"""The raw one-hop baseline: aiokafka + asyncpg only, no project code in the measured hop.

Pre-produces N keyed JSON events (a `ce_id` header each) on a fresh input topic (6 partitions),
then times one batched hop until all N are processed:
`getmany(max_records=500)` → one PostgreSQL transaction per batch (inbox insert with
`unnest … ON CONFLICT DO NOTHING RETURNING`, a state upsert with `unnest`, outbox rows with
`unnest`) → produce every outbox row to an output topic with acks=all (await all) → commit
offsets. Returns events/s; every other figure of `make bench` is a ratio to it.
Works on any broker + PostgreSQL: the tables live in their own database, `everydoor_baseline`.
Run alone (starts its own embedded broker + PostgreSQL): .venv/bin/python bench/baseline.py [N=50000]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

DATABASE = "everydoor_baseline"
PARTITIONS = 6
BATCH = 500
CONSUMER = "baseline"

SCHEMA = """
drop table if exists inbox, state, outbox;
create table inbox (consumer text not null, event_id text not null,
                    received_at timestamptz not null default now(),
                    primary key (consumer, event_id));
create table state (key text primary key, events int not null, last_seq bigint not null,
                    last_amount bigint not null, updated_at timestamptz not null);
create table outbox (id bigint generated always as identity primary key, event_id uuid not null,
                     key text not null, type text not null, payload jsonb not null,
                     created_at timestamptz not null default now(), sent_at timestamptz);
"""


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """A libpq-style DSN from a SQLAlchemy or libpq URL, optionally for another database."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    if database is not None:
        parts = parts._replace(path=f"/{database}")
    return urlunsplit(parts)


async def ensure_database(dsn: str) -> str:
    """Create `everydoor_baseline` on the server when missing; its DSN."""
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE):
            await conn.execute(f'create database "{DATABASE}"')
    finally:
        await conn.close()
    return asyncpg_dsn(dsn, DATABASE)


async def create_topics(bootstrap: str, names: list[str]) -> None:
    """Create the topics with the admin client and wait until the broker lists them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=t, num_partitions=PARTITIONS, replication_factor=1)
                                   for t in names])
        deadline = time.monotonic() + 15
        while not set(names) <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics not created: {names}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Drop the run's topics (the embedded broker keeps records in memory)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        await admin.delete_topics(names)
    except Exception as exc:  # noqa: BLE001 - cleanup only; the figure is already measured
        print(f"baseline: could not delete topics {names}: {exc}", file=sys.stderr)
    finally:
        await admin.close()


async def pre_produce(bootstrap: str, topic: str, events: int) -> None:
    """N JSON events, keyed by household (about two per household), a `ce_id` header each."""
    households = [str(uuid.uuid4()) for _ in range(max(1, events // 2))]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i in range(events):
            key = households[i % len(households)]
            value = json.dumps({"household_id": key, "seq": i, "income_per_capita_vnd":
                                1_000_000 + (i * 7919) % 2_000_000}).encode()
            headers = [("ce_id", str(uuid.uuid4()).encode()),
                       ("ce_type", b"baseline.household.surveyed.v1")]
            futures.append(await producer.send(topic, value=value, key=key.encode(),
                                               headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def handle(conn: asyncpg.Connection, records: list) -> list[tuple[str, str, str]]:
    """One transaction for the batch; the outbox rows it wrote as (event id, key, payload)."""
    ids = [dict(r.headers)["ce_id"].decode() for r in records]
    async with conn.transaction():
        fresh = {r["event_id"] for r in await conn.fetch(
            "insert into inbox (consumer, event_id) select $1, unnest($2::text[]) "
            "on conflict do nothing returning event_id", CONSUMER, ids)}
        state: dict[str, list[int]] = {}  # one row per key (an upsert may touch a row once)
        out: list[tuple[str, str, str]] = []
        for event_id, r in zip(ids, records, strict=True):
            if event_id not in fresh:
                continue
            body = json.loads(r.value)
            key = r.key.decode()
            row = state.setdefault(key, [0, 0, 0])
            row[0] += 1
            row[1] = body["seq"]
            row[2] = body["income_per_capita_vnd"]
            out.append((str(uuid.uuid4()), key, json.dumps(
                {"household_id": key, "caused_by": event_id,
                 "poor": body["income_per_capita_vnd"] <= 1_500_000})))
        if state:
            keys = list(state)
            await conn.execute(
                "insert into state (key, events, last_seq, last_amount, updated_at) "
                "select k, e, s, a, now() from unnest($1::text[], $2::int[], $3::bigint[], "
                "$4::bigint[]) as t(k, e, s, a) "
                "on conflict (key) do update set events = state.events + excluded.events, "
                "last_seq = excluded.last_seq, last_amount = excluded.last_amount, "
                "updated_at = excluded.updated_at",
                keys, [state[k][0] for k in keys], [state[k][1] for k in keys],
                [state[k][2] for k in keys])
        if out:
            await conn.execute(
                "insert into outbox (event_id, key, type, payload) "
                "select e, k, 'baseline.household.decided.v1', p "
                "from unnest($1::uuid[], $2::text[], $3::jsonb[]) as t(e, k, p)",
                [o[0] for o in out], [o[1] for o in out], [o[2] for o in out])
    return out


async def run_baseline(bootstrap: str, dsn: str, *, events: int = 50_000) -> float:
    """Time the raw hop over `events` pre-produced events; events/s."""
    run = uuid.uuid4().hex[:8]
    topic_in, topic_out = f"baseline.in.{run}", f"baseline.out.{run}"
    conn = await asyncpg.connect(await ensure_database(dsn))
    await conn.execute(SCHEMA)
    await create_topics(bootstrap, [topic_in, topic_out])
    consumer = AIOKafkaConsumer(
        topic_in, bootstrap_servers=bootstrap, group_id=f"baseline-{run}",
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=BATCH,
        session_timeout_ms=2000, heartbeat_interval_ms=300)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        await pre_produce(bootstrap, topic_in, events)
        await producer.start()
        await consumer.start()
        deadline = time.monotonic() + 30
        while not consumer.assignment():  # the group join, outside the timed part
            if time.monotonic() > deadline:
                raise TimeoutError("baseline consumer got no partitions in 30 s")
            await asyncio.sleep(0.05)
        done = 0
        t0 = time.perf_counter()
        while done < events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            records = [r for part in batches.values() for r in part]
            if not records:
                if time.perf_counter() - t0 > 600:
                    raise TimeoutError(f"baseline: {done}/{events} processed after 600 s")
                continue
            out = await handle(conn, records)
            futures = [await producer.send(topic_out, value=payload.encode(), key=key.encode(),
                                           headers=[("ce_id", event_id.encode())])
                       for event_id, key, payload in out]
            await asyncio.gather(*futures)
            await consumer.commit({TopicPartition(tp.topic, tp.partition): part[-1].offset + 1
                                   for tp, part in batches.items() if part})
            done += len(records)
        elapsed = time.perf_counter() - t0
        written = await conn.fetchval("select count(*) from outbox")
        if written != events:
            raise RuntimeError(f"baseline: {written} outbox rows for {events} events")
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()
        await delete_topics(bootstrap, [topic_in, topic_out])
    return events / elapsed


if __name__ == "__main__":
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.common import report
    from shared.infra import EmbeddedInfra, free_port

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    home = Path(tempfile.mkdtemp(prefix="everydoor-baseline-"))
    infra = EmbeddedInfra(state=home, broker_port=free_port(), pg_port=free_port()).start()
    try:
        t = time.perf_counter()
        rate = asyncio.run(run_baseline(infra.bootstrap_servers, infra.database_url, events=n))
        print(f"BASELINE {n} events: {rate:,.0f} events/s (one batched hop, no framework; "
              f"{time.perf_counter() - t:.1f} s with setup)")
        report("baseline", events=n, rate=rate)
    finally:
        infra.stop()
