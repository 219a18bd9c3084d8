"""Transactional outbox: events are rows written in the same transaction as the state change,
published afterwards by one relay per service (claim in id order, mark sent, keep the row)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import PlatformTables, write_rows
from shared.envelope import Envelope
from shared.telemetry import Metrics, context_from, current_trace_headers, trace_id_of

log = logging.getLogger("everydoor.outbox")
tracer = trace.get_tracer("everydoor.outbox")


CORRELATION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

_BUFFER = "everydoor.outbox.buffer"
_WRITTEN = "everydoor.outbox.written"


@contextlib.contextmanager
def buffering(session: AsyncSession) -> Iterator[None]:
    """Inside the block, `Outbox.add` collects rows on the session instead of inserting them;
    `Outbox.flush` writes them with one statement (a consumer batch: one insert, one NOTIFY)."""
    previous = session.info.get(_BUFFER)
    session.info[_BUFFER] = []
    try:
        yield
    finally:
        if previous is None:
            session.info.pop(_BUFFER, None)
        else:
            session.info[_BUFFER] = previous


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name (same in every replica)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


def _ids(values: Sequence[int]) -> Any:
    return sa.literal(list(values), ARRAY(sa.BigInteger))


def _texts(values: Sequence[str]) -> Any:
    return sa.literal(list(values), ARRAY(sa.Text))


async def requeue_sent(conn: Any, table: sa.Table, *where: Any) -> int:
    """Mark sent (not parked) outbox rows matching `where` unsent: the relay publishes them
    again in id order and consumers' inboxes drop the repeats. Returns the rows requeued."""
    result = await conn.execute(sa.update(table).where(
        table.c.sent_at.is_not(None), table.c.parked_at.is_(None), *where).values(sent_at=None))
    return int(result.rowcount or 0)


def channel(service: str) -> str:
    """NOTIFY channel that wakes a service's relay."""
    return f"outbox_{service}"


class Outbox:
    """Writes events into the current transaction; they are published only if it commits."""

    def __init__(self, tables: PlatformTables, *, service: str) -> None:
        self.table = tables.outbox
        self.service = service
        self.source = f"/services/{service}"

    def new(self, *, type: str, data: dict, subject: str | None = None,
            correlation_id: str | None = None, causation: Envelope | None = None) -> Envelope:
        """An envelope from this service, carrying the trace context of its cause (so a batch
        keeps every event in the trace of the request that started it), else the current one."""
        if causation is not None and causation.traceparent:
            trace_headers = {"traceparent": causation.traceparent}
            if causation.tracestate:
                trace_headers["tracestate"] = causation.tracestate
        else:
            trace_headers = current_trace_headers()
        if causation is not None:
            correlation_id = causation.correlation_id or causation.id
        elif correlation_id is None:
            correlation_id = CORRELATION_ID.get()
        return Envelope(
            type=type, source=self.source, data=data, subject=subject,
            correlation_id=correlation_id,
            causation_id=causation.id if causation is not None else None,
            traceparent=trace_headers.get("traceparent"),
            tracestate=trace_headers.get("tracestate"),
        )

    def rows(self, topic: str, events: Sequence[Envelope]) -> list[dict]:
        """Outbox rows for a batch insert."""
        return [
            {
                "event_id": e.id, "topic": topic, "key": e.subject, "type": e.type,
                "subject": e.subject, "correlation_id": e.correlation_id,
                "causation_id": e.causation_id, "traceparent": e.traceparent,
                "tracestate": e.tracestate,
                "headers": [[k, v] for k, v in e.header_pairs()], "value": e.value(),
            }
            for e in events
        ]

    async def add(self, session: AsyncSession, topic: str, *events: Envelope) -> None:
        """Insert events into the outbox inside `session`'s transaction, and wake the relay."""
        if events:
            await self._write(session, self.rows(topic, events))

    async def add_raw(self, session: AsyncSession, *, topic: str, event_id: str, type: str,
                      key: bytes | None, headers: list[tuple[str, bytes]], value: bytes | None) -> None:
        """Insert an arbitrary record (dead letters: the bytes may not be JSON)."""
        await self._write(session, [{
            "event_id": event_id, "topic": topic,
            "key": key.decode(errors="replace") if key else None, "type": type, "subject": None,
            "correlation_id": None, "causation_id": None, "traceparent": None,
            "tracestate": None,
            "headers": [[k, (v or b"").decode(errors="replace")] for k, v in headers],
            "value": value or b"",
        }])

    async def _write(self, session: AsyncSession, rows: list[dict]) -> None:
        buffer = session.info.get(_BUFFER)
        if buffer is not None:
            buffer.extend(rows)
            return
        await session.execute(sa.insert(self.table), rows)
        await self.notify(session)

    async def flush(self, session: AsyncSession) -> int:
        """Write the rows buffered on `session` with one insert; the NOTIFY waits for
        `notify_written`. Returns how many rows were written."""
        buffer = session.info.get(_BUFFER)
        if not buffer:
            return 0
        rows = list(buffer)
        buffer.clear()
        await write_rows(session, self.table, rows)
        session.info[_WRITTEN] = True
        return len(rows)

    async def notify_written(self, session: AsyncSession) -> None:
        """One NOTIFY for every row flushed in this transaction."""
        if session.info.pop(_WRITTEN, False):
            await self.notify(session)

    async def notify(self, session: AsyncSession) -> None:
        """A wake-up hint, delivered by PostgreSQL only when the transaction commits."""
        await session.execute(sa.select(sa.func.pg_notify(channel(self.service), "")))


_BLOCKED = sa.text(
    "SELECT id, key, parked_at IS NULL AND coalesce(next_attempt_at, now()) <= now() AS due "
    "FROM outbox WHERE sent_at IS NULL AND last_error IS NOT NULL ORDER BY id")


def _retriable(exc: BaseException) -> bool:
    """A broker outage or hiccup (every row would fail alike), not a row the broker refuses."""
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KafkaConnectionError)
    return isinstance(exc, (ConnectionError, TimeoutError))


class Relay:
    """Publishes unsent outbox rows in order of id; marks them sent; survives restarts.

    Replicas of a service share one outbox and one of them publishes at a time: each batch is
    claimed under a transaction-scoped advisory lock, so a second relay never publishes a key's
    later rows while the first still holds its earlier ones, and takes over at its next round
    when the first dies. A row the broker refuses (too large, a forbidden topic) is tried again
    with backoff and parked after `max_attempts`; only its key waits behind it.
    """

    def __init__(self, *, engine: AsyncEngine, tables: PlatformTables, producer: AIOKafkaProducer,
                 service: str, metrics: Metrics, batch_size: int = 500,
                 poll_interval: float = 0.5, max_attempts: int = 5,
                 backoff_max_s: float = 300.0) -> None:
        self.engine = engine
        self.table = tables.outbox
        self.producer = producer
        self.service = service
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.backoff_max_s = backoff_max_s
        self.lock_key = advisory_key(f"everydoor.relay.{service}")
        self.leader = False
        self.ready: asyncio.Event | None = None  # set once the producer is connected
        # Called by the active relay before each claim: notices a fresh broker and requeues
        # what it lost, so nothing newer is published ahead of it (see shared.broker).
        self.before_claim: Callable[[], Awaitable[bool]] | None = None
        self.last_round: float | None = None  # monotonic time of the loop's last round
        self.draining = False  # shutting down: publish what is pending, then say so
        self.drained = asyncio.Event()
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def run(self) -> None:
        """Relay loop: publish what is pending, then wait for NOTIFY or the poll interval."""
        if self.ready is not None:
            await self.ready.wait()
        await self._listen()
        failures = 0
        try:
            while True:
                # Cleared before the claim, not after: a NOTIFY that arrives while a batch is
                # being published wakes the next round at once instead of being lost until
                # the poll interval.
                self._wake.clear()
                self.last_round = time.monotonic()
                try:
                    published = await self.publish_pending()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures += 1
                    log.exception("relay %s failed; retrying", self.service)
                    published = 0
                    await asyncio.sleep(min(0.5 * 2 ** failures, 10.0))
                if published >= self.batch_size:
                    continue  # more waiting: no pause
                if self.draining and not published:
                    self.drained.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            self.leader = False
            self.metrics.relay_leader.set(0)
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    await self._listener.close()

    def drain(self) -> None:
        """Graceful shutdown: publish what is pending without pausing, then set `drained`."""
        self.draining = True
        self._wake.set()

    async def _listen(self) -> None:
        url = self.engine.url.set(drivername="postgresql")
        try:
            self._listener = await asyncpg.connect(url.render_as_string(hide_password=False))
            await self._listener.add_listener(channel(self.service), lambda *_: self._wake.set())
        except Exception:  # NOTIFY is only a hint: polling still works without it
            log.warning("relay %s: LISTEN unavailable, polling only", self.service, exc_info=True)
            self._listener = None

    async def publish_pending(self) -> int:
        """Claim one batch of unsent rows, publish them, mark them sent; return the count sent.
        0 when another replica is publishing."""
        t = self.table
        outage: BaseException | None = None
        async with self.engine.begin() as conn:
            if not await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(self.lock_key))):
                self._lead(False)
                return 0
            self._lead(True)
            if self.before_claim is not None and not await self.before_claim():
                return 0
            blocked_keys, heads, waiting = await self._blocked(conn)
            query = (
                sa.select(t.c.id, t.c.topic, t.c.key, t.c.headers, t.c.value, t.c.traceparent,
                          t.c.tracestate, t.c.attempts)
                .where(t.c.sent_at.is_(None)).order_by(t.c.id).limit(self.batch_size)
                .with_for_update()
            )
            if blocked_keys:
                query = query.where(sa.or_(
                    t.c.key.is_(None), t.c.key != sa.func.all(_texts(blocked_keys)),
                    t.c.id == sa.func.any(_ids(heads))))
            if waiting:
                query = query.where(t.c.id != sa.func.all(_ids(waiting)))
            rows = (await conn.execute(query)).all()
            if not rows:
                return 0
            sent, refused, outage = await self._send(rows)
            if sent:
                await conn.execute(
                    sa.update(t).where(t.c.id == sa.func.any(_ids([r.id for r in sent])))
                    .values(sent_at=sa.func.now(), attempts=t.c.attempts + 1))
            for row, exc in refused:
                await self._refused(conn, row, exc)
        for row in sent:
            self.metrics.outbox_published.labels(row.topic).inc()
        if outage is not None:
            raise outage  # the broker is away: the loop backs off; the rest stay unsent
        return len(sent)

    async def _blocked(self, conn: Any) -> tuple[list[str], list[int], list[int]]:
        """Keys with a refused row (only their head may go, when due) and keyless refused rows
        not yet due. A partial index keeps this free while nothing fails."""
        keys: list[str] = []
        heads: list[int] = []
        waiting: list[int] = []
        seen: set[str] = set()
        parked = 0
        for row in (await conn.execute(_BLOCKED)).all():
            if row.key is None:
                if not row.due:
                    waiting.append(row.id)
            elif row.key not in seen:
                seen.add(row.key)
                keys.append(row.key)
                if row.due:
                    heads.append(row.id)
            if not row.due:
                parked += 1
        self.metrics.outbox_parked.set(parked)
        return keys, heads, waiting

    async def _send(self, rows: Sequence[Any]) -> tuple[list[Any], list[tuple[Any, BaseException]],
                                                         BaseException | None]:
        """Publish rows in order; return the acknowledged ones, the refused ones with their
        error, and the outage error if the broker was unreachable. A key's rows after one of
        its rows failed are held back (not sent) so the key keeps its order."""
        with self._span(rows):
            pending: list[tuple[Any, asyncio.Future]] = []
            refused: list[tuple[Any, BaseException]] = []
            failed_keys: set[str | None] = set()
            outage: BaseException | None = None
            for row in rows:
                if row.key is not None and row.key in failed_keys:
                    continue
                try:
                    # Each record carries the trace context of the transaction that wrote it,
                    # so the consumer's span joins the writer's trace.
                    future = await self.producer.send(
                        row.topic, value=bytes(row.value),
                        key=row.key.encode() if row.key else None,
                        headers=[(k, v.encode()) for k, v in row.headers],
                    )
                except Exception as exc:  # noqa: BLE001 - refused at once (e.g. too large)
                    if _retriable(exc):
                        outage = exc
                        break
                    refused.append((row, exc))
                    failed_keys.add(row.key)
                    continue
                pending.append((row, future))
            results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        sent = []
        acked: list[tuple[Any, Any]] = []
        for (row, _), result in zip(pending, results, strict=True):
            if not isinstance(result, BaseException):
                acked.append((row, result))
            elif _retriable(result):
                outage = outage or result
            else:
                refused.append((row, result))
        if acked:
            sent = await self._readable(acked)
        return sent, refused, outage

    async def _readable(self, acked: list[tuple[Any, Any]]) -> list[Any]:
        """The acknowledged rows that landed in a partition the broker has. A broker that
        restarted empty acknowledges records for partitions it no longer has (the embedded
        Tansu does) and nobody can read them: those rows stay unsent and go again once the
        producer's metadata is refreshed."""
        cluster = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 15)
        lost = [row for row, md in acked
                if md.partition not in (cluster.partitions_for_topic(md.topic) or ())]
        # A key with a lost row goes again whole (repeats are dropped by inboxes), so its
        # order holds even if the producer's metadata changed in the middle of the round.
        lost_keys = {row.key for row in lost if row.key is not None}
        lost_ids = {row.id for row in lost}
        readable = [row for row, _ in acked
                    if row.id not in lost_ids and row.key not in lost_keys]
        if len(readable) < len(acked):
            log.warning("relay %s: %d rows acknowledged in partitions the broker does not have "
                        "(it lost its topics); they go again", self.service,
                        len(acked) - len(readable))
            await asyncio.wait_for(self.producer.client.force_metadata_update(), 15)
        return readable

    async def _refused(self, conn: Any, row: Any, exc: BaseException) -> None:
        """Count a refused row's attempt: back off, and park it after `max_attempts`."""
        t = self.table
        attempts = row.attempts + 1
        parked = attempts >= self.max_attempts
        delay = min(2.0 ** attempts, self.backoff_max_s)
        await conn.execute(sa.update(t).where(t.c.id == row.id).values(
            attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, delay),
            parked_at=sa.func.now() if parked else None))
        self.metrics.outbox_failed.labels(row.topic).inc()
        log.warning("relay %s: row %d (%s, key %s) refused by the broker (attempt %d%s): %r",
                    self.service, row.id, row.topic, row.key, attempts,
                    ", parked: its key waits" if parked else "", exc)

    def _lead(self, leader: bool) -> None:
        if leader != self.leader:
            log.info("relay %s: %s", self.service,
                     "publishing (active replica)" if leader else "standing by (another replica "
                     "publishes)")
        self.leader = leader
        self.metrics.relay_leader.set(1 if leader else 0)

    def _span(self, rows: Sequence[Any]) -> Any:
        """One publish span per relay batch (messaging conventions): a child of the writers'
        context when every row comes from one trace, and a link to each row's context."""
        links: list[Link] = []
        parent = None
        seen: set[str] = set()
        for row in rows:
            if not row.traceparent or row.traceparent in seen or len(links) >= 128:
                continue  # one link per distinct writer context, up to the SDK's link limit
            seen.add(row.traceparent)
            ctx = context_from(row.traceparent, row.tracestate)
            if ctx is None:
                continue
            span_ctx = trace.get_current_span(ctx).get_span_context()
            if span_ctx.is_valid:
                links.append(Link(span_ctx))
                parent = ctx
        traces = {trace_id_of(row.traceparent) for row in rows if row.traceparent}
        topics = sorted({row.topic for row in rows})
        return tracer.start_as_current_span(
            f"{topics[0]} publish" if len(topics) == 1 else "publish",
            context=parent if len(traces) == 1 else None, kind=SpanKind.PRODUCER, links=links,
            attributes={"messaging.system": "kafka", "messaging.operation.type": "send",
                        "messaging.destination.name": ",".join(topics),
                        "messaging.batch.message_count": len(rows)})

    async def backlog(self) -> int:
        """Rows not yet published."""
        async with self.engine.connect() as conn:
            return int(await conn.scalar(
                sa.select(sa.func.count()).select_from(self.table).where(self.table.c.sent_at.is_(None))
            ) or 0)
