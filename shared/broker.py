"""The service's view of the broker: starts the producer when the broker is reachable (a
service starts and takes writes during an outage), keeps its topics there, and notices a fresh
broker that lost them (the embedded memory-only one after a restart) and republishes the outbox
so nothing in flight is lost; consumers' inboxes absorb the repeats."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import PlatformTables
from shared.infra import ensure_topics

log = logging.getLogger("everydoor.broker")


class BrokerWatch:
    """Producer start-up, topics, and fresh-broker recovery for one service process."""

    def __init__(self, *, bootstrap: str, producer: AIOKafkaProducer, engine: AsyncEngine,
                 tables: PlatformTables, topics: Iterable[str], partitions: int, service: str,
                 consumed: Iterable[str] = (), interval_s: float = 5.0,
                 republish_window: timedelta = timedelta(hours=24),
                 grace_s: float = 10.0, replication_factor: int = 1,
                 min_insync_replicas: int = 1, require_replication: bool = False) -> None:
        self.bootstrap = bootstrap
        self._ensure_topics = functools.partial(
            ensure_topics, replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas, require_replication=require_replication)
        self.producer = producer
        self.engine = engine
        self.table = tables.outbox
        self.topics = sorted(set(topics))
        self.consumed = set(consumed)  # topics this service reads, not writes
        self.marker = f"everydoor.marker.{service}"
        self.partitions = partitions
        self.service = service
        self.interval_s = interval_s
        self.republish_window = republish_window
        self.producer_ready = asyncio.Event()
        self.last_check: float | None = None
        self.state = "unknown"  # unknown | ok | unreachable: <error>
        self.grace_s = grace_s
        self.recoveries = 0  # fresh brokers refilled
        self.first_starts = 0  # fresh brokers with nothing to refill
        self.last_requeued = 0
        self._fresh_since: float | None = None
        self._seen_marker = False  # the grace is for a broker that changed under this process

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
            self.last_check = time.monotonic()
            await asyncio.sleep(self.interval_s)

    async def check(self) -> None:
        """Start the producer if needed and recreate missing topics."""
        if not self.producer_ready.is_set():
            await asyncio.wait_for(self.producer.start(), 15)
            self.producer_ready.set()
            log.info("%s: producer connected", self.service)
        missing = [t for t in self.topics if t not in await self._existing()]
        if missing:
            await self._ensure_topics(self.bootstrap, missing, self.partitions)
            log.info("%s: created %d missing topics", self.service, len(missing))
        self.state = "ok"

    async def recover_if_fresh(self) -> bool:
        """Called by the active relay before each claim; False means "publish nothing now".

        A broker without this service's marker topic has never seen the service or lost
        everything since (topics a relay auto-created again do not hide that). Then the relay
        first waits `grace_s` (only if this process had seen the marker before: at start-up
        everyone reads from the start) with its topics recreated empty, so that consumers still
        reading at their old positions fall back to the start of the empty partitions instead
        of skipping what comes next; then the rows sent within the window are requeued (the
        relay sends them again, in id order, before anything newer) and the marker created.
        """
        cluster = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 15)
        if self.marker in cluster.topics():
            self._seen_marker = True
            return True
        now = time.monotonic()
        if self._fresh_since is None:
            self._fresh_since = now
            if self._seen_marker:
                log.warning("%s: the broker lost this service's topics (no marker topic): waiting "
                            "%.0f s for consumers to rewind, then publishing the outbox again",
                            self.service, self.grace_s)
            await self._ensure_topics(self.bootstrap, self.topics, self.partitions)
        if self._seen_marker and now - self._fresh_since < self.grace_s:
            return False
        requeued = await self.republish([t for t in self.topics if t not in self.consumed])
        await self._ensure_topics(self.bootstrap, [self.marker], 1)
        self._fresh_since = None
        self._seen_marker = True
        if requeued:
            self.recoveries += 1
            self.last_requeued = requeued
            log.warning("%s: requeued %d outbox rows sent within %s for the fresh broker",
                        self.service, requeued, self.republish_window)
        else:
            self.first_starts += 1
        return True

    async def _existing(self) -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        await asyncio.wait_for(admin.start(), 15)
        try:
            return set(await admin.list_topics())
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    async def republish(self, topics: list[str]) -> int:
        """Mark this service's sent rows of `topics` unsent (within the window): the relay
        publishes them again in id order."""
        t = self.table
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(t).where(
                    t.c.topic == sa.func.any(sa.literal(topics, sa.ARRAY(sa.Text))),
                    t.c.sent_at.is_not(None), t.c.parked_at.is_(None),
                    t.c.created_at >= sa.func.now() - self.republish_window)
                .values(sent_at=None))
        return int(result.rowcount or 0)
