"""Inbox and dead letters of the shared batched consumer, against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from shared import db
from shared.consumer import Consumer, ConsumerSpec, EventContext, Handler
from shared.envelope import Envelope
from shared.infra import ensure_topics
from shared.outbox import Outbox, Relay
from shared.runtime import make_producer
from shared.settings import ServiceSettings
from shared.telemetry import Metrics
from tests.support.kafka import collect, header, produce, produce_event
from tests.support.wait import eventually


class _Deadlock(Exception):
    """What asyncpg reports when PostgreSQL picked this transaction as a deadlock victim."""

    sqlstate = "40P01"


class Deposit(BaseModel):
    """Payload of the test event."""

    account: str
    amount: int


@pytest.fixture
async def harness(servers):
    """A consumer over a fresh topic that adds deposits to a counter table."""
    topic = f"test.deposits.{uuid.uuid4().hex[:8]}"
    settings = ServiceSettings(service_name="backbonetest")
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    balance = sa.Table("balance", meta, sa.Column("account", sa.Text, primary_key=True),
                       sa.Column("amount", sa.Integer, nullable=False))
    engine = db.create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    await ensure_topics(servers.bootstrap_servers, [topic, topic + ".dlq"], 3)
    metrics = Metrics("backbonetest")
    outbox = Outbox(tables, service="backbonetest")
    calls = {"n": 0}

    async def deposit(ctx: EventContext, payload: Deposit) -> None:
        calls["n"] += 1
        if payload.account == "explode":
            raise RuntimeError("boom")
        if payload.account == "deadlock" and calls["n"] == 1:
            raise DBAPIError("UPDATE balance", {}, _Deadlock())
        await ctx.session.execute(
            pg_insert(balance).values(account=payload.account, amount=payload.amount)
            .on_conflict_do_update(index_elements=["account"],
                                   set_={"amount": balance.c.amount + payload.amount}))

    spec = ConsumerSpec(name="deposits", topics=[topic],
                        handlers={"test.deposit.v1": Handler(deposit, Deposit)})
    consumer = Consumer(spec=spec, service="backbonetest", bootstrap=servers.bootstrap_servers,
                        sessions=db.sessionmaker(engine), tables=tables, outbox=outbox,
                        metrics=metrics, session_timeout_ms=2000, heartbeat_interval_ms=300,
                        group_id=f"test-{uuid.uuid4()}")
    producer = make_producer(settings)
    await producer.start()
    relay = Relay(engine=engine, tables=tables, producer=producer, service="backbonetest",
                  metrics=metrics, poll_interval=0.1)
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(relay.run())]

    async def amount(account: str) -> int | None:
        async with engine.connect() as conn:
            return await conn.scalar(sa.select(balance.c.amount).where(balance.c.account == account))

    yield type("H", (), {"topic": topic, "amount": staticmethod(amount), "calls": calls,
                         "tables": tables, "engine": engine, "consumer": consumer})
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await producer.stop()
    await engine.dispose()


def deposit(account: str, amount: int | str = 10) -> Envelope:
    """A test event."""
    return Envelope(type="test.deposit.v1", source="/tests", subject=account,
                    data={"account": account, "amount": amount})


async def test_same_event_twice_changes_state_once(servers, harness):
    account = f"acc-{uuid.uuid4().hex[:6]}"
    event = deposit(account, 10)
    await produce_event(servers.bootstrap_servers, harness.topic, event)
    await produce_event(servers.bootstrap_servers, harness.topic, event)  # same ce_id
    marker = deposit(account + "-marker", 1)
    await produce_event(servers.bootstrap_servers, harness.topic, marker)
    await eventually(lambda: harness.amount(account + "-marker"), message="marker processed")
    assert await harness.amount(account) == 10
    async with harness.engine.connect() as conn:
        inbox = harness.tables.inbox
        n = await conn.scalar(sa.select(sa.func.count()).select_from(inbox)
                              .where(inbox.c.event_id == event.id))
    assert n == 1


async def test_an_id_another_source_also_used_is_not_a_duplicate(servers, harness):
    # CloudEvents identify an event by (source, id): a partner numbering its messages 1, 2, 3
    # must not collide with ours (the inbox is keyed by consumer, source and id).
    account = f"acc-{uuid.uuid4().hex[:6]}"
    ours = deposit(account, 10)
    theirs = Envelope(type="test.deposit.v1", source="/partners/vbsp", subject=account,
                      data={"account": account, "amount": 5}, id=ours.id)
    await produce_event(servers.bootstrap_servers, harness.topic, ours)
    await produce_event(servers.bootstrap_servers, harness.topic, theirs)
    await produce_event(servers.bootstrap_servers, harness.topic, theirs)  # a real repeat
    marker = deposit(account + "-marker", 1)
    await produce_event(servers.bootstrap_servers, harness.topic, marker)
    await eventually(lambda: harness.amount(account + "-marker"), message="marker processed")
    assert await harness.amount(account) == 15


async def test_bad_messages_go_to_the_dead_letter_and_the_next_good_one_is_processed(
        servers, harness):
    account = f"acc-{uuid.uuid4().hex[:6]}"
    await produce(servers.bootstrap_servers, harness.topic, value=b"\x00not json{",
                  key=account.encode(), headers=deposit(account).headers())
    invalid = deposit(account, "lots")  # amount must be an integer
    await produce_event(servers.bootstrap_servers, harness.topic, invalid)
    failing = deposit("explode", 5)
    await produce_event(servers.bootstrap_servers, harness.topic, failing)
    other = f"acc-{uuid.uuid4().hex[:6]}"  # another household: not held up by the poison
    good = deposit(other, 7)
    await produce_event(servers.bootstrap_servers, harness.topic, good)

    await eventually(lambda: harness.amount(other), message="good event processed")
    assert await harness.amount(other) == 7

    dlq = await collect(servers.bootstrap_servers, harness.topic + ".dlq",
                        until=lambda recs: len(recs) >= 3)
    reasons = {header(r, "ce_id") or "": header(r, "dlq_reason") or "" for r in dlq}
    assert any(r.startswith("unparseable") for r in reasons.values())
    assert reasons[invalid.id].startswith("schema-invalid") and "amount" in reasons[invalid.id]
    assert "boom" in reasons[failing.id]
    by_id = {header(r, "ce_id"): r for r in dlq}
    assert header(by_id[failing.id], "dlq_attempts") == "3"
    for record in dlq:
        assert header(record, "dlq_original_topic") == harness.topic
        assert header(record, "dlq_original_partition") is not None
        assert header(record, "dlq_original_offset") is not None
    assert harness.calls["n"] >= 4  # 3 attempts of the failing one + the good one


async def test_a_dead_letter_can_be_replayed_once_the_cause_is_fixed(servers, harness):
    account = f"acc-{uuid.uuid4().hex[:6]}"
    await produce(servers.bootstrap_servers, harness.topic, value=b"{broken",
                  headers=deposit(account).headers())
    dl = harness.tables.dead_letter

    async def dead_letter_id():
        async with harness.engine.connect() as conn:
            return await conn.scalar(sa.select(dl.c.id).where(
                dl.c.reason.like("unparseable%"), dl.c.topic == harness.topic))

    dl_id = await eventually(dead_letter_id, message="dead letter recorded")
    # Operators fix the record in place (e.g. after a producer bug) and replay it.
    fixed = deposit(account, 3)
    async with harness.engine.begin() as conn:
        await conn.execute(sa.update(dl).where(dl.c.id == dl_id).values(value=fixed.value()))
    result = await harness.consumer.replay(dl_id)
    assert result["outcome"] == "processed", result
    assert await harness.amount(account) == 3


async def test_a_households_later_events_park_behind_its_dead_letter_and_replay_in_order(
        servers, harness):
    account = f"acc-{uuid.uuid4().hex[:6]}"
    bad = deposit(account, "lots")  # schema-invalid: dead-lettered
    await produce_event(servers.bootstrap_servers, harness.topic, bad)
    later = [deposit(account, n) for n in (1, 2, 4)]
    for event in later:
        await produce_event(servers.bootstrap_servers, harness.topic, event)
    marker = deposit(account + "-marker", 1)  # another household goes on
    await produce_event(servers.bootstrap_servers, harness.topic, marker)
    await eventually(lambda: harness.amount(account + "-marker"), message="marker processed")
    dl = harness.tables.dead_letter

    async def letters() -> list:
        async with harness.engine.connect() as conn:
            return list((await conn.execute(
                sa.select(dl).where(dl.c.key == account.encode()).order_by(dl.c.offset))).all())

    rows = await eventually(lambda: _at_least(letters(), 4), message="later events parked")
    head, *parked = rows
    assert head.event_id == bad.id and head.parked_behind is None
    assert [r.event_id for r in parked] == [e.id for e in later]
    assert all(r.parked_behind == head.id for r in parked)
    assert await harness.amount(account) is None  # nothing of the household applied ahead

    # Still parked: a new event of the household waits too.
    await produce_event(servers.bootstrap_servers, harness.topic, deposit(account, 8))
    await eventually(lambda: _at_least(letters(), 5), message="new event parked")
    with pytest.raises(ValueError):
        await harness.consumer.replay(parked[0].id)  # not before its head

    result = await harness.consumer.replay(head.id, discard=True, actor="ops-1")
    assert result["outcome"] == "discarded" and result["parked_replayed"] == 4
    assert await harness.amount(account) == 15
    rows = await letters()
    assert rows[0].discarded_by == "ops-1"
    assert all(r.replayed_by == "ops-1" for r in rows[1:])


async def _at_least(rows: object, n: int) -> object:
    got = await rows  # type: ignore[misc]
    return got if len(got) >= n else None


async def test_a_record_postgresql_cannot_store_as_text_is_still_dead_lettered(servers, harness):
    account = f"acc-{uuid.uuid4().hex[:6]}"
    poison = deposit(account, "lots")
    headers = poison.headers() + [("x-partner-note", b"abc\x00def\xff")]
    await produce(servers.bootstrap_servers, harness.topic, value=poison.value(),
                  key=account.encode(), headers=headers)
    nul_id = deposit(account + "-nul")
    await produce(servers.bootstrap_servers, harness.topic, value=nul_id.value(),
                  key=b"nul", headers=[(k, v.replace(nul_id.id.encode(), b"id\x00x") if k ==
                                        "ce_id" else v) for k, v in nul_id.headers()])
    marker = deposit(account + "-marker", 1)
    await produce_event(servers.bootstrap_servers, harness.topic, marker)
    await eventually(lambda: harness.amount(account + "-marker"), timeout=30,
                     message="the partition moved past the poison")
    dl = harness.tables.dead_letter
    async with harness.engine.connect() as conn:
        stored = (await conn.execute(sa.select(dl).where(dl.c.event_id == poison.id))).one()
        unparseable = (await conn.execute(sa.select(dl.c.reason).where(dl.c.key == b"nul"))).one()
    assert dict(stored.headers)["x-partner-note"] == "abc\ufffddef\ufffd"
    assert ["x-partner-note", "YWJjAGRlZv8="] in stored.raw_headers  # the bytes, exactly
    assert "NUL" in unparseable.reason


async def test_a_deadlock_rolls_the_batch_back_and_retries_it_instead_of_dead_lettering(harness, servers):
    topic = harness.topic
    await produce_event(servers.bootstrap_servers, topic, Envelope(
        type="test.deposit.v1", source="/tests", subject="deadlock",
        data={"account": "deadlock", "amount": 7}))
    assert await eventually(lambda: harness.amount("deadlock"), timeout=20,
                            message="the deposit applied after the retried batch") == 7
    assert harness.calls["n"] == 2
    async with harness.engine.connect() as conn:
        dl = harness.tables.dead_letter
        dead = await conn.scalar(sa.select(sa.func.count()).select_from(dl)
                                 .where(dl.c.topic == topic))
    assert dead == 0
