"""A household's recognized standing: recognition, escape transitions and "just escaped"."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date

RECOGNIZABLE = ("poor", "near_poor", "middle", "not_poor")
NOT_POOR = ("near_poor", "middle", "not_poor")


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clipped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Standing:
    """What the commune recognized for a household, and since when."""

    category: str | None = None
    recognized_on: date | None = None
    deprived: tuple[str, ...] = ()
    ruleset_id: str | None = None
    escaped_poverty_on: date | None = None
    just_escaped_until: date | None = None
    archived: bool = False

    def just_escaped(self, today: date) -> bool:
        """Recognized no longer poor within the "just escaped" period (POLICY.md §3)."""
        return (self.category is not None and self.category != "poor"
                and self.just_escaped_until is not None and today <= self.just_escaped_until)


@dataclass(frozen=True)
class Transition:
    """A recorded change of recognized standing (escaped poverty / escaped near-poverty)."""

    kind: str
    from_category: str
    to_category: str
    on: date
    just_escaped_until: date | None = None


def recognize(before: Standing, *, category: str, deprived: tuple[str, ...], ruleset_id: str,
              on: date, just_escaped_months: int) -> tuple[Standing, Transition | None]:
    """The standing after the commune recognizes `category` on `on`, and the transition if any.

    A recognized poor household recognized as no longer poor escaped poverty: "just escaped"
    holds for `just_escaped_months` from that day. Falling back into poverty ends it.
    """
    if category not in RECOGNIZABLE:
        raise ValueError(f"a {category} classification cannot be recognized")
    after = replace(before, category=category, recognized_on=on, deprived=deprived,
                    ruleset_id=ruleset_id)
    previous = before.category
    if category == "poor":
        return replace(after, escaped_poverty_on=None, just_escaped_until=None), None
    if previous == "poor":
        until = add_months(on, just_escaped_months)
        return (replace(after, escaped_poverty_on=on, just_escaped_until=until),
                Transition("escaped_poverty", previous, category, on, until))
    if previous == "near_poor" and category in ("middle", "not_poor"):
        return after, Transition("escaped_near_poverty", previous, category, on,
                                 before.just_escaped_until)
    return after, None
