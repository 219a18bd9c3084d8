"""Change a running service's settings for the length of a block (tests only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def overridden(settings: Any, **values: object) -> Iterator[None]:
    """Set `values` on `settings` (a live service's settings object) and restore them after."""
    saved = {k: getattr(settings, k) for k in values}
    for k, v in values.items():
        setattr(settings, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(settings, k, v)
