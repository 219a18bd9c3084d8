"""Two replicas in one consumer group: a rebalance with a batch in flight ends that batch, never
the loop; every event is applied once. A background task that fails is restarted, and /ready
names a task that is dead or stuck."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from shared import db
from shared.consumer import BatchContext, Consumer, ConsumerSpec, Handler
from shared.envelope import Envelope
from shared.infra import ensure_topics
from shared.outbox import Outbox
from shared.runtime import TaskHealth, supervise
from shared.settings import ServiceSettings
from shared.telemetry import Metrics
from tests.support.wait import eventually


async def _produce(bootstrap: str, topic: str, events: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            await producer.send(topic, value=e.value(), key=e.key, headers=e.headers())
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_rebalance_with_a_batch_in_flight_keeps_both_replicas_consuming(servers):
    topic = f"test.rebalance.{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings(service_name="rebalancetest")
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    seen = sa.Table(f"seen_{uuid.uuid4().hex[:8]}", meta,
                    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("event_id", sa.Text, nullable=False),
                    sa.Column("replica", sa.Text, nullable=False))
    engine = db.create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    await ensure_topics(servers.bootstrap_servers, [topic, topic + ".dlq"], 4)
    group = f"test-{uuid.uuid4()}"
    in_flight = asyncio.Event()
    gate = asyncio.Event()

    def replica(name: str) -> Consumer:
        async def apply(ctx: BatchContext) -> None:
            if name == "a" and not gate.is_set():
                in_flight.set()
                await gate.wait()  # a slow batch: the peer joins meanwhile
            await ctx.session.execute(sa.insert(seen), [
                {"event_id": i.event.id, "replica": name} for i in ctx.items])

        return Consumer(
            spec=ConsumerSpec(name="steps", topics=[topic],
                              handlers={"test.step.v1": Handler(batch=apply)}),
            service="rebalancetest", bootstrap=servers.bootstrap_servers,
            sessions=db.sessionmaker(engine), tables=tables,
            outbox=Outbox(tables, service="rebalancetest"), metrics=Metrics("rebalancetest"),
            session_timeout_ms=3000, heartbeat_interval_ms=300, group_id=group, batch_size=50)

    def step(n: int) -> Envelope:
        return Envelope(type="test.step.v1", source="/tests", subject=f"hh-{n % 11}",
                        data={"seq": n})

    first = [step(n) for n in range(60)]
    later = [step(n) for n in range(60, 200)]
    last = [step(n) for n in range(200, 300)]
    a, b = replica("a"), replica("b")
    health = {"a": TaskHealth("a"), "b": TaskHealth("b")}
    metrics = Metrics("rebalancetest")
    tasks = [asyncio.create_task(supervise("a", a.run, health["a"], metrics))]
    try:
        await _produce(servers.bootstrap_servers, topic, first)
        await asyncio.wait_for(in_flight.wait(), 30)
        tasks.append(asyncio.create_task(supervise("b", b.run, health["b"], metrics)))
        await eventually(lambda: b.kafka is not None, timeout=30, message="b started")
        gate.set()  # the batch in flight finishes while the group rebalances
        await _produce(servers.bootstrap_servers, topic, later)

        async def applied() -> Counter[str]:
            async with engine.connect() as conn:
                return Counter(r.event_id for r in await conn.execute(sa.select(seen.c.event_id)))

        await eventually(lambda: _covers(applied(), {e.id for e in first + later}), timeout=60,
                         message="every event applied")
        await eventually(lambda: a.assigned.is_set() and b.assigned.is_set(), timeout=30,
                         message="both replicas hold partitions")
        await _produce(servers.bootstrap_servers, topic, last)  # after the rebalance: shared
        await eventually(lambda: _covers(applied(), {e.id for e in first + later + last}),
                         timeout=60, message="every event applied after the rebalance")
        counts = await applied()
        assert max(counts.values()) == 1, "an event was applied twice"
        assert not any(t.done() for t in tasks)  # no consumer loop died
        assert health["a"].restarts == 0 and health["b"].restarts == 0
        async with engine.connect() as conn:
            replicas = {r.replica for r in await conn.execute(sa.select(seen.c.replica))}
        assert replicas == {"a", "b"}
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()


async def _covers(counts: object, expected: set[str]) -> bool:
    got = await counts  # type: ignore[misc]
    return expected <= set(got)


async def test_a_failing_task_is_restarted_and_a_dead_or_stuck_one_is_reported():
    runs = 0
    healthy = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"broker away (run {runs})")
        healthy.set()
        await asyncio.Event().wait()

    health = TaskHealth("flaky")
    task = asyncio.create_task(supervise("flaky", flaky, health, Metrics("supervisetest"),
                                         backoff_max_s=0.1))
    try:
        await asyncio.wait_for(healthy.wait(), 10)
        assert health.state == "running" and health.restarts == 2
        assert "broker away (run 2)" in (health.last_error or "")
        assert health.problem(stuck_after_s=60) is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (health.problem(stuck_after_s=60) or "").startswith("stopped")

    stuck = TaskHealth("consumer", state="running", heartbeat=lambda: 0.0)
    assert (stuck.problem(stuck_after_s=60) or "").startswith("stuck")


async def test_shutdown_drains_the_batch_in_flight_and_commits_it(servers):
    topic = f"test.drain.{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings(service_name="draintest")
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    seen = sa.Table(f"seen_{uuid.uuid4().hex[:8]}", meta,
                    sa.Column("event_id", sa.Text, primary_key=True))
    engine = db.create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    await ensure_topics(servers.bootstrap_servers, [topic, topic + ".dlq"], 2)
    in_flight, gate = asyncio.Event(), asyncio.Event()

    async def apply(ctx: BatchContext) -> None:
        in_flight.set()
        await gate.wait()
        await ctx.session.execute(sa.insert(seen), [{"event_id": i.event.id} for i in ctx.items])

    group = f"test-{uuid.uuid4()}"
    consumer = Consumer(
        spec=ConsumerSpec(name="steps", topics=[topic],
                          handlers={"test.step.v1": Handler(batch=apply)}),
        service="draintest", bootstrap=servers.bootstrap_servers,
        sessions=db.sessionmaker(engine), tables=tables,
        outbox=Outbox(tables, service="draintest"), metrics=Metrics("draintest"),
        session_timeout_ms=3000, heartbeat_interval_ms=300, group_id=group)
    events = [Envelope(type="test.step.v1", source="/tests", subject=f"hh-{n}", data={})
              for n in range(20)]
    task = asyncio.create_task(consumer.run())
    try:
        await _produce(servers.bootstrap_servers, topic, events)
        await asyncio.wait_for(in_flight.wait(), 30)
        assert consumer.batch_lock.locked()  # the batch in flight holds it: drain waits
        drain = asyncio.create_task(consumer.drain())
        gate.set()
        await asyncio.wait_for(drain, 30)
        async with engine.connect() as conn:
            applied = set((await conn.execute(sa.select(seen.c.event_id))).scalars())
        assert applied and applied <= {e.id for e in events}
        kafka = consumer.kafka
        assert kafka is not None
        committed = [await kafka.committed(tp) or 0 for tp in kafka.assignment()]
        assert sum(committed) == len(applied)  # the drained batch is committed, not re-read
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
        await engine.dispose()
