"""Supervision in-process on the session's broker and database, and helpers that publish what
registry, eligibility and disbursement would."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.eligibility import events as eligibility_events
from services.registry import events as registry_events
from services.supervision.__main__ import spec
from services.supervision.config import Settings
from shared.envelope import Envelope
from tests.support.apps import RunningService, auth, running, unique_prefix
from tests.support.kafka import produce_event
from tests.support.wait import eventually

INDICATORS = {"health_insurance": ("Bảo hiểm y tế", "Health insurance"),
              "housing_quality": ("Chất lượng nhà ở", "Housing quality"),
              "water_source": ("Nguồn nước sinh hoạt", "Domestic water"),
              "latrine": ("Nhà tiêu hợp vệ sinh", "Hygienic latrine")}


def new_commune() -> str:
    """A commune code no other test uses."""
    return f"{random.randint(10000, 99999)}"


@dataclass
class Sup:
    """The running service and the broker it reads."""

    service: RunningService
    bootstrap: str

    @property
    def client(self) -> httpx.AsyncClient:
        """HTTP client of the service (ASGI)."""
        return self.service.client

    def client_from(self, address: str) -> httpx.AsyncClient:
        """A client that connects from another address (the rate limiter counts per client)."""
        transport = httpx.ASGITransport(app=self.service.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    async def publish(self, topic: str, event: Envelope) -> Envelope:
        """Produce an event as its owner would."""
        await produce_event(self.bootstrap, topic, event)
        return event

    async def registered(self, commune: str, *, village: str, head_name: str,
                         national_id: str = "", household_id: str | None = None) -> Envelope:
        """A `registry.household.registered.v1` (with a national ID and birth date inside)."""
        household_id = household_id or str(uuid.uuid4())
        snapshot = registry_events.HouseholdSnapshotV1(
            household_id=household_id, version=1, area_type="rural",
            location=registry_events.Location(province_code=commune[:2], commune_code=commune,
                                              village=village),
            head_name=head_name, members=[registry_events.MemberV1(
                member_id=str(uuid.uuid4()), full_name=head_name,
                national_id=national_id or f"0{random.randint(10**10, 10**11 - 1)}",
                date_of_birth="1971-03-09", sex="female", relation="head")])
        payload = registry_events.HouseholdRegisteredV1(household_id=household_id, version=1,
                                                        household=snapshot,
                                                        actor="commune_officer:t")
        return await self.publish(registry_events.TOPIC, Envelope(
            type=registry_events.HOUSEHOLD_REGISTERED, source=registry_events.SOURCE,
            subject=household_id, data=payload.model_dump(mode="json")))

    async def decided(self, commune: str, household_id: str, *, village: str, head_name: str,
                      category: str = "poor", deprived: tuple[str, ...] = (
                          "health_insurance", "housing_quality", "water_source"),
                      review_round: str = "2026-periodic", income: int = 1_200_000,
                      decided_at: datetime | None = None, cause: Envelope | None = None,
                      classification_id: str | None = None) -> Envelope:
        """An `eligibility.classification.decided.v1` (provisional)."""
        payload = eligibility_events.ClassificationDecidedV1(
            classification_id=classification_id or str(uuid.uuid4()), household_id=household_id,
            category=category, status="provisional", ruleset_id="vn-2022-2025",
            review_round=review_round, area_type="rural", province_code=commune[:2],
            commune_code=commune, village=village, head_name=head_name,
            decided_at=decided_at or datetime.now(UTC),
            explanation=eligibility_events.ExplanationV1(
                ruleset_id="vn-2022-2025", area_type="rural", income_per_capita_vnd=income,
                income_line_vnd=1_500_000, deprivation_count=len(deprived), threshold=3,
                deprived=[eligibility_events.Indicator(code=c, name_vi=INDICATORS[c][0],
                                                       name_en=INDICATORS[c][1])
                          for c in deprived]))
        env = Envelope(type=eligibility_events.CLASSIFICATION_DECIDED,
                       source=eligibility_events.SOURCE, subject=household_id,
                       data=payload.model_dump(mode="json"))
        if cause is not None:
            env = cause.caused(type=env.type, source=env.source, data=env.data)
        return await self.publish(eligibility_events.TOPIC, env)

    async def timeline(self, household_id: str, *, view: str = "list",
                       role: str = "auditor", scope: str = "VN") -> httpx.Response:
        """GET the household's timeline."""
        return await self.client.get(f"/v1/households/{household_id}/timeline",
                                     params={"view": view}, headers=auth(role, scope))

    async def seen(self, household_id: str, event_id: str) -> dict[str, Any]:
        """Wait until the event is in the household's timeline; return the entry."""

        async def probe() -> dict[str, Any] | None:
            r = await self.timeline(household_id)
            if r.status_code != 200:
                return None
            return next((e for e in r.json()["events"] if e["event_id"] == event_id), None)

        return await eventually(probe, timeout=20, message=f"event {event_id} in the timeline")

    async def commune_list(self, commune: str, n: int = 3) -> list[dict[str, str]]:
        """`n` households of a fresh commune in two villages, registered and provisionally
        classified, seen by supervision."""
        out = []
        for i in range(n):
            village = "Thôn Đông" if i % 2 == 0 else "Thôn Tây"
            head = f"Nguyễn Thị {chr(65 + i)}{random.randint(100, 999)}"
            national_id = f"0{random.randint(10**10, 10**11 - 1)}"
            reg = await self.registered(commune, village=village, head_name=head,
                                        national_id=national_id)
            dec = await self.decided(commune, reg.subject or "", village=village, head_name=head,
                                     category="poor" if i % 3 != 2 else "near_poor",
                                     deprived=("health_insurance", "housing_quality",
                                               "water_source") if i % 3 != 2 else ("latrine",),
                                     cause=reg)
            out.append({"household_id": reg.subject or "", "village": village, "head_name": head,
                        "national_id": national_id, "decision_event": dec.id,
                        "classification_id": dec.data["classification_id"]})
        for h in out:
            await self.seen(h["household_id"], h["decision_event"])
        return out


def settings(**kw: Any) -> Settings:
    """Fast-reacting settings for tests."""
    return Settings(consumer_group_prefix=unique_prefix(), consumer_session_timeout_ms=2000,
                    consumer_heartbeat_interval_ms=300, relay_poll_interval_s=0.05,
                    posting_close_interval_s=0.5, **kw)


@pytest.fixture(scope="package")
async def sup(servers):
    """Supervision in-process (migrations, relay, consumers, posting closer)."""
    async with running(spec(settings())) as service:
        yield Sup(service=service, bootstrap=servers.bootstrap_servers)
