"""The composition of one service process: API + consumers + outbox relay, built at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import audit, db, privacy, problems, sanitize
from shared.audit import ReasonQ
from shared.auth import Authenticator, CurrentUser, Principal, require_role
from shared.broker import BrokerWatch, client_security
from shared.consumer import Consumer, ConsumerSpec
from shared.db import PlatformTables
from shared.openapi import document_errors, problem_responses
from shared.outbox import CORRELATION_ID, Outbox, Relay, buffering, requeue_sent
from shared.retention import Retention
from shared.settings import ServiceSettings, state_dir
from shared.telemetry import Metrics, setup_tracing

ASGIApp = Callable[..., Awaitable[None]]


class StreamedBodyLimit:
    """413 for a body sent without Content-Length (chunked) once it passes the limit.

    Declared lengths are refused before reading (in `create_app`); imports stream and are exempt.
    """

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["path"].endswith("/imports") or any(
                k == b"content-length" for k, _ in scope.get("headers", ())):
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise HTTPException(413, f"body larger than {self.max_body} bytes")
            return message

        await self.app(scope, counted, send)

log = logging.getLogger("everydoor.runtime")

# Topics read by bank partners: not republished in bulk unless asked (a partner may not dedupe).
PARTNER_TOPIC_PREFIX = "disbursement.instructions."



@dataclass
class ServiceSpec:
    """Everything that makes a service: its tables, migrations, routes, consumers, topics."""

    name: str
    settings: ServiceSettings
    tables: PlatformTables
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    publishes: Sequence[str] = ()
    consumers: Callable[[Runtime], Sequence[ConsumerSpec]] = lambda rt: ()
    on_startup: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    background: Sequence[Callable[[Runtime], Coroutine[Any, Any, None]]] = ()
    title: str = ""
    description: str = ""
    extra_routes: Callable[[FastAPI], None] | None = None


@dataclass
class TaskHealth:
    """What /ready says of one supervised background task."""

    name: str
    state: str = "starting"  # starting | running | restarting | stopped
    restarts: int = 0
    last_error: str | None = None
    # Monotonic time the task last showed progress (a consumer's poll, a relay's round).
    heartbeat: Callable[[], float | None] | None = None

    def problem(self, stuck_after_s: float) -> str | None:
        """Why this task makes the replica not ready, or None."""
        if self.state == "stopped":
            return f"stopped: {self.last_error or 'exited'}"
        beat = self.heartbeat() if self.heartbeat is not None else None
        if self.state == "running" and beat is not None and \
                time.monotonic() - beat > stuck_after_s:
            return f"stuck: no progress for {time.monotonic() - beat:.0f}s"
        return None

    def as_dict(self) -> dict[str, Any]:
        """The task's state for /ready."""
        return {"state": self.state, "restarts": self.restarts, "last_error": self.last_error}


async def supervise(name: str, run: Callable[[], Awaitable[None]], health: TaskHealth,
                    metrics: Metrics, *, backoff_max_s: float = 30.0) -> None:
    """Run `run` forever: when it raises (or returns), log it, count it and start it again with
    exponential backoff (reset after a long healthy run). Nothing dies silently."""
    delay = 0.5
    while True:
        health.state = "running"
        started = time.monotonic()
        try:
            await run()
            health.last_error = "exited"
        except asyncio.CancelledError:
            health.state = "stopped"
            health.last_error = "cancelled"
            raise
        except Exception as exc:  # noqa: BLE001 - logged, counted, restarted
            log.exception("%s failed; restarting in %.1fs", name, delay)
            health.last_error = f"{type(exc).__name__}: {exc}"[:500]
        health.restarts += 1
        health.state = "restarting"
        metrics.task_restarts.labels(name).inc()
        if time.monotonic() - started > 60:
            delay = 0.5
        await asyncio.sleep(delay)
        delay = min(delay * 2, backoff_max_s)


@dataclass
class Runtime:
    """Live resources of one service process (engine, producer, outbox, consumers)."""

    spec: ServiceSpec
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    metrics: Metrics
    producer: AIOKafkaProducer
    relay: Relay
    consumers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    health: dict[str, TaskHealth] = field(default_factory=dict)
    broker: BrokerWatch | None = None
    retention: Retention | None = None

    def supervised(self, name: str, run: Callable[[], Awaitable[None]],
                   heartbeat: Callable[[], float | None] | None = None) -> asyncio.Task:
        """Start a background task that is restarted when it fails and reported by /ready."""
        health = self.health[name] = TaskHealth(name=name, heartbeat=heartbeat)
        task = asyncio.create_task(supervise(name, run, health, self.metrics), name=name)
        self.tasks.append(task)
        return task

    @property
    def settings(self) -> ServiceSettings:
        """The service's settings."""
        return self.spec.settings

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one committed-or-rolled-back transaction. The events it emits are
        collected and written to the outbox with one insert and one NOTIFY just before the
        commit (two round trips whatever their number), in the order they were emitted."""
        async with db.transaction(self.sessions) as session:
            with buffering(session):
                yield session
                await self.outbox.flush(session)
                await self.outbox.notify_written(session)

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A read-only session that sees one consistent snapshot (for API reads)."""
        async with db.snapshot(self.sessions) as session:
            yield session


def get_runtime(request: Request) -> Runtime:
    """FastAPI dependency: the service runtime."""
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
OperatorDep = Annotated[Principal, require_role("national_admin")]
RowId = Annotated[int, PathParam(ge=1, le=db.BIGINT_MAX)]
Limit = Annotated[int, Query(ge=1, le=1000)]


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session)]


def make_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """acks=all always; idempotence only where the broker supports it (not the embedded one)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all",
        enable_idempotence=settings.platform.kafka_enable_idempotence,
        linger_ms=settings.producer_linger_ms, max_batch_size=1024 * 1024, request_timeout_ms=15000,
        **client_security(settings.platform),
    )


async def start_runtime(spec: ServiceSpec) -> Runtime:
    """Migrate, connect, start the relay and the consumers."""
    settings = spec.settings
    if settings.platform.everydoor_dev_mode:
        await db.create_database_if_missing(settings.db_url)
    engine = db.create_engine(settings.db_url)
    with contextlib.suppress(Exception):
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    await db.upgrade(engine, spec.migrations_dir)
    sessions = db.sessionmaker(engine)
    metrics = Metrics(spec.name)
    outbox = Outbox(spec.tables, service=spec.name)
    producer = make_producer(settings)
    relay = Relay(engine=engine, tables=spec.tables, producer=producer, service=spec.name,
                  metrics=metrics, batch_size=settings.relay_batch_size,
                  poll_interval=settings.relay_poll_interval_s,
                  max_attempts=settings.relay_max_attempts)
    rt = Runtime(spec=spec, engine=engine, sessions=sessions, outbox=outbox, metrics=metrics,
                 producer=producer, relay=relay)
    try:
        specs = list(spec.consumers(rt))
        topics = set(spec.publishes)
        consumed: set[str] = set()
        for cs in specs:
            consumed.update(cs.topics)
            topics.update(cs.topics)
            topics.update(t + ".dlq" for t in cs.topics)
        rt.broker = BrokerWatch(
            bootstrap=settings.bootstrap_servers, producer=producer, engine=engine,
            tables=spec.tables, topics=topics, consumed=consumed, service=spec.name,
            partitions=settings.platform.kafka_topic_partitions,
            replication_factor=settings.platform.kafka_topic_replication_factor,
            min_insync_replicas=settings.platform.kafka_min_insync_replicas,
            require_replication=settings.platform.kafka_require_replication,
            platform=settings.platform,
            republish_window=timedelta(hours=settings.broker_republish_window_h),
            grace_s=settings.broker_recovery_grace_s)
        relay.ready = rt.broker.producer_ready
        relay.before_claim = rt.broker.recover_if_fresh
        try:  # the broker may be down: the service starts anyway and takes writes
            await asyncio.wait_for(rt.broker.check(), settings.broker_startup_wait_s)
        except Exception as exc:  # noqa: BLE001 - reported by /ready, retried by the watch
            rt.broker.state = f"unreachable: {exc!r}"[:300]
            log.warning("%s: broker not reachable at start-up (%r); starting anyway, writes "
                        "wait in the outbox", spec.name, exc)
        rt.supervised(f"{spec.name}-broker", rt.broker.run)
        for hook in spec.on_startup:
            await hook(rt)
        if settings.relay_enabled:
            rt.supervised(f"{spec.name}-relay", relay.run, heartbeat=lambda: relay.last_round)
        for cs in specs:
            consumer = Consumer(
                spec=cs, service=spec.name, bootstrap=settings.bootstrap_servers,
                sessions=sessions, tables=spec.tables, outbox=outbox, metrics=metrics,
                batch_size=settings.consumer_batch_size, max_attempts=settings.consumer_max_attempts,
                session_timeout_ms=settings.consumer_session_timeout_ms,
                heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
                fetch_max_wait_ms=(settings.consumer_fetch_max_wait_ms
                                   if cs.fetch_max_wait_ms is None else cs.fetch_max_wait_ms),
                group_id=f"{settings.consumer_group_prefix}{spec.name}.{cs.name}",
                start_timeout_s=settings.consumer_start_timeout_s,
                platform=settings.platform,
            )
            rt.consumers.append(consumer)
            # Joins its group in the background: the API and /health answer meanwhile, and a
            # group that never syncs times out and is tried again.
            rt.supervised(consumer.name, consumer.run,
                          heartbeat=lambda c=consumer: c.last_poll)  # type: ignore[misc]
        rt.retention = Retention(
            engine=engine, tables=spec.tables, service=spec.name, metrics=metrics,
            outbox_days=settings.retention_outbox_days, inbox_days=settings.retention_inbox_days,
            dead_letter_days=settings.retention_dead_letter_days,
            interval_s=settings.retention_interval_s)
        rt.supervised(f"{spec.name}-retention", rt.retention.run)
        for job in spec.background:
            rt.supervised(f"{spec.name}-{job.__name__}", lambda job=job: job(rt))  # type: ignore[misc]
    except BaseException:
        await stop_runtime(rt)
        raise
    return rt


async def stop_runtime(rt: Runtime) -> None:
    """Drain (consumers finish and commit their batch in flight, the relay publishes what is
    pending, each within `shutdown_drain_s`), then cancel tasks, leave groups, flush, close."""
    drain_s = rt.settings.shutdown_drain_s
    if rt.relay.leader and rt.relay.last_round is not None:
        rt.relay.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.relay.drained.wait(), drain_s)
    for consumer in rt.consumers:
        try:
            await asyncio.wait_for(consumer.drain(), drain_s)
        except TimeoutError:
            log.warning("%s: batch still in flight after %.0f s; it will be re-read",
                        consumer.name, drain_s)
    for task in rt.tasks:
        task.cancel()
    if rt.tasks:  # bounded: a task that does not end on cancellation must not hang the exit
        _, stuck = await asyncio.wait(rt.tasks, timeout=drain_s)
        for task in stuck:
            log.warning("task %s did not stop within %.0f s of its cancellation; leaving it",
                        task.get_name(), drain_s)
    for name, closing in [*((c.name, c.stop) for c in rt.consumers),
                          ("producer", rt.producer.stop)]:
        try:  # a broker that does not answer must not hang the exit either
            await asyncio.wait_for(closing(), drain_s)
        except TimeoutError:
            log.warning("%s did not close within %.0f s; leaving it", name, drain_s)
        except Exception:  # noqa: BLE001 - closing anyway: the process is going away
            log.debug("closing %s failed", name, exc_info=True)
    await rt.engine.dispose()


class DeadLetterRead(BaseModel):
    """A dead letter as operators see it."""

    id: int
    consumer: str
    event_id: str
    topic: str
    partition: int
    offset: int
    reason: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None
    replayed_by: str | None
    discarded_at: datetime | None
    discarded_by: str | None
    parked_behind: int | None = Field(
        description="the earlier dead letter of its key this event waits behind")
    headers: dict[str, Any]
    value: str = Field(description="the payload (at most 4000 characters, redacted for auditors)")


class ReleaseRead(BaseModel):
    """What replaying or discarding a dead letter did."""

    id: int
    outcome: str = Field(examples=["processed", "dead_lettered", "discarded"])
    parked_replayed: int = Field(description="events of its key that waited behind it")
    outcomes: dict[str, int] = Field(description="each outcome and how many events had it")


class RepublishRead(BaseModel):
    """How many kept outbox rows the relay will publish again."""

    requeued: int


class ParkedRead(BaseModel):
    """An outbox row the broker refused."""

    id: int
    event_id: str
    topic: str
    key: str | None
    type: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    parked_at: datetime | None
    created_at: datetime
    bytes: int = Field(description="the payload's size")


class ParkedOutcome(BaseModel):
    """What became of a refused outbox row."""

    id: int
    event_id: str
    outcome: str = Field(examples=["retrying", "discarded"])


class HealthRead(BaseModel):
    """The process is up."""

    status: str = Field(examples=["ok"])
    service: str


class TaskRead(BaseModel):
    """One supervised background task."""

    state: str = Field(examples=["starting", "running", "restarting", "stopped"])
    restarts: int
    last_error: str | None


class ReadyRead(BaseModel):
    """Whether this replica takes traffic, and why not."""

    status: str = Field(examples=["ready", "not ready"])
    checks: dict[str, str] = Field(description="each failing check (and the database's)")
    broker: str
    relay_active: bool
    tasks: dict[str, TaskRead]


class WhoAmI(BaseModel):
    """The caller as the token says."""

    sub: str
    role: str
    scope: list[str]
    partner: str | None


def ops_router() -> APIRouter:
    """Operator endpoints every service has: dead letters (list, replay) and outbox refill."""
    router = APIRouter(prefix="/v1/ops", tags=["operations"])

    @router.get("/dead-letters", dependencies=[require_role("national_admin", "auditor")],
                response_model=list[DeadLetterRead])
    async def list_dead_letters(rt: RuntimeDep, user: CurrentUser, replayed: bool | None = None,
                                limit: Limit = 100) -> list[dict]:
        """Dead letters of this service's consumers, newest first; `parked_behind` marks an
        event that is not bad itself but waits behind an earlier dead letter of its key.
        Auditors see the payload's national IDs masked, birth dates as years and no phones."""
        dl = rt.spec.tables.dead_letter
        q = sa.select(dl).order_by(dl.c.id.desc()).limit(limit)
        if replayed is not None:
            q = q.where(dl.c.replayed_at.is_not(None) if replayed else dl.c.replayed_at.is_(None))
        async with rt.sessions() as s:
            rows = (await s.execute(q)).mappings().all()
        return [
            {"id": r["id"], "consumer": r["consumer"], "event_id": r["event_id"],
             "topic": r["topic"], "partition": r["partition"], "offset": r["offset"],
             "reason": r["reason"], "attempts": r["attempts"], "created_at": r["created_at"],
             "replayed_at": r["replayed_at"], "replayed_by": r["replayed_by"],
             "discarded_at": r["discarded_at"], "discarded_by": r["discarded_by"],
             "parked_behind": r["parked_behind"],
             "headers": dict(r["headers"]),
             "value": privacy.redact_json_text(
                 (r["value"] or b"").decode(errors="replace"), full=user.role == "national_admin"
             )[:4000]}
            for r in rows
        ]

    async def release(rt: Runtime, dead_letter_id: int, user: Principal, *,
                      discard: bool, reason: str) -> dict:
        dl = rt.spec.tables.dead_letter
        action = "dead_letter.discard" if discard else "dead_letter.replay"
        async with rt.sessions() as s:
            name = await s.scalar(sa.select(dl.c.consumer).where(dl.c.id == dead_letter_id))
        consumer = next((c for c in rt.consumers if c.name == name), None)
        refused: problems.Problem | None = None
        result: dict[str, Any] = {}
        if consumer is None:
            refused = problems.Problem(404, f"no dead letter {dead_letter_id}")
        else:
            try:
                result = await consumer.replay(dead_letter_id, discard=discard, actor=user.sub)
            except LookupError:
                refused = problems.Problem(404, f"no dead letter {dead_letter_id}")
            except ValueError as exc:
                refused = problems.Problem(409, str(exc))
        # Refused attempts are kept too: an auditor sees what was tried, not only what worked.
        outcome = {"refused": refused.detail} if refused else {"consumer": name, **result}
        async with rt.transaction() as s:
            await audit.record(s, rt.spec.tables, user=user, action=action,
                               target=f"dead_letter {dead_letter_id}", reason=reason,
                               outcome=jsonable_encoder(outcome))
        if refused is not None:
            raise refused
        return {"id": dead_letter_id, **result}

    @router.post("/dead-letters/{dead_letter_id}/replay", response_model=ReleaseRead,
                 responses=problem_responses(409, s409="already replayed or discarded, or "
                                                       "parked behind an earlier dead letter"))
    async def replay_dead_letter(dead_letter_id: RowId, rt: RuntimeDep, user: OperatorDep,
                                 reason: ReasonQ) -> dict:
        """Run a dead letter through its consumer again (after a fix), then the events of its
        household parked behind it, in offset order; returns the outcomes. Recorded in the
        operator audit log with who and why."""
        return await release(rt, dead_letter_id, user, discard=False, reason=reason)

    @router.post("/dead-letters/{dead_letter_id}/discard", response_model=ReleaseRead,
                 responses=problem_responses(409, s409="already replayed or discarded, or "
                                                       "parked behind an earlier dead letter"))
    async def discard_dead_letter(dead_letter_id: RowId, rt: RuntimeDep, user: OperatorDep,
                                  reason: ReasonQ) -> dict:
        """Give a dead letter up (recorded with who and why), then apply the events of its
        household parked behind it, in offset order."""
        return await release(rt, dead_letter_id, user, discard=True, reason=reason)

    @router.post("/outbox/republish", response_model=RepublishRead)
    async def republish(rt: RuntimeDep, user: OperatorDep, reason: ReasonQ,
                        since_id: Annotated[int, Query(ge=0, le=db.BIGINT_MAX)] = 0,
                        topic: str | None = None, include_partners: bool = False) -> dict:
        """Mark kept outbox rows unsent so the relay publishes them again (refill a lost broker;
        consumers' inboxes absorb the repeats). `topic` limits it to one topic; bank-partner
        topics are left out unless `include_partners` (a partner may not deduplicate).
        Recorded in the operator audit log with who and why."""
        t = rt.spec.tables.outbox
        where = [t.c.id >= since_id]
        if topic is not None:
            where.append(t.c.topic == topic)
        if not include_partners:
            where.append(t.c.topic.not_like(f"{PARTNER_TOPIC_PREFIX}%"))
        async with rt.transaction() as s:
            requeued = await requeue_sent(s, t, *where)
            await audit.record(
                s, rt.spec.tables, user=user, action="outbox.republish",
                target=f"outbox since id {since_id}, topic {topic or 'any'}, "
                       f"partners {include_partners}",
                reason=reason, outcome={"requeued": requeued})
            await rt.outbox.notify(s)
        return {"requeued": requeued}

    @router.get("/outbox/parked", dependencies=[require_role("national_admin", "auditor")],
                response_model=list[ParkedRead])
    async def list_parked(rt: RuntimeDep, limit: Limit = 100) -> list[dict]:
        """Outbox rows the broker refused, oldest first: parked ones and ones waiting to be
        tried again. Each holds back its key's later events."""
        t = rt.spec.tables.outbox
        q = (sa.select(t.c.id, t.c.event_id, t.c.topic, t.c.key, t.c.type, t.c.attempts,
                       t.c.last_error, t.c.next_attempt_at, t.c.parked_at, t.c.created_at,
                       sa.func.length(t.c.value).label("bytes"))
             .where(t.c.sent_at.is_(None), t.c.last_error.is_not(None))
             .order_by(t.c.id).limit(limit))
        async with rt.snapshot() as s:
            rows = (await s.execute(q)).mappings().all()
        return [dict(r) for r in rows]

    @router.post("/outbox/{row_id}/retry", response_model=ParkedOutcome)
    async def retry_parked(row_id: RowId, rt: RuntimeDep, user: OperatorDep,
                           reason: ReasonQ) -> dict:
        """Try a parked row again now (after the cause is fixed): attempts start over.
        Recorded in the operator audit log with who and why."""
        t = rt.spec.tables.outbox
        async with rt.transaction() as s:
            done = await s.execute(
                sa.update(t).where(t.c.id == row_id, t.c.sent_at.is_(None),
                                   t.c.last_error.is_not(None))
                .values(parked_at=None, next_attempt_at=sa.func.now(), attempts=0)
                .returning(t.c.event_id))
            event_id = done.scalar()
            if event_id is None:
                raise problems.Problem(404, f"no refused outbox row {row_id}")
            await audit.record(s, rt.spec.tables, user=user, action="outbox.retry",
                               target=f"outbox {row_id}", reason=reason,
                               outcome={"event_id": event_id, "outcome": "retrying"})
            await rt.outbox.notify(s)
        return {"id": row_id, "event_id": event_id, "outcome": "retrying"}

    @router.post("/outbox/{row_id}/discard", response_model=ParkedOutcome)
    async def discard_parked(row_id: RowId, rt: RuntimeDep, user: OperatorDep,
                             reason: ReasonQ) -> dict:
        """Give up on a refused row (it is never published; its key's later events go on).
        The row stays, marked with who discarded it and why."""
        t = rt.spec.tables.outbox
        async with rt.transaction() as s:
            done = await s.execute(
                sa.update(t).where(t.c.id == row_id, t.c.sent_at.is_(None),
                                   t.c.last_error.is_not(None))
                .values(sent_at=sa.func.now(), parked_at=sa.func.coalesce(t.c.parked_at,
                                                                          sa.func.now()),
                        last_error=sa.func.concat(f"discarded by {user.sub}: {reason[:500]} | ",
                                                  t.c.last_error))
                .returning(t.c.event_id))
            event_id = done.scalar()
            if event_id is None:
                raise problems.Problem(404, f"no refused outbox row {row_id}")
            await audit.record(s, rt.spec.tables, user=user, action="outbox.discard",
                               target=f"outbox {row_id}", reason=reason,
                               outcome={"event_id": event_id, "outcome": "discarded"})
            await rt.outbox.notify(s)
        return {"id": row_id, "event_id": event_id, "outcome": "discarded"}

    @router.get("/audit", response_model=list[audit.OperatorActionRead],
                dependencies=[require_role("national_admin", "auditor")])
    async def operator_audit(
            rt: RuntimeDep, action: str | None = None, actor: str | None = None,
            before_id: Annotated[int | None, Query(ge=1, le=db.BIGINT_MAX)] = None,
            limit: Limit = 100) -> list[audit.OperatorActionRead]:
        """The operator audit log of this service, newest first: who (token `sub` and role),
        when, which action on what, why, and the outcome. Page with `before_id`."""
        async with rt.snapshot() as s:
            return await audit.listing(s, rt.spec.tables, action=action, actor=actor,
                                       before_id=before_id, limit=limit)

    return router


def metrics_guard(token: str | None) -> Callable[[Request], Awaitable[None]]:
    """Dependency: 401 unless the request carries `Authorization: Bearer <token>` (nothing to
    check when no token is configured)."""

    async def check(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(),
                                                                    token.encode()):
            raise HTTPException(401, "metrics need the metrics bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def _freeze_heap() -> None:
    """Move everything alive after start-up (modules, models, compiled statements, rule sets)
    out of the cyclic garbage collector's sight: a full collection then walks only what
    batches allocate, instead of pausing the whole process (every consumer, the relay, the
    API) for ~80 ms several times a second under load."""
    gc.collect()
    gc.freeze()


def create_app(spec: ServiceSpec, *, freeze_heap: bool = False) -> FastAPI:
    """The service's FastAPI app; the lifespan starts and stops the runtime (`freeze_heap`:
    a service process of its own, see `_freeze_heap`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if platform.everydoor_metrics_token is None and not platform.everydoor_dev_mode:
            log.warning("%s: /metrics is open to anyone who reaches the port; set "
                        "EVERYDOOR_METRICS_TOKEN on an internet-facing deployment", spec.name)
        rt = await start_runtime(spec)
        app.state.runtime = rt
        if freeze_heap:
            _freeze_heap()
        try:
            yield
        finally:
            await stop_runtime(rt)

    platform = spec.settings.platform
    docs = platform.everydoor_docs_enabled  # off: /docs, /redoc and /openapi.json are 404
    app = FastAPI(title=spec.title or f"Every Door {spec.name}", version="0.1.0",
                  description=spec.description, lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    app.state.authenticator = Authenticator.from_settings(spec.settings.platform,
                                                          audience=spec.settings.audience)
    app.state.service = spec.name
    problems.install(app)
    max_body = spec.settings.max_body_bytes
    # Inner first: the NUL/range check reads bodies through the streamed limit.
    app.add_middleware(sanitize.RefuseUnstorable, streamed=lambda path: path.endswith("/imports"))
    app.add_middleware(StreamedBodyLimit, max_body=max_body)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body and not request.url.path.endswith("/imports"):
            return problems.problem_response(request, 413, f"body larger than {max_body} bytes")
        given = request.headers.get("x-correlation-id")
        if given is not None and not sanitize.valid_correlation_id(given):
            return problems.validation_problem(request, [
                {"field": "x-correlation-id", "message": sanitize.CORRELATION_ID_MESSAGE,
                 "type": "string_pattern_mismatch"}])
        request.state.correlation_id = given or str(uuid.uuid4())
        token = CORRELATION_ID.set(request.state.correlation_id)
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["x-correlation-id"] = CORRELATION_ID.get() or ""
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            if hasattr(request.app.state, "runtime"):
                m = request.app.state.runtime.metrics
                m.requests.labels(request.method, path, str(status)).inc()
                m.latency.labels(request.method, path).observe(time.perf_counter() - start)
            CORRELATION_ID.reset(token)

    @app.get("/health", tags=["operations"], response_model=HealthRead)
    async def health() -> dict:
        """The process is up."""
        return {"status": "ok", "service": spec.name}

    @app.get("/ready", tags=["operations"], response_model=ReadyRead,
             responses={503: {"model": ReadyRead, "description": "not ready: see `checks`"}})
    async def ready(rt: RuntimeDep) -> JSONResponse:
        """Ready while its database answers and no background task is dead or stuck. The
        broker is reported but does not decide: during an outage writes still land in the
        outbox, and the consumers and relay reconnect by themselves."""
        checks: dict[str, str] = {}
        try:
            async with rt.engine.connect() as conn:
                await conn.execute(sa.text("select 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"error: {exc}"
        for name, health in rt.health.items():
            problem = health.problem(rt.settings.task_stuck_after_s)
            if problem is not None:
                checks[f"task {name}"] = problem
        ok = all(v == "ok" for v in checks.values())
        broker = rt.broker.state if rt.broker is not None else "unknown"
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks,
                             "broker": broker, "relay_active": rt.relay.leader,
                             "tasks": {n: h.as_dict() for n, h in rt.health.items()}},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
                        **problem_responses(401, s401="EVERYDOOR_METRICS_TOKEN is set and the "
                                                      "request does not carry it")},
             dependencies=[Depends(metrics_guard(platform.everydoor_metrics_token))])
    async def metrics(rt: RuntimeDep) -> Response:
        """Prometheus text exposition (with `EVERYDOOR_METRICS_TOKEN` set: only for
        `Authorization: Bearer <token>`)."""
        with contextlib.suppress(Exception):
            rt.metrics.outbox_backlog.set(await rt.relay.backlog())
        return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/whoami", tags=["operations"], response_model=WhoAmI)
    async def whoami(user: CurrentUser) -> dict:
        """The caller as the token says."""
        return {"sub": user.sub, "role": user.role, "scope": list(user.scope),
                "partner": user.partner}

    app.include_router(ops_router())
    for router in spec.routers:
        app.include_router(router)
    if spec.extra_routes:
        spec.extra_routes(app)
    document_errors(app)
    with contextlib.suppress(Exception):
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="health,ready,metrics")
    return app


def serve(spec: ServiceSpec) -> None:
    """`python -m services.<name>`: tracing, then uvicorn on the service's port."""
    import uvicorn

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    setup_tracing(spec.name, span_file=state_dir() / "spans.jsonl")
    app = create_app(spec, freeze_heap=True)
    uvicorn.run(app, host=spec.settings.host, port=spec.settings.port, log_level="info",
                access_log=False)
