"""Public posting rules: the window in working days, masked references, approval conditions."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

VN_TZ = timezone(timedelta(hours=7), "ICT")  # Vietnam has no daylight saving time


class PostingError(Exception):
    """A posting rule was broken (the message says which)."""


def close_after_working_days(opened_at: datetime, *, days: int, holidays: Iterable[date] = (),
                             office_close: time = time(17, 0)) -> datetime:
    """End of the `days`-th working day (Mon–Fri, not a holiday) after the opening day, local
    time; returned in UTC. The opening day itself does not count (residents need whole days)."""
    if days < 1:
        raise PostingError("a posting window needs at least one working day")
    off = set(holidays)
    day = opened_at.astimezone(VN_TZ).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in off:
            counted += 1
    return datetime.combine(day, office_close, tzinfo=VN_TZ).astimezone(UTC)


def is_open(*, status: str, closes_at: datetime, now: datetime) -> bool:
    """Whether residents may still file complaints on the posting."""
    return status == "open" and now < closes_at


def masked_reference(household_id: str, *, key: str) -> str:
    """A short public reference for a household that reveals nothing about it: a keyed hash
    (HMAC-SHA-256), so nobody without the key can link a posted reference to a household id
    seen elsewhere (a bank topic, a leaked export) by hashing candidate ids."""
    digest = hmac.new(key.encode(), household_id.encode(), hashlib.sha256).hexdigest().upper()
    return f"HGD-{digest[:4]}-{digest[4:8]}"


@dataclass(frozen=True)
class ComplaintState:
    """What approval needs to know of one complaint on the posting."""

    complaint_id: str
    status: str


def approval_blockers(complaints: Iterable[ComplaintState], *,
                      carried_over: Iterable[str]) -> list[str]:
    """Ids of complaints that are neither resolved (resolved/rejected/closed) nor carried over."""
    carry = set(carried_over)
    return [c.complaint_id for c in complaints
            if c.status not in ("resolved", "rejected", "closed") and c.complaint_id not in carry]


def approval_parts(approved: Sequence[T], excluded: Sequence[U], *,
                   size: int) -> list[tuple[list[T], list[U]]]:
    """Split an approval into parts of at most `size` approved and `size` excluded items, so
    no event outgrows the broker's message limit (a commune list of ~9,000 households would
    pass 1 MiB in one). Always at least one part."""
    if size < 1:
        raise ValueError("size must be at least 1")
    n = max(1, -(-len(approved) // size), -(-len(excluded) // size))
    return [(list(approved[i * size:(i + 1) * size]), list(excluded[i * size:(i + 1) * size]))
            for i in range(n)]
