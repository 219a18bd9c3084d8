"""Retention prunes what is past its horizon and nothing else: never an unsent or parked
outbox row, never an open dead letter; the inbox horizon must outlive the broker's retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from shared import db
from shared.retention import Retention
from shared.settings import ServiceSettings
from shared.telemetry import Metrics


async def test_only_what_is_past_its_horizon_is_pruned(servers):
    service = f"retentiontest{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(service_name=service)
    await db.create_database_if_missing(settings.db_url)
    meta = db.new_metadata()
    tables = db.PlatformTables(meta)
    engine = db.create_engine(settings.db_url)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)

            def row(name: str, created: datetime, sent: datetime | None,
                    parked: datetime | None = None) -> dict:
                return {"event_id": str(uuid.uuid4()), "topic": "t", "key": "k", "type": name,
                        "headers": [],
                        "value": b"{}", "created_at": created, "sent_at": sent,
                        "parked_at": parked}

            await conn.execute(sa.insert(tables.outbox), [
                *(row(f"old-sent-{i}", old, old) for i in range(5)),
                row("old-unsent", old, None), row("old-parked", old, None, old),
                row("recent-sent", recent, recent)])
            await conn.execute(sa.insert(tables.inbox), [
                *({"consumer": "c", "source": "/s", "event_id": f"old-{i}", "topic": "t",
                   "received_at": old} for i in range(5)),
                {"consumer": "c", "source": "/s", "event_id": "recent", "topic": "t",
                 "received_at": recent}])

            def dead(name: str, created: datetime, **handled: object) -> dict:
                return {"consumer": "c", "event_id": name, "topic": "t", "partition": 0,
                        "offset": 0, "headers": [], "reason": "r", "attempts": 1,
                        "created_at": created, "replayed_at": None, "discarded_at": None,
                        **handled}

            await conn.execute(sa.insert(tables.dead_letter), [
                dead("old-replayed", now - timedelta(days=100), replayed_at=old),
                dead("old-discarded", now - timedelta(days=100), discarded_at=old),
                dead("old-open", now - timedelta(days=100)),
                dead("recent-replayed", recent, replayed_at=recent)])
        retention = Retention(engine=engine, tables=tables, service=service,
                              metrics=Metrics(service), batch=2)
        assert await retention.prune() == {"outbox": 5, "inbox": 5, "dead_letter": 2}
        async with engine.connect() as conn:
            outbox = set((await conn.execute(sa.select(tables.outbox.c.type))).scalars())
            inbox = set((await conn.execute(sa.select(tables.inbox.c.event_id))).scalars())
            dead_letters = set((await conn.execute(
                sa.select(tables.dead_letter.c.event_id))).scalars())
        assert outbox == {"old-unsent", "old-parked", "recent-sent"}
        assert inbox == {"recent"}
        assert dead_letters == {"old-open", "recent-replayed"}
        assert await retention.prune() == {"outbox": 0, "inbox": 0, "dead_letter": 0}
    finally:
        await engine.dispose()


def test_an_inbox_horizon_shorter_than_the_broker_keeps_records_is_refused():
    with pytest.raises(ValidationError, match="RETENTION_INBOX_DAYS"):
        ServiceSettings(retention_inbox_days=7, broker_retention_h=168)
    ServiceSettings(retention_inbox_days=9, broker_retention_h=168, broker_republish_window_h=24)
