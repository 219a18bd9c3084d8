"""Wait on a condition with a deadline (never sleep a fixed time)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(probe: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05,
                     message: str = "condition") -> Any:
    """Call `probe` (sync or async) until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)


def eventually_sync(probe: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05,
                    message: str = "condition") -> Any:
    """`eventually` for synchronous tests: call `probe` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last value: {last!r})")
        time.sleep(interval)
