"""Set-based, idempotent consumer: getmany → one transaction per batch, one inbox insert for the
whole batch, handlers that take every event of their type at once, one outbox insert and one
NOTIFY per batch, offsets committed after the DB commit. A batch that fails is run again with a
savepoint per handler run, bisected down to the failing event, so one bad event is
dead-lettered and the rest applied."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.broker import client_security
from shared.db import PlatformTables
from shared.envelope import Envelope, EnvelopeError, producer_of
from shared.outbox import Outbox, buffering
from shared.settings import PlatformSettings
from shared.telemetry import Metrics, context_from

log = logging.getLogger("everydoor.consumer")
tracer = trace.get_tracer("everydoor.consumer")

DLQ_SUFFIX = ".dlq"
_MAX_LINKS = 128  # the OpenTelemetry SDK's default span link limit


@dataclass
class EventContext:
    """What a per-event handler gets: the open session, the event, and a way to emit caused
    events (buffered by the consumer and written with the batch's one outbox insert)."""

    session: AsyncSession
    event: Envelope
    outbox: Outbox
    topic: str

    async def emit(self, topic: str, *, type: str, data: dict, subject: str | None = None) -> Envelope:
        """Write an event caused by the one being handled into the outbox (same transaction)."""
        env = self.outbox.new(type=type, data=data, subject=subject or self.event.subject,
                              causation=self.event)
        await self.outbox.add(self.session, topic, env)
        return env


@dataclass(frozen=True)
class Item:
    """One claimed event of a batch: its envelope, validated payload, and where it came from."""

    event: Envelope
    payload: Any
    topic: str


@dataclass
class BatchContext:
    """What a set-based handler gets: the open session and the batch's events of its types, in
    partition order (one household's events keep their order)."""

    session: AsyncSession
    items: list[Item]
    outbox: Outbox

    def context(self, item: Item) -> EventContext:
        """A per-event context for one item (emits still go into the batch's outbox insert)."""
        return EventContext(session=self.session, event=item.event, outbox=self.outbox,
                            topic=item.topic)


HandlerFn = Callable[[EventContext, Any], Awaitable[None]]
BatchFn = Callable[[BatchContext], Awaitable[None]]


@dataclass(frozen=True)
class Handler:
    """Handles event types; `model` validates the payload (None: the raw dict).

    `fn` takes one event; `batch` (preferred) takes every event of the batch at once and does a
    constant number of statements for them. Raise DeadLetter for an event that can never succeed.
    """

    fn: HandlerFn | None = None
    model: type[BaseModel] | None = None
    upcast: Callable[[dict], dict] | None = None
    batch: BatchFn | None = None

    @property
    def key(self) -> object:
        """Handlers of several types that share one function take their events together."""
        return self.batch or self.fn

    async def __call__(self, ctx: BatchContext) -> None:
        if self.batch is not None:
            await self.batch(ctx)
            return
        assert self.fn is not None
        for item in ctx.items:
            await self.fn(ctx.context(item), item.payload)


@dataclass
class ConsumerSpec:
    """One consumer group: its topics and a handler per `ce_type` (`*` catches every type)."""

    name: str
    topics: list[str]
    handlers: dict[str, Handler] = field(default_factory=dict)
    # Checks each record's authenticity before anything else: None if authentic, else why not.
    # A record that fails is dead-lettered by its position (its claimed id is not trusted: it
    # takes no id in the inbox and holds no later event of its key) and never handled.
    authenticate: Callable[[ConsumerRecord, Envelope], str | None] | None = None
    # This group's longest fetch wait (None: the service's `consumer_fetch_max_wait_ms`): a
    # group on a latency-critical path waits less, at some idle cost on the embedded broker.
    fetch_max_wait_ms: int | None = None


TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def transient(exc: BaseException) -> bool:
    """A database error that says "try the transaction again", not "this event is bad"."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES
    return isinstance(exc, ConnectionError)


class DeadLetter(Exception):
    """Raised by a handler for an event that can never succeed (no retry)."""


# An event is identified by (source, id) (CloudEvents): a partner's ids cannot collide with ours.
_CLAIM = sa.text(
    "INSERT INTO inbox (consumer, source, event_id, topic) "
    "SELECT :consumer, s, e, t FROM unnest(CAST(:sources AS text[]), CAST(:ids AS text[]), "
    "CAST(:topics AS text[])) AS u(s, e, t) ON CONFLICT DO NOTHING RETURNING source, event_id")
_UNCLAIM = sa.text(
    "DELETE FROM inbox i USING unnest(CAST(:sources AS text[]), CAST(:ids AS text[])) AS u(s, e) "
    "WHERE i.consumer = :consumer AND i.source = u.s AND i.event_id = u.e")


def source_of(headers: Any) -> str:
    """The `ce_source` of a record's headers (bytes or text values), "" if it has none."""
    for name, value in headers or ():
        if name == "ce_source":
            if isinstance(value, bytes | bytearray):
                value = bytes(value).decode(errors="replace")
            return _text(str(value))
    return ""


@dataclass
class _Parsed:
    record: ConsumerRecord
    handler: Handler
    item: Item


class Consumer:
    """Runs one ConsumerSpec against Kafka and the service's database."""

    def __init__(self, *, spec: ConsumerSpec, service: str, bootstrap: str,
                 sessions: async_sessionmaker[AsyncSession], tables: PlatformTables,
                 outbox: Outbox, metrics: Metrics, batch_size: int = 500, max_attempts: int = 3,
                 session_timeout_ms: int = 6000, heartbeat_interval_ms: int = 500,
                 group_id: str | None = None, fetch_max_wait_ms: int = 100,
                 start_timeout_s: float = 30.0, platform: PlatformSettings | None = None) -> None:
        self.spec = spec
        # Kafka security (shared.broker.client_security); None: the environment's settings.
        self.platform = platform or PlatformSettings()
        self.name = f"{service}.{spec.name}"
        self.group_id = group_id or self.name
        self.bootstrap = bootstrap
        self.sessions = sessions
        self.tables = tables
        self.outbox = outbox
        self.metrics = metrics
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.start_timeout_s = start_timeout_s
        self.kafka: AIOKafkaConsumer | None = None
        self.assigned = asyncio.Event()
        # Held while a batch is handled and committed; a rebalance waits for it, so partitions
        # change hands between batches, not in the middle of one.
        self.batch_lock = asyncio.Lock()
        self.last_poll: float | None = None  # monotonic time the loop last came round
        self.rebalances = 0
        # Next offset this consumer has read up to, per partition: a log shorter than this
        # after a rebalance means the broker lost it (restarted empty) and it is read from the
        # start again (the inbox drops the repeats).
        self.read_up_to: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        """Connect and subscribe (bounded: a group that never syncs raises, and the supervisor
        starts the consumer again)."""
        self.kafka = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_poll_records=self.batch_size,
            # A fetch answers as soon as records exist on a real Kafka; a short wait bounds the
            # delay on brokers that hold an idle fetch (the embedded Tansu) at little idle cost.
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            # A broker that restarted empty may recreate a topic with another partition count
            # (auto-created by a client's metadata request): notice within seconds, not 5 min.
            metadata_max_age_ms=5000,
            **client_security(self.platform),
        )
        self.kafka.subscribe(self.spec.topics, listener=_Rebalance(self))
        try:
            await asyncio.wait_for(self.kafka.start(), self.start_timeout_s)
        except BaseException:
            await self.stop()
            raise

    async def drain(self) -> None:
        """Graceful shutdown: wait for the batch in flight to commit, and start no other (the
        lock stays held; the loop is cancelled next)."""
        await self.batch_lock.acquire()

    async def stop(self) -> None:
        """Leave the group (a later `run` connects afresh)."""
        kafka, self.kafka = self.kafka, None
        self.assigned.clear()
        if kafka is not None:
            await kafka.stop()

    async def run(self) -> None:
        """Poll, handle, commit — forever. A failed commit (a rebalance took the partitions)
        ends the batch, never the loop: the new owner re-reads it and the inbox absorbs it."""
        if self.kafka is None:
            await self.start()
        assert self.kafka is not None
        kafka = self.kafka
        try:
            while True:
                self.last_poll = time.monotonic()
                generation = self.rebalances
                batch = await kafka.getmany(timeout_ms=500, max_records=self.batch_size)
                if kafka.assignment():
                    self.assigned.set()
                if not batch:
                    continue
                async with self.batch_lock:
                    if not await self._handle_and_commit(kafka, batch, generation):
                        # Jitter: two transactions that deadlocked should not collide again.
                        await asyncio.sleep(random.uniform(0.2, 1.0))
        finally:
            await self.stop()

    async def _handle_and_commit(self, kafka: AIOKafkaConsumer,
                                 batch: dict[TopicPartition, list[ConsumerRecord]],
                                 generation: int | None = None) -> bool:
        """Handle a batch, then commit its offsets for the partitions still ours; False if the
        batch failed and was rewound to be read again."""
        try:
            await self.handle_batch(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: batch failed, will re-read it", self.name)
            self._rewind(batch)
            return False
        assigned = kafka.assignment()
        if generation is not None and generation != self.rebalances:
            # The partitions changed hands while this batch was read or applied: its offsets
            # belong to the old assignment (after a broker that restarted empty, to a log that
            # no longer exists). Committing them could skip records; read again from what is
            # committed instead (the inbox drops the repeats).
            await self._reposition(kafka, [tp for tp in batch if tp in assigned])
            return True
        offsets = {tp: recs[-1].offset + 1 for tp, recs in batch.items() if tp in assigned}
        if not offsets:
            return True
        self.read_up_to.update(offsets)
        try:
            await kafka.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # A rebalance took the partitions: the batch is applied, the new owner reads it again
            # and the inbox skips it. The loop goes on.
            log.warning("%s: offset commit failed (%r); the batch is applied and will be "
                        "skipped as duplicates when read again", self.name, exc)
        return True

    async def _reposition(self, kafka: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Continue these partitions from their committed offsets (the start if none)."""
        for tp in partitions:
            try:
                committed = await kafka.committed(tp)
                if committed is None:
                    await kafka.seek_to_beginning(tp)
                else:
                    kafka.seek(tp, committed)
            except (IllegalStateError, KafkaError) as exc:  # revoked meanwhile: not ours
                log.warning("%s: could not reposition %s (%r)", self.name, tp, exc)

    def _rewind(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        if self.kafka is None:
            return
        assigned = self.kafka.assignment()
        for tp, records in batch.items():
            if tp in assigned:
                try:
                    self.kafka.seek(tp, records[0].offset)
                except (IllegalStateError, KafkaError) as exc:  # revoked meanwhile: not ours
                    log.warning("%s: could not rewind %s (%r)", self.name, tp, exc)

    async def handle_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """One DB transaction and one process span for the whole batch, with no savepoint; if a
        handler fails for a reason other than a transient one, the batch is rolled back and run
        again with a savepoint per handler run, bisected down to the failing event."""
        partitions = list(batch.values())
        try:
            async with self.sessions() as session, session.begin():
                tally = await self.process(session, partitions)
        except Exception as exc:
            if transient(exc):
                raise  # the whole batch is read again: not the events' fault
            log.warning("%s: a batch of %d failed (%r); isolating the failing event", self.name,
                        sum(len(p) for p in partitions), exc)
            try:
                async with self.sessions() as session, session.begin():
                    tally = await self.process(session, partitions, isolate=True)
            except Exception as again:
                if transient(again):
                    raise
                tally = await self._record_by_record(partitions, again)
        self._record(tally)

    async def _record_by_record(self, partitions: Sequence[Sequence[ConsumerRecord]],
                                cause: BaseException) -> Counter[tuple[str, str]]:
        """Last resort when even the isolated pass fails outside a handler (a record the
        platform itself cannot store): each record alone in order, and one that still fails is
        dead-lettered by its position, so one record never stalls its partitions."""
        log.error("%s: isolated pass failed (%r); going record by record", self.name, cause)
        tally: Counter[tuple[str, str]] = Counter()
        for records in partitions:
            for record in records:
                try:
                    async with self.sessions() as session, session.begin():
                        tally += await self.process(session, [[record]], isolate=True)
                except Exception as exc:
                    if transient(exc):
                        raise
                    async with self.sessions() as session, session.begin():
                        await self.dead_letter(session, record, event_id=None, attempts=1,
                                               reason=f"unprocessable record: {exc!r}")
                    tally[record.topic, "dead_lettered"] += 1
        return tally

    async def process(self, session: AsyncSession, partitions: Sequence[Sequence[ConsumerRecord]],
                      *, isolate: bool = False) -> Counter[tuple[str, str]]:
        """Handle records (grouped by partition, in offset order) inside `session`'s transaction;
        return how many of each topic had each outcome. `isolate`: a savepoint per handler run,
        so a failing event is dead-lettered instead of failing the transaction."""
        tally: Counter[tuple[str, str]] = Counter()
        parked = _Parked()
        parsed: list[list[_Parsed]] = []
        invalid: list[tuple[ConsumerRecord, str | None, str]] = []  # record, event id, reason
        forged: list[tuple[ConsumerRecord, str]] = []  # record, why it is not authentic
        for records in partitions:
            mine: list[_Parsed] = []
            for record in records:
                if self._parse(record, mine, invalid, forged) == "ignored":
                    tally[record.topic, "ignored"] += 1
            parsed.append(mine)
        await self._load_open_dead_letters(session, [r for rs in partitions for r in rs], parked)
        for record, reason in forged:  # nothing parks behind it: it holds no authentic event
            await self.dead_letter(session, record, event_id=None, reason=reason, attempts=1,
                                   holds_key=False)
            tally[record.topic, "dead_lettered"] += 1
        for record, event_id, reason in invalid:
            if event_id is None:  # unparseable: keyed by its position, it has no id
                parked.add(record, await self.dead_letter(session, record, event_id=None,
                                                          reason=reason, attempts=1))
                tally[record.topic, "dead_lettered"] += 1
        invalid = [i for i in invalid if i[1] is not None]
        fresh = await self._claim_many(
            session, [(source_of(p.record.headers), p.item.event.id, p.record.topic)
                      for ps in parsed for p in ps]
            + [(source_of(record.headers), event_id or "", record.topic)
               for record, event_id, _ in invalid])
        for record, event_id, reason in invalid:
            outcome = "duplicate"
            if (source_of(record.headers), event_id) in fresh:
                fresh.discard((source_of(record.headers), event_id or ""))
                parked.add(record, await self.dead_letter(session, record, event_id=event_id,
                                                          reason=reason, attempts=1))
                outcome = "dead_lettered"
            tally[record.topic, outcome] += 1
        todo: list[list[_Parsed]] = []
        for ps in parsed:
            keep = []
            for p in ps:
                claim = (source_of(p.record.headers), p.item.event.id)
                if claim in fresh:
                    fresh.discard(claim)  # a second copy in the same batch: duplicate
                    keep.append(p)
                else:
                    tally[p.record.topic, "duplicate"] += 1
            todo.append(keep)
        items = [p for ps in todo for p in ps]
        if items:
            with self._span(items):
                for handler, stage in _stages(todo):
                    stage = await self._park(session, stage, parked, tally)
                    if not stage:
                        continue
                    if isolate:
                        await self._isolated(session, handler, stage, tally, parked)
                    else:
                        await self._apply(session, handler, stage)
                        for p in stage:
                            tally[p.record.topic, "processed"] += 1
        await self.outbox.notify_written(session)
        return tally

    def _parse(self, record: ConsumerRecord, into: list[_Parsed],
               invalid: list[tuple[ConsumerRecord, str | None, str]],
               forged: list[tuple[ConsumerRecord, str]]) -> str | None:
        """Parse, authenticate and validate one record into `into` (or `invalid` or `forged`,
        with the reason); return "ignored" for a type nobody here handles."""
        try:
            event = Envelope.from_kafka(list(record.headers or ()), record.value)
        except EnvelopeError as exc:
            invalid.append((record, None, f"unparseable: {exc}"))
            return None
        if self.spec.authenticate is not None:
            refused = self.spec.authenticate(record, event)
            if refused is not None:
                forged.append((record, refused))
                return None
        handler = self.spec.handlers.get(event.type) or self.spec.handlers.get("*")
        if handler is None:
            return "ignored"
        producer = producer_of(record.topic)
        if producer is not None and event.source != producer:  # written by someone else
            invalid.append((record, event.id, f"forged source: {event.source!r} may not write "
                            f"{record.topic} (only {producer})"))
            return None
        try:
            data = handler.upcast(event.data) if handler.upcast else event.data
            payload: Any = data
            if handler.model is not None:
                payload = handler.model.model_validate(data)
        except ValidationError as exc:
            reason = "schema-invalid: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            invalid.append((record, event.id, reason))
            return None
        into.append(_Parsed(record=record, handler=handler,
                            item=Item(event=event, payload=payload, topic=record.topic)))
        return None

    def _span(self, items: list[_Parsed]) -> Any:
        """One process span for the batch (messaging conventions): a child of the producer
        context when there is one event, and a link to every event's context."""
        links: list[Link] = []
        parent = None
        seen: set[str] = set()
        for p in items:
            traceparent = p.item.event.traceparent
            # One link per distinct producer context (an import's events share one), up to the
            # SDK's link limit: building links that would be dropped costs CPU on every batch.
            if not traceparent or traceparent in seen or len(links) >= _MAX_LINKS:
                continue
            seen.add(traceparent)
            ctx = context_from(traceparent, p.item.event.tracestate)
            if ctx is None:
                continue
            span_ctx = trace.get_current_span(ctx).get_span_context()
            if span_ctx.is_valid:
                links.append(Link(span_ctx, {"messaging.message.id": p.item.event.id}))
            if len(items) == 1:
                parent = ctx
        topics = sorted({p.record.topic for p in items})
        attributes: dict[str, Any] = {
            "messaging.system": "kafka", "messaging.operation.type": "process",
            "messaging.destination.name": topics[0] if len(topics) == 1 else ",".join(topics),
            "messaging.consumer.group.name": self.group_id,
            "messaging.batch.message_count": len(items)}
        if len(items) == 1:
            attributes["messaging.message.id"] = items[0].item.event.id
            attributes["cloudevents.event_type"] = items[0].item.event.type
        name = f"{topics[0]} process" if len(topics) == 1 else "process"
        return tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER,
                                            links=links, attributes=attributes)

    async def _apply(self, session: AsyncSession, handler: Handler,
                     stage: list[_Parsed]) -> None:
        """Run one handler on its events at once; their caused events go in one outbox insert."""
        with buffering(session):
            await handler(BatchContext(session=session, outbox=self.outbox,
                                       items=[p.item for p in stage]))
            await self.outbox.flush(session)

    async def _load_open_dead_letters(self, session: AsyncSession,
                                      records: list[ConsumerRecord], parked: _Parked) -> None:
        """Keys of this batch that already wait behind a dead letter (one indexed query)."""
        keys = list({r.key for r in records if r.key})
        if not keys:
            return
        dl = self.tables.dead_letter
        rows = await session.execute(
            sa.select(dl.c.key, sa.func.min(dl.c.id))
            .where(dl.c.consumer == self.name, dl.c.replayed_at.is_(None),
                   dl.c.discarded_at.is_(None), dl.c.key == sa.func.any(
                       sa.literal(keys, ARRAY(sa.LargeBinary))))
            .group_by(dl.c.key))
        for key, dead_letter_id in rows:
            parked.behind[bytes(key)] = (dead_letter_id, -1)

    async def _park(self, session: AsyncSession, stage: list[_Parsed], parked: _Parked,
                    tally: Counter[tuple[str, str]]) -> list[_Parsed]:
        """Set aside the events whose key waits behind a dead letter (recorded as parked dead
        letters, replayed in offset order with it); return the others."""
        if not parked.behind:
            return stage
        keep = []
        for p in stage:
            behind = parked.waiting(p.record)
            if behind is None:
                keep.append(p)
                continue
            await self.dead_letter(session, p.record, event_id=p.item.event.id, attempts=0,
                                   reason=f"parked behind dead letter {behind} (same key)",
                                   parked_behind=behind)
            tally[p.record.topic, "parked"] += 1
        return keep

    async def _isolated(self, session: AsyncSession, handler: Handler, stage: list[_Parsed],
                        tally: Counter[tuple[str, str]], parked: _Parked) -> None:
        """Apply a run in a savepoint; if it fails, bisect (halves in order, so a key's events
        stay in order) until the failing event is alone, then retry it and dead-letter it;
        the key's later events park behind it."""
        stage = await self._park(session, stage, parked, tally)
        if not stage:
            return
        try:
            async with session.begin_nested():
                await self._apply(session, handler, stage)
        except Exception as exc:
            if transient(exc):
                raise
            if len(stage) == 1:
                tally[stage[0].record.topic,
                      await self._one(session, handler, stage[0], parked)] += 1
                return
            mid = len(stage) // 2
            await self._isolated(session, handler, stage[:mid], tally, parked)
            await self._isolated(session, handler, stage[mid:], tally, parked)
            return
        for p in stage:
            tally[p.record.topic, "processed"] += 1

    async def _one(self, session: AsyncSession, handler: Handler, p: _Parsed,
                   parked: _Parked) -> str:
        """One event in its own savepoint: retried, then dead-lettered with its reason."""
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with session.begin_nested():
                    await self._apply(session, handler, [p])
                return "processed"
            except DeadLetter as exc:
                parked.add(p.record, await self.dead_letter(
                    session, p.record, event_id=p.item.event.id, reason=str(exc),
                    attempts=attempt))
                return "dead_lettered"
            except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered with reason
                if transient(exc):
                    raise
                span = trace.get_current_span()
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                last_error = exc
                log.warning("%s: %s attempt %d failed: %r", self.name, p.item.event.id, attempt,
                            exc)
        parked.add(p.record, await self.dead_letter(
            session, p.record, event_id=p.item.event.id,
            reason=f"handler failed: {last_error!r}", attempts=self.max_attempts))
        return "dead_lettered"

    def _record(self, tally: Counter[tuple[str, str]]) -> None:
        """Count a committed batch's outcomes in the metrics."""
        for (topic, outcome), n in tally.items():
            self.metrics.events_processed.labels(self.name, topic, outcome).inc(n)

    async def _claim_many(self, session: AsyncSession,
                          claims: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
        """Insert every (source, id, topic) into the inbox with one statement; return the new
        (source, id) pairs."""
        if not claims:
            return set()
        inserted = await session.execute(_CLAIM, {
            "consumer": self.name, "sources": [c[0] for c in claims],
            "ids": [c[1] for c in claims], "topics": [c[2] for c in claims]})
        return {(r[0], r[1]) for r in inserted}

    async def _mark_dead(self, session: AsyncSession, source: str, event_id: str, topic: str,
                         outcome: str) -> bool:
        """Record the event's outcome in the inbox; False if it was already recorded so."""
        inbox = self.tables.inbox
        stmt = pg_insert(inbox).values(consumer=self.name, source=source, event_id=event_id,
                                       topic=topic, outcome=outcome)
        done = await session.execute(stmt.on_conflict_do_update(
            index_elements=[inbox.c.consumer, inbox.c.source, inbox.c.event_id],
            set_={"outcome": outcome},
            where=inbox.c.outcome != outcome).returning(inbox.c.event_id))
        return done.first() is not None

    async def dead_letter(self, session: AsyncSession, record: ConsumerRecord, *,
                          event_id: str | None, reason: str, attempts: int,
                          parked_behind: int | None = None, holds_key: bool = True) -> int | None:
        """Record the dead letter (and publish it to `<topic>.dlq` through the outbox); return
        its id. Cannot fail for the record's sake: in its own savepoint, and if the full record
        cannot be stored (bytes PostgreSQL refuses), a minimal one keyed by position is.
        `holds_key` false: stored without its Kafka key, so later events of the key never wait
        behind it (an inauthentic record)."""
        if not holds_key:
            record = replace(record, key=None)
        try:
            async with session.begin_nested():
                return await self._dead_letter(session, record, event_id=event_id,
                                               reason=reason, attempts=attempts,
                                               parked_behind=parked_behind, full=True)
        except Exception as exc:
            if transient(exc):
                raise
            failure = repr(exc)[:500]
            log.error("%s: could not store the dead letter of %s@%d in full (%s); storing a "
                      "minimal one", self.name, record.topic, record.offset, failure)
        async with session.begin_nested():
            return await self._dead_letter(session, record, event_id=None,
                                           reason=f"{reason} (stored without headers: {failure})",
                                           attempts=attempts, parked_behind=parked_behind,
                                           full=False)

    async def _dead_letter(self, session: AsyncSession, record: ConsumerRecord, *,
                           event_id: str | None, reason: str, attempts: int,
                           parked_behind: int | None, full: bool) -> int | None:
        key = event_id or f"{record.topic}:{record.partition}:{record.offset}"
        outcome = "parked" if parked_behind is not None else "dead_lettered"
        source = source_of(record.headers) if event_id else ""
        if not await self._mark_dead(session, source, key, record.topic, outcome):
            return None  # already recorded on an earlier delivery
        headers = list(record.headers or ()) if full else []
        reason = _text(reason)[:4000]
        dead_letter_id = await session.scalar(sa.insert(self.tables.dead_letter).values(
            consumer=self.name, event_id=key, topic=record.topic, partition=record.partition,
            offset=record.offset, key=record.key, value=record.value, reason=reason,
            attempts=attempts, parked_behind=parked_behind,
            headers=[[_text(k), _text((v or b"").decode(errors="replace"))] for k, v in headers],
            raw_headers=[[_text(k), base64.b64encode(v or b"").decode()] for k, v in headers],
        ).returning(self.tables.dead_letter.c.id))
        if parked_behind is not None:
            return dead_letter_id  # not bad itself: it waits, it is not announced as poison
        error_headers = [
            ("dlq_reason", reason.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_consumer", self.name.encode()),
        ]
        await self.outbox.add_raw(
            session, topic=record.topic + DLQ_SUFFIX, event_id=str(uuid.uuid4()),
            type="everydoor.dead_letter", key=record.key,
            headers=[(_text(k), _text((v or b"").decode(errors="replace")).encode())
                     for k, v in headers] + error_headers,
            value=record.value,
        )
        self.metrics.dead_letters.labels(self.name, record.topic).inc()
        log.warning("%s: dead-lettered %s from %s@%d: %s", self.name, key, record.topic,
                    record.offset, reason)
        return dead_letter_id

    async def replay(self, dead_letter_id: int, *, discard: bool = False,
                     actor: str | None = None) -> dict[str, Any]:
        """Re-run a dead letter through this consumer's handlers (or, `discard`, give it up),
        then the events of its key parked behind it, in offset order, in one transaction.
        Returns the head's outcome and how the parked ones went."""
        dl = self.tables.dead_letter
        async with self.sessions() as session, session.begin():
            row = (await session.execute(
                sa.select(dl).where(dl.c.id == dead_letter_id, dl.c.consumer == self.name)
                .with_for_update()
            )).first()
            if row is None:
                raise LookupError(dead_letter_id)
            if row.replayed_at is not None or row.discarded_at is not None:
                raise ValueError(f"dead letter {dead_letter_id} was already replayed or discarded")
            if row.parked_behind is not None:
                raise ValueError(f"dead letter {dead_letter_id} is parked behind an earlier dead "
                                 "letter of its key: replay or discard that one")
            followers = []
            if row.key is not None:
                followers = list((await session.execute(
                    sa.select(dl).where(dl.c.consumer == self.name, dl.c.key == row.key,
                                        dl.c.id != row.id, dl.c.parked_behind.is_not(None),
                                        dl.c.replayed_at.is_(None), dl.c.discarded_at.is_(None))
                    .order_by(dl.c.partition, dl.c.offset).with_for_update())).all())
            if discard:
                await session.execute(sa.update(dl).where(dl.c.id == row.id).values(
                    discarded_at=sa.func.now(), discarded_by=actor))
            todo = followers if discard else [row, *followers]
            if todo:
                await session.execute(sa.update(dl).where(
                    dl.c.id == sa.func.any(sa.literal([r.id for r in todo],
                                                      ARRAY(sa.BigInteger))))
                    .values(replayed_at=sa.func.now(), replayed_by=actor))
                await session.execute(_UNCLAIM, {
                    "consumer": self.name, "ids": [r.event_id for r in todo],
                    "sources": [source_of(r.headers) for r in todo]})
            tally = await self.process(session, [[_record_of(r) for r in todo]], isolate=True)
        self._record(tally)
        outcomes: Counter[str] = Counter()
        for (_, outcome), n in tally.items():
            outcomes[outcome] += n
        head = "discarded" if discard else next(
            (o for o in ("dead_lettered", "processed", "duplicate", "ignored") if outcomes[o]),
            "ignored")
        return {"outcome": head, "parked_replayed": len(followers), "outcomes": dict(outcomes)}


@dataclass
class _Parked:
    """Keys waiting behind a dead letter in this batch: key → (dead letter id, its offset);
    offset -1 when the dead letter is from an earlier batch (every event here is later)."""

    behind: dict[bytes, tuple[int, int]] = field(default_factory=dict)

    def add(self, record: ConsumerRecord, dead_letter_id: int | None) -> None:
        if record.key and dead_letter_id is not None and record.key not in self.behind:
            self.behind[record.key] = (dead_letter_id, record.offset)

    def waiting(self, record: ConsumerRecord) -> int | None:
        """The dead letter this record must wait behind, if any."""
        entry = self.behind.get(record.key) if record.key else None
        if entry is None or record.offset <= entry[1]:
            return None
        return entry[0]


def _text(value: str) -> str:
    """Text PostgreSQL accepts (it refuses NUL in text and jsonb)."""
    return value.replace("\x00", "\ufffd")


def _record_of(row: Any) -> ConsumerRecord:
    """A dead letter as the record it was (headers byte for byte where they were kept)."""
    if row.raw_headers is not None:
        headers = tuple((k, base64.b64decode(v)) for k, v in row.raw_headers)
    else:
        headers = tuple((k, v.encode()) for k, v in row.headers)
    return ConsumerRecord(
        topic=row.topic, partition=row.partition, offset=row.offset, timestamp=0,
        timestamp_type=0, key=row.key, value=row.value, checksum=None,
        serialized_key_size=-1, serialized_value_size=-1, headers=headers)


class _Rebalance(ConsumerRebalanceListener):
    """Partitions change hands between batches: a revocation waits for the batch in flight to
    be committed; an assignment is logged and counted."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.consumer.batch_lock:
            pass
        if revoked:
            log.info("%s: partitions revoked: %s", self.consumer.name, sorted(
                f"{tp.topic}[{tp.partition}]" for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.consumer.rebalances += 1
        await self._rewind_lost_logs(assigned)
        if assigned:
            self.consumer.assigned.set()
        log.info("%s: partitions assigned: %s", self.consumer.name, sorted(
            f"{tp.topic}[{tp.partition}]" for tp in assigned))


    async def _rewind_lost_logs(self, assigned: Any) -> None:
        """A partition whose log ends before what this consumer already read was lost by the
        broker (one that restarted empty; a fetch there just waits and would skip what is
        published again): read it from the start."""
        c = self.consumer
        known = {tp: c.read_up_to[tp] for tp in assigned if tp in c.read_up_to}
        if not known or c.kafka is None:
            return
        try:
            ends = await c.kafka.end_offsets(list(known))
            lost = [tp for tp, upto in known.items() if ends.get(tp, 0) < upto]
            if lost:
                log.warning("%s: the broker lost %s (its log ends before what was read): "
                            "reading them from the start", c.name,
                            sorted(f"{tp.topic}[{tp.partition}]" for tp in lost))
                await c.kafka.seek_to_beginning(*lost)
                for tp in lost:
                    c.read_up_to.pop(tp, None)
        except Exception:  # noqa: BLE001 - best effort: the committed offsets still hold
            log.warning("%s: could not compare offsets after a rebalance", c.name, exc_info=True)


def _stages(partitions: list[list[_Parsed]]) -> list[tuple[Handler, list[_Parsed]]]:
    """Group events into handler calls without reordering any key: each partition is cut into
    runs of one handler function; the k-th runs of all partitions are merged by handler
    (partitions hold disjoint keys), and stage k runs before stage k+1."""
    runs_by_partition: list[list[list[_Parsed]]] = []
    for ps in partitions:
        runs: list[list[_Parsed]] = []
        for p in ps:
            if runs and runs[-1][-1].handler.key == p.handler.key:
                runs[-1].append(p)
            else:
                runs.append([p])
        runs_by_partition.append(runs)
    stages: list[tuple[Handler, list[_Parsed]]] = []
    depth = max((len(r) for r in runs_by_partition), default=0)
    for k in range(depth):
        merged: dict[int, tuple[Handler, list[_Parsed]]] = {}
        for runs in runs_by_partition:
            if k < len(runs):
                handler = runs[k][0].handler
                merged.setdefault(id(handler.key), (handler, []))[1].extend(runs[k])
        stages.extend(merged.values())
    return stages
