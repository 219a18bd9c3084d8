"""Outbox atomicity: a failed transaction publishes nothing; a committed event survives SIGKILL."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from shared import db
from shared.envelope import Envelope
from shared.infra import ensure_topics, free_port
from shared.outbox import Outbox, Relay
from shared.processes import ServiceProcess
from shared.runtime import make_producer
from shared.settings import ServiceSettings
from shared.telemetry import Metrics
from tests.support.apps import auth
from tests.support.kafka import collect, header


@pytest.fixture
async def store(servers):
    """A business table + outbox in a scratch database, with a running relay."""
    settings = ServiceSettings(service_name="outboxtest")
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    thing = sa.Table("thing", meta, sa.Column("id", sa.Text, primary_key=True))
    engine = db.create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    topic = f"test.things.{uuid.uuid4().hex[:8]}"
    await ensure_topics(servers.bootstrap_servers, [topic], 3)
    producer = make_producer(settings)
    await producer.start()
    relay = Relay(engine=engine, tables=tables, producer=producer, service="outboxtest",
                  metrics=Metrics("outboxtest"), poll_interval=0.1)
    task = asyncio.create_task(relay.run())
    yield type("S", (), {"engine": engine, "tables": tables, "thing": thing, "topic": topic,
                         "outbox": Outbox(tables, service="outboxtest")})
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await producer.stop()
    await engine.dispose()


async def test_a_handler_that_raises_after_writing_leaves_no_row_and_publishes_nothing(
        servers, store):
    failed = Envelope(type="test.thing.created.v1", source="/tests", subject="a", data={"id": "a"})
    with pytest.raises(RuntimeError):
        async with db.transaction(db.sessionmaker(store.engine)) as session:
            await session.execute(sa.insert(store.thing).values(id=failed.id))
            await store.outbox.add(session, store.topic, failed)
            raise RuntimeError("handler failed after writing")
    ok = Envelope(type="test.thing.created.v1", source="/tests", subject="b", data={"id": "b"})
    async with db.transaction(db.sessionmaker(store.engine)) as session:
        await session.execute(sa.insert(store.thing).values(id=ok.id))
        await store.outbox.add(session, store.topic, ok)

    records = await collect(servers.bootstrap_servers, store.topic,
                            until=lambda rs: any(header(r, "ce_id") == ok.id for r in rs))
    assert failed.id not in {header(r, "ce_id") for r in records}
    async with store.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(store.thing)
                                 .where(store.thing.c.id == failed.id)) == 0
        outbox = store.tables.outbox
        assert await conn.scalar(sa.select(sa.func.count()).select_from(outbox)
                                 .where(outbox.c.event_id == failed.id)) == 0
        kept = (await conn.execute(sa.select(outbox.c.sent_at).where(outbox.c.event_id == ok.id))).one()
        assert kept.sent_at is not None  # rows are kept as the event log, marked sent


def registration(national_id: str) -> dict:
    """A minimal valid registration body."""
    return {"area_type": "rural",
            "location": {"province_code": "01", "commune_code": "01001", "village": "Thôn Kill"},
            "members": [{"full_name": "Đinh Thị Kill", "national_id": national_id,
                         "date_of_birth": "1990-02-03", "sex": "female", "relation": "head"}]}


async def test_event_committed_before_a_sigkill_is_published_after_restart(servers):
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="outbox-kill-"))
    env = {"REGISTRY_PORT": str(port), "REGISTRY_RELAY_ENABLED": "false",
           "REGISTRY_CONSUMER_GROUP_PREFIX": f"kill{uuid.uuid4().hex[:6]}-",
           "OTEL_TRACES_EXPORTER": "none"}
    proc = ServiceProcess(name="registry", module="services.registry", port=port, env=env,
                          log_path=logs / "registry-1.log").start()
    try:
        await asyncio.to_thread(proc.wait_ready, 90)
        async with httpx.AsyncClient(base_url=proc.url) as client:
            r = await client.post("/v1/households", json=registration(str(time.time_ns())[-12:]),
                                  headers=auth("commune_officer", "01001"))
        assert r.status_code == 201, r.text
        household_id = r.json()["household_id"]
    finally:
        proc.stop(kill=True)  # SIGKILL: committed, never relayed
    assert proc.proc is not None and proc.proc.returncode == -9

    settings = ServiceSettings(service_name="registry")
    engine = db.create_engine(settings.db_url)
    try:
        async with engine.connect() as conn:
            unsent = await conn.scalar(sa.text(
                "select count(*) from outbox where subject = :s and sent_at is null"),
                {"s": household_id})
        assert unsent == 1
    finally:
        await engine.dispose()

    restarted = ServiceProcess(name="registry", module="services.registry", port=port,
                               env={**env, "REGISTRY_RELAY_ENABLED": "true"},
                               log_path=logs / "registry-2.log").start()
    try:
        await asyncio.to_thread(restarted.wait_ready, 90)
        records = await collect(
            servers.bootstrap_servers, "registry.households",
            until=lambda rs: any(header(r, "ce_subject") == household_id for r in rs), timeout=30)
        published = [r for r in records if header(r, "ce_subject") == household_id]
        assert header(published[0], "ce_type") == "registry.household.registered.v1"
        assert published[0].key == household_id.encode()
        assert len(published) == 1
    finally:
        restarted.stop()
    assert restarted.proc is not None and restarted.proc.poll() is not None
