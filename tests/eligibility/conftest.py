"""Eligibility in-process on the real broker and PostgreSQL, driven by registry and supervision
events exactly as those services publish them."""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.eligibility import events as eligibility_events
from services.eligibility.__main__ import spec
from services.eligibility.config import RULESETS_DIR, Settings
from services.registry import events as registry
from services.supervision import events as supervision
from shared.envelope import Envelope
from tests.support.apps import RunningService, auth, running, unique_prefix
from tests.support.kafka import collect, header, produce_event
from tests.support.wait import eventually

GOLDEN_DEPRIVED = ("health_insurance", "housing_area", "latrine")
INDICATORS_2022 = ("employment", "dependants", "nutrition", "health_insurance", "adult_education",
                   "school_attendance", "housing_quality", "housing_area", "water_source",
                   "latrine", "telecom", "information_access")


def admin() -> dict[str, str]:
    """A national admin token."""
    return auth("national_admin")


def new_commune(province: str = "01") -> str:
    """A commune code (5 digits) in the province, unlikely to be used by another test."""
    return f"{province}{random.randint(0, 999):03d}"


def answers(deprived: tuple[str, ...] = GOLDEN_DEPRIVED,
            codes: tuple[str, ...] = INDICATORS_2022) -> dict[str, bool]:
    """A survey's deprivation answers: every indicator of `codes`, true for `deprived`."""
    return {c: c in deprived for c in codes}


@dataclass
class Household:
    """A registry household whose events a test publishes one by one (versions increase)."""

    bootstrap: str
    commune: str
    province: str = "01"
    area_type: str = "rural"
    village: str = "Thôn Nà Sản"
    head_name: str = "Lò Văn Thắng"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 0
    members: list[dict[str, Any]] = field(default_factory=list)
    status: str = "active"

    def snapshot(self) -> registry.HouseholdSnapshotV1:
        return registry.HouseholdSnapshotV1(
            household_id=self.id, version=self.version, status=self.status,  # type: ignore[arg-type]
            area_type=self.area_type,  # type: ignore[arg-type]
            location=registry.Location(province_code=self.province, commune_code=self.commune,
                                       village=self.village),
            head_name=self.head_name, members=[registry.MemberV1(**m) for m in self.members])

    async def publish(self, type_: str, build: Any, *, event_id: str | None = None) -> Envelope:
        """Bump the version and publish `build(version, snapshot)` as registry would."""
        self.version += 1
        payload = build(self.version, self.snapshot())
        env = Envelope(type=type_, source=registry.SOURCE, subject=self.id,
                       data=payload.model_dump(mode="json"), **({"id": event_id} if event_id else {}))
        await produce_event(self.bootstrap, registry.TOPIC, env)
        return env

    async def register(self) -> Envelope:
        self.members = [member(self.head_name, "head")]
        return await self.publish(registry.HOUSEHOLD_REGISTERED, lambda v, s: (
            registry.HouseholdRegisteredV1(household_id=self.id, version=v, household=s)))

    async def survey(self, *, income: int, deprived: tuple[str, ...] = GOLDEN_DEPRIVED,
                     day: date = date(2026, 3, 10), codes: tuple[str, ...] = INDICATORS_2022,
                     survey_id: str | None = None, is_current: bool = True) -> Envelope:
        sid = survey_id or str(uuid.uuid4())
        return await self.publish(registry.HOUSEHOLD_SURVEYED, lambda v, s: (
            registry.HouseholdSurveyedV1(household_id=self.id, version=v, household=s,
                                         is_current=is_current, survey=registry.SurveyV1(
                                             survey_id=sid, survey_date=day,
                                             review_round=f"{day.year}-periodic",
                                             income_per_capita_vnd=income,
                                             deprivations=answers(deprived, codes)))))

    async def add_member(self, name: str) -> Envelope:
        m = member(name, "child")
        self.members.append(m)
        return await self.publish(registry.MEMBER_ADDED, lambda v, s: registry.MemberChangedV1(
            household_id=self.id, version=v, household=s, member=registry.MemberV1(**m)))

    async def update(self, reason: str = "correction", **fields: Any) -> Envelope:
        changes = [registry.FieldChange(field=k, before=getattr(self, k), after=val)
                   for k, val in fields.items()]
        for k, val in fields.items():
            setattr(self, k, val)
        return await self.publish(registry.HOUSEHOLD_UPDATED, lambda v, s: (
            registry.HouseholdUpdatedV1(household_id=self.id, version=v, household=s,
                                        changes=changes, reason=reason)))

    async def archive(self) -> Envelope:
        self.status = "archived"
        return await self.publish(registry.HOUSEHOLD_ARCHIVED, lambda v, s: (
            registry.HouseholdArchivedV1(household_id=self.id, version=v, household=s,
                                         reason="moved away")))


def member(name: str, relation: str) -> dict[str, Any]:
    """A member record as the registry snapshot carries it."""
    return {"member_id": str(uuid.uuid4()), "full_name": name,
            "national_id": f"{random.randint(10**11, 10**12 - 1)}",
            "date_of_birth": "1980-05-17", "sex": "male", "relation": relation}


@dataclass
class Stack:
    """The running service, where its rule sets live, and helpers to drive it."""

    service: RunningService
    bootstrap: str
    rulesets_dir: Path

    @property
    def client(self):  # noqa: ANN201 - httpx.AsyncClient
        """HTTP client of the service."""
        return self.service.client

    def household(self, commune: str | None = None, **kw: Any) -> Household:
        """A new household (nothing published yet)."""
        province = kw.get("province", "01")
        return Household(bootstrap=self.bootstrap, commune=commune or new_commune(province), **kw)

    async def classification(self, household_id: str, *, where: Any = None,
                             timeout: float = 20, message: str = "classification") -> dict:
        """Wait until the household's current classification satisfies `where`; return it."""

        async def probe() -> dict | None:
            r = await self.client.get(f"/v1/households/{household_id}/classification",
                                      headers=admin())
            if r.status_code != 200:
                return None
            body = r.json()
            return body if where is None or where(body) else None

        return await eventually(probe, timeout=timeout, message=message)

    async def programs(self, household_id: str) -> dict[str, dict]:
        """Programme code → {eligible, reason, …} from the API."""
        r = await self.client.get(f"/v1/households/{household_id}/programs", headers=admin())
        assert r.status_code == 200, r.text
        return {p["program_code"]: p for p in r.json()["programs"]}

    async def approve(self, commune: str, items: list[tuple[str, str, str]], *,
                      approved_at: datetime | None = None) -> str:
        """Publish supervision's approval of a posting with (household, classification, category)."""
        posting_id = str(uuid.uuid4())
        payload = supervision.PostingApprovedV1(
            posting_id=posting_id, commune_code=commune, review_round="2026-periodic",
            approved_at=approved_at or datetime.now(UTC),
            items=[supervision.PostingItem(household_id=h, classification_id=c, category=cat)
                   for h, c, cat in items], actor="commune_chair:test")
        await produce_event(self.bootstrap, supervision.TOPIC, Envelope(
            type=supervision.POSTING_APPROVED, source=supervision.SOURCE,
            data=payload.model_dump(mode="json")))
        return posting_id

    async def decisions(self, household_id: str, *, until: Any, timeout: float = 20) -> list[dict]:
        """This household's events on eligibility.decisions (type + payload), read until `until`."""

        def mine(records: list) -> list[dict]:
            return [{"type": header(r, "ce_type"), "id": header(r, "ce_id"),
                     "causation": header(r, "ce_causationid"), "key": r.key,
                     **json.loads(r.value)}
                    for r in records if header(r, "ce_subject") == household_id]

        records = await collect(self.bootstrap, eligibility_events.TOPIC,
                                until=lambda rs: until(mine(rs)), timeout=timeout)
        return mine(records)


def test_settings(rulesets_dir: Path, **kw: Any) -> Settings:
    """Fast-reacting settings for tests."""
    return Settings(rulesets_dirs=[rulesets_dir], consumer_group_prefix=unique_prefix(),
                    consumer_session_timeout_ms=2000, consumer_heartbeat_interval_ms=300,
                    relay_poll_interval_s=0.05, reevaluation_batch_size=2, **kw)


@pytest.fixture(scope="package")
async def stack(servers):
    """Eligibility in-process, reading rule sets from a copy the tests may add files to."""
    folder = Path(tempfile.mkdtemp(prefix="elig-rulesets-"))
    for path in RULESETS_DIR.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    async with running(spec(test_settings(folder))) as service:
        for consumer in service.runtime.consumers:
            await eventually(consumer.assigned.is_set, timeout=30,
                             message=f"{consumer.name} joined its group")
        yield Stack(service=service, bootstrap=servers.bootstrap_servers, rulesets_dir=folder)
    shutil.rmtree(folder, ignore_errors=True)
