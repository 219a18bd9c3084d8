"""A broker that restarts empty (the embedded memory-only one) loses nothing: writes during the
outage wait in the outbox, the relay notices the fresh broker (no marker topic), recreates the
topics, lets running consumers rewind, and publishes again what the broker lost; consumers that
ran through the restart and consumers that were down both end with every event once, in order
per key."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from shared import db
from shared.broker import BrokerWatch
from shared.consumer import BatchContext, Consumer, ConsumerSpec, Handler
from shared.infra import EMBEDDED_PARTITIONS, _port_open, free_port, stop_pid
from shared.outbox import Outbox, Relay
from shared.settings import ServiceSettings
from shared.telemetry import Metrics
from tests.support.infra import start_broker
from tests.support.wait import eventually


async def test_a_fresh_broker_gets_back_what_it_lost_in_order(servers):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    service = f"brokertest{uuid.uuid4().hex[:6]}"
    topic = f"{service}.steps"
    settings = ServiceSettings(service_name=service)
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    seen = sa.Table("seen", meta,
                    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("grp", sa.Text, nullable=False),
                    sa.Column("key", sa.Text, nullable=False),
                    sa.Column("seq", sa.Integer, nullable=False))
    engine = db.create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    outbox = Outbox(tables, service=service)
    metrics = Metrics(service)
    broker = start_broker(port)
    tasks: list[asyncio.Task] = []
    consumers: dict[str, Consumer] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                request_timeout_ms=5000)
    try:
        watch = BrokerWatch(bootstrap=bootstrap, producer=producer, engine=engine, tables=tables,
                            topics=[topic, topic + ".dlq"], consumed=[topic + ".dlq"],
                            service=service, partitions=EMBEDDED_PARTITIONS, interval_s=0.5,
                            grace_s=3.0)
        relay = Relay(engine=engine, tables=tables, producer=producer, service=service,
                      metrics=metrics, poll_interval=0.2)
        relay.ready = watch.producer_ready
        relay.before_claim = watch.recover_if_fresh
        await watch.check()
        tasks += [asyncio.create_task(watch.run()), asyncio.create_task(relay.run())]

        def consumer(group: str) -> Consumer:
            async def apply(ctx: BatchContext) -> None:
                await ctx.session.execute(sa.insert(seen), [
                    {"grp": group, "key": i.event.subject, "seq": i.event.data["seq"]}
                    for i in ctx.items])

            return Consumer(
                spec=ConsumerSpec(name=group, topics=[topic],
                                  handlers={"test.step.v1": Handler(batch=apply)}),
                service=service, bootstrap=bootstrap, sessions=db.sessionmaker(engine),
                tables=tables, outbox=outbox, metrics=metrics, group_id=f"{service}-{group}",
                session_timeout_ms=6000, heartbeat_interval_ms=500, batch_size=20)

        def start(group: str) -> None:
            consumers[group] = consumer(group)
            tasks.append(asyncio.create_task(consumers[group].run()))

        seq = 0

        async def write(n: int) -> None:
            nonlocal seq
            async with db.sessionmaker(engine)() as session, session.begin():
                for _ in range(n):
                    await outbox.add(session, topic, outbox.new(
                        type="test.step.v1", subject=f"hh-{seq % 7}", data={"seq": seq}))
                    seq += 1

        async def applied(group: str) -> list[tuple[str, int]]:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.select(seen.c.key, seen.c.seq)
                                          .where(seen.c.grp == group).order_by(seen.c.id))
                return [(r.key, r.seq) for r in rows]

        start("running")  # reads through the restart
        start("stopped")  # is down while the broker restarts
        await write(30)
        await eventually(lambda: _count(applied("stopped"), 30), timeout=60,
                         message="first events consumed")
        await eventually(lambda: _count(applied("running"), 30), timeout=60,
                         message="first events consumed")
        stopped = tasks.pop()
        stopped.cancel()
        await asyncio.gather(stopped, return_exceptions=True)
        await write(30)  # published, never consumed by "stopped": in flight
        await eventually(lambda: _all_sent(engine, tables), timeout=30,
                         message="in-flight events published")

        stop_pid(broker, timeout=5)  # memory lost
        await write(30)  # lands in the outbox during the outage
        await eventually(lambda: _port_closed(port), timeout=10, message="broker down")
        restarted_at = time.monotonic()
        broker = start_broker(port)
        start("stopped")
        await eventually(lambda: _count(applied("stopped"), 90), timeout=90,
                         message="the stopped group got every event after the restart")
        await eventually(lambda: _count(applied("running"), 90), timeout=90,
                         message="the running group got every event after the restart")
        recovered_s = time.monotonic() - restarted_at
        assert watch.recoveries == 1 and watch.last_requeued >= 60
        for group in ("running", "stopped"):
            got = await applied(group)
            assert sorted(s for _, s in got) == list(range(90)), f"{group}: lost or twice"
            per_key: dict[str, list[int]] = defaultdict(list)
            for key, s in got:
                per_key[key].append(s)
            assert all(v == sorted(v) for v in per_key.values()), f"{group}: reordered"
        print(f"broker restart: every event back at both groups in {recovered_s:.1f} s")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await producer.stop()
        stop_pid(broker, timeout=5)
        await engine.dispose()


async def _count(rows: object, n: int) -> bool:
    return len(await rows) >= n  # type: ignore[misc, arg-type]


async def _all_sent(engine: object, tables: db.PlatformTables) -> bool:
    t = tables.outbox
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        return not await conn.scalar(sa.select(sa.func.count()).select_from(t)
                                     .where(t.c.sent_at.is_(None)))


def _port_closed(port: int) -> bool:
    return not _port_open(port)
