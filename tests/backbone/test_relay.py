"""Relays of two replicas on one outbox: one publishes at a time, so a key keeps its order, and
the other takes over when it dies; a row the broker refuses is parked and only its key waits."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from shared import db
from shared.envelope import Envelope
from shared.infra import ensure_topics
from shared.outbox import Outbox, Relay
from shared.runtime import make_producer
from shared.settings import ServiceSettings
from shared.telemetry import Metrics
from tests.support.kafka import collect, header


class GatedProducer:
    """A real producer whose first send waits at a gate: a relay stuck on a slow broker."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    @property
    def client(self) -> Any:
        """The real producer's client (metadata)."""
        return self.producer.client

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        await self.gate.wait()
        return await self.producer.send(*args, **kwargs)


@pytest.fixture
async def outbox(servers):
    """A scratch service database with the platform tables, a topic and a producer."""
    name = f"relaytest{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(service_name=name)
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    engine = db.create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await ensure_topics(servers.bootstrap_servers, [topic], 3)
    producer = make_producer(settings)
    await producer.start()

    def relay(p: Any = producer, **kw: Any) -> Relay:
        return Relay(engine=engine, tables=tables, producer=p, service=name,
                     metrics=Metrics(name), **kw)

    async def write(*events: Envelope) -> None:
        async with db.transaction(db.sessionmaker(engine)) as session:
            await Outbox(tables, service=name).add(session, topic, *events)

    yield type("O", (), {"engine": engine, "tables": tables, "topic": topic,
                         "producer": producer, "relay": relay, "write": write})
    await producer.stop()
    await engine.dispose()


def event(key: str, seq: int, **data: Any) -> Envelope:
    return Envelope(type="test.step.v1", source="/tests", subject=key, data={"seq": seq, **data})


def sequence(records: list, key: str) -> list[int]:
    """The `seq` of a key's records in the order they landed."""
    return [Envelope.from_kafka(list(r.headers), r.value).data["seq"] for r in records
            if r.key == key.encode()]


async def test_a_second_relay_waits_while_the_first_holds_earlier_rows_of_a_key(servers, outbox):
    await outbox.write(*(event("hh-1", i) for i in range(10)))
    gated = GatedProducer(outbox.producer)
    slow = outbox.relay(gated, batch_size=5)
    fast = outbox.relay(batch_size=5)
    first = asyncio.create_task(slow.publish_pending())
    await asyncio.wait_for(gated.entered.wait(), 10)  # replica A holds rows 0–4, broker slow
    assert await fast.publish_pending() == 0  # replica B must not publish 5–9 ahead of them
    assert not fast.leader
    gated.gate.set()
    assert await first == 5
    assert await fast.publish_pending() == 5
    records = await collect(servers.bootstrap_servers, outbox.topic,
                            until=lambda rs: len(sequence(rs, "hh-1")) >= 10)
    assert sequence(records, "hh-1") == list(range(10))


async def test_the_other_relay_takes_over_when_the_publishing_one_dies(servers, outbox):
    await outbox.write(*(event("hh-2", i) for i in range(6)))
    gated = GatedProducer(outbox.producer)
    dying = asyncio.create_task(outbox.relay(gated, batch_size=3).publish_pending())
    await asyncio.wait_for(gated.entered.wait(), 10)
    dying.cancel()  # the replica dies mid-batch: its transaction and lock go with it
    await asyncio.gather(dying, return_exceptions=True)
    survivor = outbox.relay(poll_interval=0.1)
    started = time.monotonic()
    task = asyncio.create_task(survivor.run())
    try:
        records = await collect(servers.bootstrap_servers, outbox.topic,
                                until=lambda rs: len(sequence(rs, "hh-2")) >= 6)
        took = time.monotonic() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sequence(records, "hh-2") == list(range(6))
    assert took < 10
    print(f"relay fail-over: the survivor published the dead relay's key in order in {took:.2f} s")


async def test_a_row_the_broker_refuses_is_parked_and_only_its_key_waits(servers, outbox):
    t = outbox.tables.outbox
    huge = event("hh-big", 0, blob="x" * 2_000_000)  # over the broker's 1 MiB record limit
    await outbox.write(huge, event("hh-big", 1), event("hh-ok", 0), event("hh-ok", 1))
    relay = outbox.relay(max_attempts=2)
    await relay.publish_pending()
    records = await collect(servers.bootstrap_servers, outbox.topic,
                            until=lambda rs: len(sequence(rs, "hh-ok")) >= 2)
    assert sequence(records, "hh-ok") == [0, 1]  # another key is not held up
    assert sequence(records, "hh-big") == []  # the refused row's later event waits behind it

    async with outbox.engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.event_id == huge.id))).one()
    assert row.sent_at is None and row.parked_at is None and row.attempts == 1
    assert "TooLarge" in row.last_error

    async with outbox.engine.begin() as conn:  # the backoff has passed
        await conn.execute(sa.update(t).where(t.c.event_id == huge.id)
                           .values(next_attempt_at=sa.func.now()))
    assert await relay.publish_pending() == 0
    async with outbox.engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.event_id == huge.id))).one()
        later = (await conn.execute(sa.select(t.c.sent_at)
                                    .where(t.c.key == "hh-big", t.c.id > row.id))).scalar()
    assert row.parked_at is not None and row.attempts == 2  # parked, not retried forever
    assert later is None

    await outbox.write(event("hh-ok", 2))  # the rest of the outbox still flows
    assert await relay.publish_pending() == 1

    async with outbox.engine.begin() as conn:  # an operator discards it (the API's statement)
        await conn.execute(sa.update(t).where(t.c.event_id == huge.id)
                           .values(sent_at=sa.func.now()))
    assert await relay.publish_pending() == 1
    records = await collect(servers.bootstrap_servers, outbox.topic,
                            until=lambda rs: len(sequence(rs, "hh-big")) >= 1)
    assert sequence(records, "hh-big") == [1]
    assert {header(r, "ce_id") for r in records}.isdisjoint({huge.id})
