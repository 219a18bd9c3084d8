"""The service's view of the broker: starts the producer when the broker is reachable (a
service starts and takes writes during an outage), keeps its topics there, and notices a fresh
broker that lost them (the embedded memory-only one after a restart) and republishes the outbox
so nothing in flight is lost; consumers' inboxes absorb the repeats."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.helpers import create_ssl_context
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import PlatformTables
from shared.infra import ensure_topics
from shared.outbox import requeue_sent
from shared.settings import PlatformSettings

log = logging.getLogger("everydoor.broker")


def client_security(settings: PlatformSettings) -> dict[str, Any]:
    """The aiokafka keyword arguments that authenticate and encrypt a client: every producer,
    consumer and admin client the code creates takes them (tests/backbone/test_kafka_security.py
    fails on one that does not). Outside dev mode a protocol without TLS is refused here, before
    anything connects, unless KAFKA_ALLOW_PLAINTEXT=true."""
    protocol = settings.kafka_security_protocol
    if not settings.kafka_tls and settings.kafka_require_tls:
        raise ValueError(
            f"KAFKA_SECURITY_PROTOCOL is {protocol}: outside dev mode (EVERYDOOR_DEV_MODE=false) "
            "the services send nothing to Kafka in clear text; use SASL_SSL (or SSL with a client "
            "certificate), or set KAFKA_ALLOW_PLAINTEXT=true where the network encrypts it")
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if settings.kafka_tls:
        # Verifies the broker's certificate and host name; presents ours for mutual TLS.
        kwargs["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile, certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile)
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings validate it
        kwargs.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                      sasl_plain_username=settings.kafka_sasl_username,
                      sasl_plain_password=settings.kafka_sasl_password.get_secret_value())
    return kwargs


class BrokerWatch:
    """Producer start-up, topics, and fresh-broker recovery for one service process."""

    def __init__(self, *, bootstrap: str, producer: AIOKafkaProducer, engine: AsyncEngine,
                 tables: PlatformTables, topics: Iterable[str], partitions: int, service: str,
                 consumed: Iterable[str] = (), interval_s: float = 5.0,
                 republish_window: timedelta = timedelta(hours=24),
                 grace_s: float = 10.0, replication_factor: int = 1,
                 min_insync_replicas: int = 1, require_replication: bool = False,
                 platform: PlatformSettings | None = None) -> None:
        self.bootstrap = bootstrap
        self._ensure_topics = functools.partial(
            ensure_topics, platform=platform, replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas, require_replication=require_replication)
        self.producer = producer
        self.engine = engine
        self.table = tables.outbox
        self.topics = sorted(set(topics))
        consumed = set(consumed)  # topics this service reads, not writes
        self.published = [t for t in self.topics if t not in consumed]
        self.marker = f"everydoor.marker.{service}"
        self.partitions = partitions
        self.service = service
        self.interval_s = interval_s
        self.republish_window = republish_window
        self.producer_ready = asyncio.Event()
        self.state = "unknown"  # unknown | ok | unreachable: <error>
        self.grace_s = grace_s
        self.recoveries = 0  # fresh brokers refilled
        self.first_starts = 0  # fresh brokers with nothing to refill
        self.last_requeued = 0
        self._fresh_since: float | None = None

    async def run(self) -> None:
        """Check now and every `interval_s` (supervised: an error is logged and retried)."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage: reported, tried again
                self.state = f"unreachable: {exc!r}"[:300]
                log.warning("%s: broker unreachable (%r); writes wait in the outbox",
                            self.service, exc)
            await asyncio.sleep(self.interval_s)

    async def check(self) -> None:
        """Start the producer if needed and recreate missing topics."""
        if not self.producer_ready.is_set():
            await asyncio.wait_for(self.producer.start(), 15)
            self.producer_ready.set()
            log.info("%s: producer connected", self.service)
        cluster = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 15)
        missing = [t for t in self.topics if not cluster.partitions_for_topic(t)]
        if missing:
            await self._ensure_topics(self.bootstrap, missing, self.partitions)
            log.info("%s: created %d missing topics", self.service, len(missing))
        self.state = "ok"

    async def recover_if_fresh(self) -> bool:
        """Called by the active relay before each claim; False means "publish nothing now".

        A broker without this service's marker topic has never seen the service or lost
        everything since (topics a relay auto-created again do not hide that). If this
        service's outbox has rows sent within the window, the broker lost them: the relay
        recreates its topics empty and first waits `grace_s`, so that consumers still reading at
        their old positions fall back to the start of the empty partitions instead of skipping
        what comes next (whether this process is new or not: a peer's consumers may be old);
        then it requeues those rows (sent again, in id order, before anything newer) and
        creates the marker. With nothing sent before, the marker is created at once.
        """
        cluster = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 15)
        if not await self._topics_ready(cluster):
            return False
        if self.marker in cluster.topics():
            return True
        now = time.monotonic()
        if self._fresh_since is None:
            if not await self._sent_within_window():
                await self._ensure_topics(self.bootstrap, [self.marker], 1)
                self.first_starts += 1
                return True
            self._fresh_since = now
            log.warning("%s: the broker lost this service's topics (no marker topic): waiting "
                        "%.0f s for consumers to rewind, then publishing the outbox again",
                        self.service, self.grace_s)
            await self._ensure_topics(self.bootstrap, self.topics, self.partitions)
        if now - self._fresh_since < self.grace_s:
            return False
        requeued = await self.republish(self.published)
        await self._ensure_topics(self.bootstrap, [self.marker], 1)
        self._fresh_since = None
        self.recoveries += 1
        self.last_requeued = requeued
        log.warning("%s: requeued %d outbox rows sent within %s for the fresh broker",
                    self.service, requeued, self.republish_window)
        return True

    async def _topics_ready(self, cluster: Any) -> bool:
        """Whether every topic this service publishes exists as the producer believes. A
        broker that lost its topics accepts records for partitions it no longer has and
        nobody can read them (the embedded Tansu does), and one that auto-created a topic may
        have given it another partition count: so missing topics are created first, and the
        producer's metadata is refreshed whenever it differs from the broker's."""
        own = self.published
        missing = [t for t in own if not cluster.partitions_for_topic(t)]
        if missing:
            await self._ensure_topics(self.bootstrap, missing, self.partitions)
            log.info("%s: created %d missing topics before publishing", self.service,
                     len(missing))
        cached = self.producer.client.cluster
        if missing or any(cached.partitions_for_topic(t) not in (None, cluster.partitions_for_topic(t))
                          for t in own):
            await asyncio.wait_for(self.producer.client.force_metadata_update(), 15)
        return not missing  # after creating, the next round checks again

    async def _sent_within_window(self) -> bool:
        t = self.table
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(sa.select(sa.literal(1)).where(sa.exists().where(
                t.c.sent_at.is_not(None), t.c.parked_at.is_(None),
                t.c.created_at >= sa.func.now() - self.republish_window))))

    async def republish(self, topics: list[str]) -> int:
        """Mark this service's sent rows of `topics` unsent (within the window): the relay
        publishes them again in id order."""
        t = self.table
        async with self.engine.begin() as conn:
            return await requeue_sent(
                conn, t, t.c.topic == sa.func.any(sa.literal(topics, sa.ARRAY(sa.Text))),
                t.c.created_at >= sa.func.now() - self.republish_window)
