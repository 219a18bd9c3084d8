"""Shared by the benches: the machine-readable result line `make bench` (bench/run.py) collects,
and timing a consumer while it drains a backlog published up front."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import asyncpg

STALL_S = 120  # no progress at all for this long → the drain fails with where it stopped


def report(bench: str, **figures: object) -> None:
    """One `RESULT {json}` line on stdout (bench/run.py parses it; the human output stays)."""
    print("RESULT " + json.dumps({"bench": bench, **figures}, default=str), flush=True)


async def count_or_zero(conn: asyncpg.Connection, sql: str) -> int:
    """A count; 0 while the table does not exist yet (the service migrates it at start-up)."""
    try:
        return int(await conn.fetchval(sql))
    except asyncpg.UndefinedTableError:
        return 0


async def drain(count: Callable[[], Awaitable[int]], target: int, *, poll: float = 0.05,
                what: str = "items") -> dict[str, float]:
    """Poll `count()` until it reaches `target`. Timed from the first progress seen to the end,
    so the consumer's start-up and group join stay outside the timed part, as in the baseline:
    {"items": items done in the timed part, "seconds", "rate": items/s}."""
    start = last = await count()
    t_first = t_change = time.perf_counter()
    c_first: int | None = None
    while True:
        c = await count()
        now = time.perf_counter()
        if c != last:
            last, t_change = c, now
        if c_first is None and c > start:
            t_first, c_first = now, c
        if c >= target:
            break
        if now - t_change > STALL_S:
            raise TimeoutError(f"drain stalled for {STALL_S} s at {c}/{target} {what}")
        await asyncio.sleep(poll)
    items = c - (c_first if c_first is not None else start)
    seconds = now - t_first
    if items <= 0 or seconds <= 0:
        raise RuntimeError(f"{target} {what} drained between two polls: too few to time, "
                           f"use a larger size")
    return {"items": items, "seconds": seconds, "rate": items / seconds}
