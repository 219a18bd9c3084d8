"""Database plumbing: naming convention, engines, sessions, Alembic at start-up, platform tables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

# The range of a PostgreSQL bigint: every integer an API lets through must fit the column it
# reaches (and orjson, which writes jsonb, refuses anything past 64 bits).
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
INTEGER_MAX = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> sa.MetaData:
    """A MetaData with the project's constraint naming convention."""
    return sa.MetaData(naming_convention=NAMING_CONVENTION)


def declarative_base() -> type[DeclarativeBase]:
    """A fresh declarative Base per service (each service owns its own database)."""

    class Base(DeclarativeBase):
        metadata = new_metadata()

    return Base


def platform_tables(metadata: sa.MetaData) -> PlatformTables:
    """Add the outbox, inbox and dead-letter tables to a service's metadata."""
    return PlatformTables(metadata)


class PlatformTables:
    """The tables every service has: its event log (outbox), inbox and dead letters."""

    def __init__(self, metadata: sa.MetaData) -> None:
        self.outbox = sa.Table(
            "outbox", metadata,
            sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("key", sa.Text),
            sa.Column("type", sa.Text, nullable=False),
            sa.Column("subject", sa.Text),
            sa.Column("correlation_id", sa.Text),
            sa.Column("causation_id", sa.Text),
            sa.Column("traceparent", sa.Text),
            sa.Column("tracestate", sa.Text),
            sa.Column("headers", JSONB, nullable=False),
            sa.Column("value", sa.LargeBinary, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
            sa.Column("sent_at", sa.DateTime(timezone=True)),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            # A row the broker refused: its error, when it is tried again, and when it was
            # parked (too many attempts). Only its key waits behind it.
            sa.Column("last_error", sa.Text),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
            sa.Column("parked_at", sa.DateTime(timezone=True)),
            sa.Index("ix_outbox_unsent", "id", postgresql_where=sa.text("sent_at IS NULL")),
            sa.Index("ix_outbox_failing", "key", "id",
                     postgresql_where=sa.text("sent_at IS NULL AND last_error IS NOT NULL")),
        )
        self.inbox = sa.Table(
            "inbox", metadata,
            sa.Column("consumer", sa.Text, primary_key=True),
            # (source, id) identifies an event (CloudEvents); "" for a record without one.
            sa.Column("source", sa.Text, primary_key=True, server_default=""),
            sa.Column("event_id", sa.Text, primary_key=True),
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("outcome", sa.Text, nullable=False, server_default="processed"),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
            sa.Index("ix_inbox_received_at", "received_at"),  # retention
        )
        self.dead_letter = sa.Table(
            "dead_letter", metadata,
            sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("consumer", sa.Text, nullable=False),
            sa.Column("event_id", sa.Text, nullable=False),
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("partition", sa.Integer, nullable=False),
            sa.Column("offset", sa.BigInteger, nullable=False),
            sa.Column("key", sa.LargeBinary),
            sa.Column("headers", JSONB, nullable=False),
            sa.Column("value", sa.LargeBinary),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
            sa.Column("replayed_at", sa.DateTime(timezone=True)),
            # Headers exactly as received ([name, base64 of the bytes]): `headers` is for reading
            # and has bytes PostgreSQL's jsonb refuses (NUL) replaced.
            sa.Column("raw_headers", JSONB),
            sa.Column("replayed_by", sa.Text),
            sa.Column("discarded_at", sa.DateTime(timezone=True)),
            sa.Column("discarded_by", sa.Text),
            # Set on an event parked behind an earlier dead letter of the same key (the id of
            # that dead letter): not bad itself, it waits to be replayed in order.
            sa.Column("parked_behind", sa.BigInteger),
            sa.Index("ix_dead_letter_open_key", "consumer", "key",
                     postgresql_where=sa.text("replayed_at IS NULL AND discarded_at IS NULL")),
        )

        # Operator actions (republish, retry, discard, replay): who, when, why and what came of
        # it. Kept for good: retention never prunes it.
        self.operator_action = sa.Table(
            "operator_action", metadata,
            sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
            sa.Column("actor", sa.Text, nullable=False),
            sa.Column("role", sa.Text, nullable=False),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("outcome", JSONB, nullable=False),
            sa.Column("correlation_id", sa.Text),
        )

    @property
    def tables(self) -> list[sa.Table]:
        """All platform tables, for migrations."""
        return [self.outbox, self.inbox, self.dead_letter, self.operator_action]


def json_text(value: Any) -> str:
    """JSON for json/jsonb columns (orjson: every batch writes thousands of documents)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _copy_encoder(column: sa.Column) -> Callable[[Any], Any]:
    if isinstance(column.type, JSONB):
        return lambda v: None if v is None else json_text(v)
    return lambda v: v


async def copy_rows(session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Bulk-load dict rows with PostgreSQL COPY on the session's connection (same transaction):
    the cheapest way in for a batch's rows."""
    if not rows:
        return
    columns = list(rows[0])
    encoders = [_copy_encoder(table.c[c]) for c in columns]
    records = [tuple(enc(r[c]) for enc, c in zip(encoders, columns, strict=True)) for r in rows]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, columns=columns, records=records)


COPY_FROM_ROWS = 50  # below this, COPY's set-up costs more than a multi-row INSERT


async def write_rows(session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert a batch's rows (no conflict handling): COPY for many, one INSERT for a few."""
    if len(rows) >= COPY_FROM_ROWS:
        await copy_rows(session, table, rows)
    elif rows:
        await session.execute(sa.insert(table), rows)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg engine with sane pool settings and a fast JSON codec."""
    return create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True,
                               json_serializer=json_text, json_deserializer=orjson.loads)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory that keeps objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with factory() as session, session.begin():
        yield session


@asynccontextmanager
async def snapshot(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A read-only session whose statements all see one snapshot (REPEATABLE READ): a view
    assembled from several tables never mixes before and after a concurrent commit."""
    async with factory() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ",
                                                    "postgresql_readonly": True})
        yield session


async def create_database_if_missing(url: str) -> None:
    """Create the service's database on the server if it does not exist (dev/test convenience)."""
    target = sa.engine.make_url(url)
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                sa.text("select 1 from pg_database where datname = :n"), {"n": target.database}
            )
            if not exists:
                await conn.execute(sa.text(f'create database "{target.database}"'))
    finally:
        await admin.dispose()


def alembic_config(migrations_dir: Path, url: str) -> Config:
    """Alembic config for one service's migrations folder."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(engine: AsyncEngine, migrations_dir: Path) -> None:
    """Run Alembic `upgrade head` on a connection of `engine` (serialised by an advisory lock)."""
    cfg = alembic_config(migrations_dir, engine.url.render_as_string(hide_password=False))

    def _run(sync_conn: sa.Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.execute(sa.text("select pg_advisory_xact_lock(727274)"))
        await conn.run_sync(_run)


def run_migrations_env(target_metadata: sa.MetaData) -> None:
    """Body of every service's migrations/env.py: online mode, sharing a given connection."""
    from alembic import context

    def do_run(connection: sa.Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        do_run(connection)
        return

    async def _online() -> None:
        engine = create_async_engine(context.config.get_main_option("sqlalchemy.url") or "")
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(_online())


def create_platform_tables(bind: sa.Connection) -> None:
    """Migration helper: create outbox, inbox and dead_letter as they are defined above."""
    meta = new_metadata()
    PlatformTables(meta)
    meta.create_all(bind)


PLATFORM_V2 = (
    "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS last_error text",
    "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz",
    "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz",
    "CREATE INDEX IF NOT EXISTS ix_outbox_failing ON outbox (key, id) "
    "WHERE sent_at IS NULL AND last_error IS NOT NULL",
    "DROP INDEX IF EXISTS ix_outbox_subject",  # nothing reads by subject; it cost every write
    "ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS raw_headers jsonb",
    "ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS replayed_by text",
    "ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS discarded_at timestamptz",
    "ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS discarded_by text",
    "ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS parked_behind bigint",
    "CREATE INDEX IF NOT EXISTS ix_dead_letter_open_key ON dead_letter (consumer, key) "
    "WHERE replayed_at IS NULL AND discarded_at IS NULL",
)


# Platform v3: the inbox keyed by (consumer, source, event id), and indexed for retention.
PLATFORM_V3 = (
    "ALTER TABLE inbox ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT ''",
    """DO $$
    DECLARE pk text; cols int;
    BEGIN
      SELECT c.conname, array_length(c.conkey, 1) INTO pk, cols FROM pg_constraint c
       WHERE c.conrelid = 'inbox'::regclass AND c.contype = 'p';
      IF cols = 2 THEN
        EXECUTE format('ALTER TABLE inbox DROP CONSTRAINT %I', pk);
        ALTER TABLE inbox ADD PRIMARY KEY (consumer, source, event_id);
      END IF;
    END $$""",
    "CREATE INDEX IF NOT EXISTS ix_inbox_received_at ON inbox (received_at)",
)


def upgrade_platform_tables_v3(bind: sa.Connection) -> None:
    """Migration helper (0003 of registry and supervision, 0004 of disbursement and
    eligibility): the inbox keyed by (consumer, source, id). Idempotent."""
    for statement in PLATFORM_V3:
        bind.execute(sa.text(statement))


# History is written once: a trigger refuses UPDATE, DELETE and TRUNCATE on history tables for
# every role (the service's own included, superusers too), so a compromised or buggy service
# cannot rewrite who did what. The outbox's events are immutable as well: only its delivery
# bookkeeping changes, and only sent rows may be deleted (retention).
APPEND_ONLY_FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION everydoor_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE OR REPLACE FUNCTION everydoor_outbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF OLD.sent_at IS NULL OR OLD.parked_at IS NOT NULL THEN
          RAISE EXCEPTION 'outbox row % is not delivered: DELETE refused', OLD.id
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
      END IF;
      IF (NEW.id, NEW.event_id, NEW.topic, NEW.key, NEW.type, NEW.subject, NEW.correlation_id,
          NEW.causation_id, NEW.traceparent, NEW.tracestate, NEW.headers, NEW.value,
          NEW.created_at) IS DISTINCT FROM
         (OLD.id, OLD.event_id, OLD.topic, OLD.key, OLD.type, OLD.subject, OLD.correlation_id,
          OLD.causation_id, OLD.traceparent, OLD.tracestate, OLD.headers, OLD.value,
          OLD.created_at) THEN
        RAISE EXCEPTION 'outbox row % is an event: only its delivery state may change', OLD.id
          USING ERRCODE = 'insufficient_privilege';
      END IF;
      RETURN NEW;
    END $$""",
)


def make_append_only(bind: sa.Connection, *tables: str) -> None:
    """Migration helper: history `tables` refuse UPDATE, DELETE and TRUNCATE; the outbox keeps
    its events immutable (delivery columns aside) and deletable only once sent. Idempotent."""
    for statement in APPEND_ONLY_FUNCTIONS:
        bind.execute(sa.text(statement))
    for table in tables:
        bind.execute(sa.text(f"DROP TRIGGER IF EXISTS append_only ON {table}"))
        bind.execute(sa.text(f"CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {table} "
                             "FOR EACH ROW EXECUTE FUNCTION everydoor_append_only()"))
        bind.execute(sa.text(f"DROP TRIGGER IF EXISTS append_only_truncate ON {table}"))
        bind.execute(sa.text(f"CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {table} "
                             "FOR EACH STATEMENT EXECUTE FUNCTION everydoor_append_only()"))
    bind.execute(sa.text("DROP TRIGGER IF EXISTS outbox_guard ON outbox"))
    bind.execute(sa.text("CREATE TRIGGER outbox_guard BEFORE UPDATE OR DELETE ON outbox "
                         "FOR EACH ROW EXECUTE FUNCTION everydoor_outbox_guard()"))


def drop_append_only(bind: sa.Connection, *tables: str) -> None:
    """Migration helper: undo `make_append_only`."""
    for table in tables:
        bind.execute(sa.text(f"DROP TRIGGER IF EXISTS append_only ON {table}"))
        bind.execute(sa.text(f"DROP TRIGGER IF EXISTS append_only_truncate ON {table}"))
    bind.execute(sa.text("DROP TRIGGER IF EXISTS outbox_guard ON outbox"))


def create_operator_action_table(bind: sa.Connection) -> None:
    """Migration helper (platform v4): the operator audit log. Idempotent: a database created by
    0001 with today's definitions has it."""
    meta = new_metadata()
    tables = PlatformTables(meta)
    tables.operator_action.create(bind, checkfirst=True)


def upgrade_platform_tables(bind: sa.Connection) -> None:
    """Migration helper (0002 of every service): parked outbox rows, infallible dead letters and
    per-key parking. Idempotent: a database created by 0001 with today's definitions has them."""
    for statement in PLATFORM_V2:
        bind.execute(sa.text(statement))


def drop_platform_tables(bind: sa.Connection) -> None:
    """Migration helper: drop the platform tables."""
    meta = new_metadata()
    PlatformTables(meta)
    meta.drop_all(bind)
