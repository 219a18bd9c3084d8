"""Pure registry rules: households and members. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


class DomainError(ValueError):
    """A rule was broken; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Member:
    """One person in a household."""

    full_name: str
    national_id: str
    date_of_birth: date
    sex: str
    relation: str


@dataclass
class Household:
    """A household as the commune officer records it."""

    area_type: str
    province_code: str
    commune_code: str
    village: str
    members: list[Member] = field(default_factory=list)

    @property
    def head(self) -> Member:
        """The head of household (exactly one)."""
        return next(m for m in self.members if m.relation == "head")


def check_members(members: list[Member], *, today: date) -> None:
    """Exactly one head; birth dates not in the future; national IDs unique in the household."""
    heads = [m for m in members if m.relation == "head"]
    if len(heads) != 1:
        raise DomainError("members", f"exactly one head required, got {len(heads)}")
    seen: set[str] = set()
    for i, m in enumerate(members):
        if m.date_of_birth > today:
            raise DomainError(f"members.{i}.date_of_birth", "is in the future")
        if m.national_id in seen:
            raise DomainError(f"members.{i}.national_id", "appears twice in this household")
        seen.add(m.national_id)
