"""Cadres, their assignments to villages and the door-to-door visit log. Standard library only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from services.registry.domain.households import Violation

ORGANISATIONS = ("party_cell", "womens_union", "farmers_association", "veterans_association",
                 "youth_union", "commune_staff")
OUTCOMES = ("surveyed", "not_home", "refused", "moved", "deceased", "follow_up")
# Outcomes where nobody was reached: enough of them (and nothing else) in a round means "not
# reached after N attempts" in the coverage.
UNREACHED = ("not_home", "refused")
FOLLOW_UP = "follow_up"


@dataclass(frozen=True)
class Period:
    """An assignment's dates: from `start` to `end` inclusive (`end` None: open-ended)."""

    start: date
    end: date | None

    def overlaps(self, other: Period) -> bool:
        """Whether the two periods share at least one day."""
        return ((self.end is None or other.start <= self.end)
                and (other.end is None or self.start <= other.end))


def villages_violations(villages: Sequence[str], *, field: str = "villages") -> list[Violation]:
    """At least one village, each named once."""
    if not villages:
        return [Violation(field, "at least one village is required")]
    seen: set[str] = set()
    out = []
    for i, v in enumerate(villages):
        if v in seen:
            out.append(Violation(f"{field}.{i}", f"village {v!r} is listed twice"))
        seen.add(v)
    return out


def period_violations(period: Period, *, start_field: str = "valid_from",
                      end_field: str = "valid_to") -> list[Violation]:
    """An assignment ends on or after the day it starts."""
    if period.end is not None and period.end < period.start:
        return [Violation(end_field, f"{period.end.isoformat()} is before {start_field} "
                                     f"{period.start.isoformat()}")]
    return []


def overlapping_villages(*, villages: Iterable[str], period: Period,
                         existing: Iterable[tuple[str, Period, Iterable[str]]]) -> dict[str, str]:
    """Village → id of an existing assignment of the same cadre that covers it on a shared day.

    A cadre is assigned to a village at most once on any day (several cadres may share one
    village; one cadre may hold several villages)."""
    wanted = set(villages)
    out: dict[str, str] = {}
    for assignment_id, other, other_villages in existing:
        if other.overlaps(period):
            for v in sorted(wanted & set(other_villages)):
                out.setdefault(v, assignment_id)
    return out


def visit_violations(*, visited_on: date, outcome: str, next_visit_due: date | None,
                     today: date) -> list[Violation]:
    """A visit is not in the future; a follow-up says when the next visit is due, after it."""
    out: list[Violation] = []
    if visited_on > today:
        out.append(Violation("visited_on", f"{visited_on.isoformat()} is in the future"))
    if outcome == FOLLOW_UP and next_visit_due is None:
        out.append(Violation("next_visit_due", "required when the outcome is follow_up"))
    if next_visit_due is not None and next_visit_due <= visited_on:
        out.append(Violation("next_visit_due", f"{next_visit_due.isoformat()} is not after "
                                               f"visited_on {visited_on.isoformat()}"))
    return out
