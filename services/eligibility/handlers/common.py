"""What every use case needs: the service context (rule sets, programmes, outbox), errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import domain, events
from services.eligibility.config import Settings
from services.eligibility.domain import programmes as programme_rules
from shared.envelope import Envelope, utcnow
from shared.outbox import Outbox
from shared.problems import Problem
from shared.runtime import Runtime

RULESET_SUFFIXES = (".yaml", ".yml", ".json")


def parse_document(name: str, text: str) -> Any:
    """A YAML or JSON document (by the file name's suffix) as data."""
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


def read_document(path: Path) -> Any:
    """A YAML or JSON file as data."""
    return parse_document(path.name, path.read_text(encoding="utf-8"))


def read_rulesets(dirs: list[Path]) -> list[tuple[str, str]]:
    """(file name, text) of every rule-set file of the folders."""
    files = [(path.name, path.read_text(encoding="utf-8"))
             for folder in dirs for path in sorted(folder.iterdir())
             if path.is_file() and path.suffix in RULESET_SUFFIXES]
    if not files:
        raise domain.RuleSetError(f"no rule-set files in {', '.join(map(str, dirs))}")
    return files


def build_rulebook(files: list[tuple[str, str]]) -> domain.RuleBook:
    """Validate rule-set files given as (name, text) (RuleSetError names file and field)."""
    docs: list[tuple[str, Any]] = []
    for name, text in files:
        try:
            docs.append((name, parse_document(name, text)))
        except (ValueError, yaml.YAMLError) as exc:
            raise domain.RuleSetError(f"{name}: not valid YAML/JSON: {exc}") from exc
    return domain.build(docs)


def load_rulebook(dirs: list[Path]) -> domain.RuleBook:
    """Read and validate every rule-set file of the folders."""
    return build_rulebook(read_rulesets(dirs))


def load_catalogue(path: Path) -> programme_rules.Catalogue:
    """Read and validate the programmes file."""
    return programme_rules.parse(read_document(path))


@dataclass
class Service:
    """The service-wide context use cases run in."""

    settings: Settings
    rulebook: domain.RuleBook
    catalogue: programme_rules.Catalogue
    outbox: Outbox
    _programmes: dict[tuple[domain.Standing, date], tuple[dict[str, Any], ...]] = field(
        default_factory=dict, init=False, repr=False)
    _programmes_for: tuple[Any, Any] | None = field(default=None, init=False, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        """The local calendar (recognition dates, "just escaped" expiry)."""
        return ZoneInfo(self.settings.timezone)

    def today(self) -> date:
        """Today in the local calendar."""
        return utcnow().astimezone(self.tz).date()

    def local_date(self, ts: datetime) -> date:
        """The local calendar day of a timestamp."""
        return ts.astimezone(self.tz).date()

    def indicator_names(self) -> dict[str, str]:
        """English indicator names by code, from every rule set (for programme reasons)."""
        return {i.code: i.name_en for rs in self.rulebook.all for i in rs.indicators}

    def programmes(self, standing: domain.Standing, today: date) -> list[dict[str, Any]]:
        """Programme eligibility (plain data) for a recognized standing on `today`.

        Remembered per (standing, day) for the rule book and catalogue in force: a batch's
        households mostly share a handful of standings (most have none recognized yet), and
        the reasons are the same words each time. The dicts are shared: read, never change."""
        key = (standing, today)
        basis = self._programmes_for
        if basis is None or basis[0] is not self.rulebook or basis[1] is not self.catalogue:
            self._programmes_for = (self.rulebook, self.catalogue)
            self._programmes.clear()
        cached = self._programmes.get(key)
        if cached is None:
            if len(self._programmes) >= 10_000:
                self._programmes.clear()
            cached = tuple(p.as_dict() for p in programme_rules.evaluate(
                self.catalogue, standing, today=today, indicator_names=self.indicator_names()))
            self._programmes[key] = cached
        return list(cached)

    async def emit(self, session: AsyncSession, *evs: Envelope) -> None:
        """Write events into the outbox in the caller's transaction."""
        await self.outbox.add(session, events.TOPIC, *evs)


def service_of(rt: Runtime) -> Service:
    """The service context of this process (rule sets and programmes loaded and checked once)."""
    if "svc" not in rt.state:
        settings = rt.settings
        assert isinstance(settings, Settings)
        rt.state["svc"] = Service(settings=settings,
                                  rulebook=load_rulebook(settings.rulesets_dirs),
                                  catalogue=load_catalogue(settings.programmes_file),
                                  outbox=rt.outbox)
    return rt.state["svc"]


def invalid(field: str, message: str) -> Problem:
    """422 naming the field."""
    return Problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


def jsonable(value: Any) -> Any:
    """Dates as ISO strings, recursively."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
