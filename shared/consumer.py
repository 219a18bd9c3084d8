"""Batched, idempotent consumer: getmany → one transaction per batch, a savepoint per event,
inbox `(consumer, ce_id)`, offsets committed after the DB commit, retry then dead letter."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import PlatformTables
from shared.envelope import Envelope, EnvelopeError
from shared.outbox import Outbox
from shared.telemetry import Metrics, context_from

log = logging.getLogger("everydoor.consumer")
tracer = trace.get_tracer("everydoor.consumer")

DLQ_SUFFIX = ".dlq"


@dataclass
class EventContext:
    """What a handler gets: the open session, the event, and a way to emit caused events."""

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


HandlerFn = Callable[[EventContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Handler:
    """Handles one event type; `model` validates the payload (None: the raw dict)."""

    fn: HandlerFn
    model: type[BaseModel] | None = None
    upcast: Callable[[dict], dict] | None = None


@dataclass
class ConsumerSpec:
    """One consumer group: its topics and a handler per `ce_type` (`*` catches every type)."""

    name: str
    topics: list[str]
    handlers: dict[str, Handler] = field(default_factory=dict)


TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def transient(exc: BaseException) -> bool:
    """A database error that says "try the transaction again", not "this event is bad"."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES
    return isinstance(exc, ConnectionError)


class DeadLetter(Exception):
    """Raised by a handler for an event that can never succeed (no retry)."""


class Consumer:
    """Runs one ConsumerSpec against Kafka and the service's database."""

    def __init__(self, *, spec: ConsumerSpec, service: str, bootstrap: str,
                 sessions: async_sessionmaker[AsyncSession], tables: PlatformTables,
                 outbox: Outbox, metrics: Metrics, batch_size: int = 500, max_attempts: int = 3,
                 session_timeout_ms: int = 6000, heartbeat_interval_ms: int = 500,
                 group_id: str | None = None) -> None:
        self.spec = spec
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
        self.kafka: AIOKafkaConsumer | None = None
        self.assigned = asyncio.Event()

    async def start(self) -> None:
        """Connect and subscribe."""
        self.kafka = AIOKafkaConsumer(
            *self.spec.topics, bootstrap_servers=self.bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_poll_records=self.batch_size,
        )
        await self.kafka.start()

    async def stop(self) -> None:
        """Leave the group."""
        if self.kafka is not None:
            await self.kafka.stop()

    async def run(self) -> None:
        """Poll, handle, commit — forever."""
        if self.kafka is None:
            await self.start()
        assert self.kafka is not None
        try:
            while True:
                batch = await self.kafka.getmany(timeout_ms=500, max_records=self.batch_size)
                if self.kafka.assignment():
                    self.assigned.set()
                if not batch:
                    continue
                try:
                    await self.handle_batch(batch)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: batch failed, will re-read it", self.name)
                    for tp, records in batch.items():
                        self.kafka.seek(tp, records[0].offset)
                    # Jitter: two transactions that deadlocked should not collide again in step.
                    await asyncio.sleep(random.uniform(0.2, 1.0))
                    continue
                await self.kafka.commit({tp: recs[-1].offset + 1 for tp, recs in batch.items()})
        finally:
            await self.stop()

    async def handle_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """One DB transaction for the whole batch; a savepoint per event."""
        async with self.sessions() as session, session.begin():
            for records in batch.values():
                for record in records:
                    await self.handle_record(session, record)

    async def handle_record(self, session: AsyncSession, record: ConsumerRecord) -> str:
        """Handle one record inside the batch transaction; return its outcome."""
        headers = list(record.headers or ())
        try:
            event = Envelope.from_kafka(headers, record.value)
        except EnvelopeError as exc:
            await self.dead_letter(session, record, event_id=None, reason=f"unparseable: {exc}",
                                   attempts=1)
            return self._count(record, "dead_lettered")
        handler = self.spec.handlers.get(event.type) or self.spec.handlers.get("*")
        if handler is None:
            return self._count(record, "ignored")
        data = handler.upcast(event.data) if handler.upcast else event.data
        payload: Any = data
        if handler.model is not None:
            try:
                payload = handler.model.model_validate(data)
            except ValidationError as exc:
                if await self._seen(session, event.id):
                    return self._count(record, "duplicate")
                reason = "schema-invalid: " + "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                await self.dead_letter(session, record, event_id=event.id, reason=reason, attempts=1)
                return self._count(record, "dead_lettered")
        parent = context_from(event.traceparent, event.tracestate)
        parent_span = trace.get_current_span(parent).get_span_context() if parent else None
        links = [Link(parent_span)] if parent_span and parent_span.is_valid else []
        last_error: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            with tracer.start_as_current_span(
                f"{record.topic} process", context=parent, kind=SpanKind.CONSUMER, links=links,
                attributes={"messaging.system": "kafka", "messaging.operation.type": "process",
                            "messaging.destination.name": record.topic,
                            "messaging.consumer.group.name": self.group_id,
                            "messaging.message.id": event.id, "cloudevents.event_type": event.type,
                            "everydoor.attempt": attempt},
            ) as span:
                try:
                    async with session.begin_nested():
                        if not await self._claim(session, event.id, record.topic):
                            return self._count(record, "duplicate")
                        ctx = EventContext(session=session, event=event, outbox=self.outbox,
                                           topic=record.topic)
                        await handler.fn(ctx, payload)
                    return self._count(record, "processed")
                except DeadLetter as exc:
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
                    await self.dead_letter(session, record, event_id=event.id, reason=str(exc),
                                           attempts=attempt)
                    return self._count(record, "dead_lettered")
                except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered with reason
                    if transient(exc):
                        raise  # the whole batch rolls back and is read again: not the event's fault
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
                    last_error = exc
                    log.warning("%s: %s attempt %d failed: %r", self.name, event.id, attempt, exc)
        await self.dead_letter(session, record, event_id=event.id,
                               reason=f"handler failed: {last_error!r}", attempts=self.max_attempts)
        return self._count(record, "dead_lettered")

    def _count(self, record: ConsumerRecord, outcome: str) -> str:
        self.metrics.events_processed.labels(self.name, record.topic, outcome).inc()
        return outcome

    async def _claim(self, session: AsyncSession, event_id: str, topic: str,
                     outcome: str = "processed") -> bool:
        inbox = self.tables.inbox
        inserted = await session.execute(
            pg_insert(inbox).values(consumer=self.name, event_id=event_id, topic=topic,
                                    outcome=outcome)
            .on_conflict_do_nothing().returning(inbox.c.event_id)
        )
        return inserted.first() is not None

    async def _seen(self, session: AsyncSession, event_id: str) -> bool:
        inbox = self.tables.inbox
        return (await session.scalar(sa.select(sa.literal(1)).where(
            inbox.c.consumer == self.name, inbox.c.event_id == event_id))) is not None

    async def dead_letter(self, session: AsyncSession, record: ConsumerRecord, *,
                          event_id: str | None, reason: str, attempts: int) -> None:
        """Record the dead letter and publish it to `<topic>.dlq` through the outbox."""
        key = event_id or f"{record.topic}:{record.partition}:{record.offset}"
        if not await self._claim(session, key, record.topic, outcome="dead_lettered"):
            return  # already dead-lettered on an earlier delivery
        headers = list(record.headers or ())
        await session.execute(sa.insert(self.tables.dead_letter).values(
            consumer=self.name, event_id=key, topic=record.topic, partition=record.partition,
            offset=record.offset, key=record.key, value=record.value, reason=reason[:4000],
            attempts=attempts,
            headers=[[k, (v or b"").decode(errors="replace")] for k, v in headers],
        ))
        error_headers = [
            ("dlq_reason", reason[:4000].encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_consumer", self.name.encode()),
        ]
        await self.outbox.add_raw(
            session, topic=record.topic + DLQ_SUFFIX, event_id=str(uuid.uuid4()),
            type="everydoor.dead_letter", key=record.key, headers=headers + error_headers,
            value=record.value,
        )
        self.metrics.dead_letters.labels(self.name, record.topic).inc()
        log.warning("%s: dead-lettered %s from %s@%d: %s", self.name, key, record.topic,
                    record.offset, reason)

    async def replay(self, dead_letter_id: int) -> str:
        """Re-run a dead letter through this consumer's handlers; return the new outcome."""
        dl = self.tables.dead_letter
        async with self.sessions() as session, session.begin():
            row = (await session.execute(
                sa.select(dl).where(dl.c.id == dead_letter_id, dl.c.consumer == self.name)
                .with_for_update()
            )).first()
            if row is None:
                raise LookupError(dead_letter_id)
            await session.execute(sa.delete(self.tables.inbox).where(
                self.tables.inbox.c.consumer == self.name,
                self.tables.inbox.c.event_id == row.event_id))
            await session.execute(sa.update(dl).where(dl.c.id == row.id)
                                  .values(replayed_at=sa.func.now()))
            record = ConsumerRecord(
                topic=row.topic, partition=row.partition, offset=row.offset, timestamp=0,
                timestamp_type=0, key=row.key, value=row.value, checksum=None,
                serialized_key_size=-1, serialized_value_size=-1,
                headers=tuple((k, v.encode()) for k, v in row.headers),
            )
            return await self.handle_record(session, record)
