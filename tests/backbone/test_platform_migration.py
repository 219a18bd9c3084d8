"""Platform v3 upgrades a database whose inbox was keyed by (consumer, event id) only, keeping
its rows, and is a no-op on one created with today's definitions."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared import db
from shared.settings import ServiceSettings


async def test_the_inbox_key_widens_to_the_source_and_keeps_its_rows(servers):
    settings = ServiceSettings(service_name=f"migrationtest{uuid.uuid4().hex[:6]}")
    await db.create_database_if_missing(settings.db_url)
    engine = db.create_engine(settings.db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "CREATE TABLE inbox (consumer text, event_id text, topic text NOT NULL, "
                "outcome text NOT NULL DEFAULT 'processed', received_at timestamptz NOT NULL "
                "DEFAULT now(), PRIMARY KEY (consumer, event_id))"))
            await conn.execute(sa.text("INSERT INTO inbox (consumer, event_id, topic) "
                                       "VALUES ('c', 'e1', 't')"))
        for _ in range(2):  # idempotent
            async with engine.begin() as conn:
                await conn.run_sync(db.upgrade_platform_tables_v3)
        async with engine.begin() as conn:
            key = await conn.scalar(sa.text(
                "SELECT string_agg(a.attname, ',' ORDER BY array_position(c.conkey, a.attnum)) "
                "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
                "AND a.attnum = ANY(c.conkey) WHERE c.conrelid = 'inbox'::regclass "
                "AND c.contype = 'p'"))
            assert key == "consumer,source,event_id"
            await conn.execute(sa.text("INSERT INTO inbox (consumer, source, event_id, topic) "
                                       "VALUES ('c', '/partners/x', 'e1', 't')"))
            rows = (await conn.execute(sa.text(
                "SELECT source, event_id FROM inbox ORDER BY source"))).all()
            assert [tuple(r) for r in rows] == [("", "e1"), ("/partners/x", "e1")]
    finally:
        await engine.dispose()
