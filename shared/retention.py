"""Retention: the outbox, inbox and dead-letter tables are pruned past their horizons so they
do not grow forever. One replica prunes at a time (a transaction-scoped advisory lock), in
bounded batches so no statement holds locks for long.

- outbox: rows sent longer ago than `outbox_days` (never unsent or parked ones);
- inbox: rows received longer ago than `inbox_days`, which must exceed what the broker still
  retains plus the republish window (an older repeat could otherwise be applied again);
- dead letters: only handled ones (replayed or discarded) older than `dead_letter_days`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import PlatformTables
from shared.outbox import advisory_key
from shared.telemetry import Metrics

log = logging.getLogger("everydoor.retention")


@dataclass
class Retention:
    """Prunes one service's platform tables."""

    engine: AsyncEngine
    tables: PlatformTables
    service: str
    metrics: Metrics
    outbox_days: float = 30.0
    inbox_days: float = 14.0
    dead_letter_days: float = 90.0
    interval_s: float = 3600.0
    batch: int = 5000
    last_run: dict[str, int] = field(default_factory=dict)

    async def run(self) -> None:
        """Prune now and every `interval_s` (supervised: an error is logged and retried)."""
        while True:
            await self.prune()
            await asyncio.sleep(self.interval_s)

    async def prune(self) -> dict[str, int]:
        """One pass over the three tables; returns the rows removed per table (all zero when
        another replica holds the lock)."""
        removed = {"outbox": 0, "inbox": 0, "dead_letter": 0}
        for name, statement, days in (("outbox", self._outbox(), self.outbox_days),
                                      ("inbox", self._inbox(), self.inbox_days),
                                      ("dead_letter", self._dead_letters(), self.dead_letter_days)):
            while True:
                async with self.engine.begin() as conn:
                    if not await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(
                            advisory_key(f"everydoor.retention.{self.service}")))):
                        return removed  # another replica is pruning
                    result = await conn.execute(statement, {"days": days, "n": self.batch})
                n = int(result.rowcount or 0)
                removed[name] += n
                if n:
                    self.metrics.retention_pruned.labels(name).inc(n)
                if n < self.batch:
                    break
        if any(removed.values()):
            log.info("%s: retention removed %s", self.service, removed)
        self.last_run = removed
        return removed

    def _outbox(self) -> sa.TextClause:
        # Walks the primary key from the oldest row: ids follow time, so the walk stops at the
        # first rows inside the horizon instead of scanning the table.
        return sa.text(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL "
            "AND parked_at IS NULL AND created_at < now() - CAST(:days AS float8) * interval '1 day' "
            "AND id <= (SELECT coalesce(max(id), 0) FROM (SELECT id FROM outbox ORDER BY id "
            "LIMIT :n) AS oldest) ORDER BY id LIMIT :n)")

    def _inbox(self) -> sa.TextClause:
        return sa.text(
            "DELETE FROM inbox WHERE ctid IN (SELECT ctid FROM inbox WHERE received_at < now() "
            "- CAST(:days AS float8) * interval '1 day' ORDER BY received_at LIMIT :n)")

    def _dead_letters(self) -> sa.TextClause:
        return sa.text(
            "DELETE FROM dead_letter WHERE id IN (SELECT id FROM dead_letter WHERE "
            "(replayed_at IS NOT NULL OR discarded_at IS NOT NULL) AND created_at < now() - "
            "CAST(:days AS float8) * interval '1 day' ORDER BY id LIMIT :n)")
