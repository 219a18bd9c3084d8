"""Set-based handlers: a batch is handled in a few calls, one household's events keep their order,
one poison event is isolated and dead-lettered while the rest of its batch is applied."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer, ConsumerRecord

from shared import db
from shared.consumer import BatchContext, Consumer, ConsumerSpec, Handler, Item, _Parsed, _stages
from shared.envelope import Envelope
from shared.infra import ensure_topics
from shared.outbox import Outbox
from shared.settings import ServiceSettings
from shared.telemetry import Metrics
from tests.support.wait import eventually


async def test_a_batch_is_applied_in_order_with_few_calls_and_the_poison_is_isolated(servers):
    topic = f"test.steps.{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings(service_name="batchtest")
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    step = sa.Table(f"step_{uuid.uuid4().hex[:8]}", meta,
                    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("account", sa.Text, nullable=False),
                    sa.Column("seq", sa.Integer, nullable=False))
    engine = db.create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    await ensure_topics(servers.bootstrap_servers, [topic, topic + ".dlq"], 3)
    outbox = Outbox(tables, service="batchtest")
    calls: list[int] = []

    async def apply(ctx: BatchContext) -> None:
        calls.append(len(ctx.items))
        if any(i.payload["account"] == "poison" for i in ctx.items):
            raise RuntimeError("poison in the batch")
        await ctx.session.execute(sa.insert(step), [
            {"account": i.payload["account"], "seq": i.payload["seq"]} for i in ctx.items])
        for i in ctx.items:  # caused events go through the batch's single outbox insert
            await ctx.context(i).emit(topic + ".out", type="test.applied.v1", data=i.payload)

    events = [Envelope(type="test.step.v1", source="/tests", subject=f"acc-{n % 7}",
                       data={"account": f"acc-{n % 7}", "seq": n}) for n in range(300)]
    events.insert(150, Envelope(type="test.step.v1", source="/tests", subject="poison",
                                data={"account": "poison", "seq": -1}))
    producer = AIOKafkaProducer(bootstrap_servers=servers.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for e in events:
            await producer.send(topic, value=e.value(), key=e.key, headers=e.headers())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = Consumer(
        spec=ConsumerSpec(name="steps", topics=[topic],
                          handlers={"test.step.v1": Handler(batch=apply)}),
        service="batchtest", bootstrap=servers.bootstrap_servers,
        sessions=db.sessionmaker(engine), tables=tables, outbox=outbox,
        metrics=Metrics("batchtest"), session_timeout_ms=2000, heartbeat_interval_ms=300,
        group_id=f"test-{uuid.uuid4()}")
    task = asyncio.create_task(consumer.run())
    try:
        async def applied() -> int:
            async with engine.connect() as conn:
                return int(await conn.scalar(sa.select(sa.func.count()).select_from(step)) or 0)

        await eventually(lambda: _equals(applied(), 300), timeout=30,
                         message="every good event applied")
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(step.c.account, step.c.seq)
                                       .order_by(step.c.id))).all()
            out = tables.outbox
            emitted = await conn.scalar(sa.select(sa.func.count()).select_from(out)
                                        .where(out.c.topic == topic + ".out"))
        for account in {r.account for r in rows}:
            seqs = [r.seq for r in rows if r.account == account]
            assert seqs == sorted(seqs), f"{account} applied out of order: {seqs}"
        assert emitted == 300
        # Far fewer handler calls than events: the batch (not the event) is the unit of work;
        # the poison's batch was bisected (a savepoint per half) down to the poison alone.
        assert len(calls) <= 40, calls
        async with engine.connect() as conn:
            dl = tables.dead_letter
            dead = (await conn.execute(sa.select(dl.c.event_id, dl.c.reason)
                                       .where(dl.c.topic == topic))).all()
            dlq = await conn.scalar(sa.select(sa.func.count()).select_from(out)
                                    .where(out.c.topic == topic + ".dlq"))
        assert [d.event_id for d in dead] == [events[150].id]
        assert "poison in the batch" in dead[0].reason
        assert dlq == 1  # published to <topic>.dlq by the relay
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()


async def _equals(count, expected: int) -> bool:
    return await count == expected


def test_stages_keep_each_partitions_order_and_merge_runs_across_partitions():
    async def a(ctx: BatchContext) -> None: ...

    async def b(ctx: BatchContext) -> None: ...

    ha, hb = Handler(batch=a), Handler(batch=b)

    def parsed(partition: int, n: int, handler: Handler) -> _Parsed:
        record = ConsumerRecord(topic="t", partition=partition, offset=n, timestamp=0,
                                timestamp_type=0, key=None, value=b"{}", checksum=None,
                                serialized_key_size=0, serialized_value_size=2, headers=())
        event = Envelope(type="x", source="/t", data={}, id=f"{partition}-{n}")
        return _Parsed(record=record, handler=handler, item=Item(event=event, payload={}, topic="t"))

    p0 = [parsed(0, 0, ha), parsed(0, 1, ha), parsed(0, 2, hb), parsed(0, 3, ha)]
    p1 = [parsed(1, 0, ha), parsed(1, 1, hb)]
    stages = [(h.batch.__name__, [p.item.event.id for p in ps])  # type: ignore[union-attr]
              for h, ps in _stages([p0, p1])]
    assert stages == [("a", ["0-0", "0-1", "1-0"]), ("b", ["0-2", "1-1"]), ("a", ["0-3"])]
