"""The registry in-process (real broker + PostgreSQL) and helpers to build bodies and read events."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from services.registry import events
from services.registry.__main__ import spec
from services.registry.config import Settings
from tests.support.apps import RunningService, auth, running, unique_prefix
from tests.support.kafka import collect, header

_ids = itertools.count(random.randint(10**9, 9 * 10**9) * 10)

ADMIN = "national_admin"
HANOI, HANOI_WARD = "01", "01001"
TUYEN_QUANG, LAM_BINH = "08", "08001"


def nid() -> str:
    """A fresh 12-digit national ID (unique within the session)."""
    return f"{next(_ids) % 10**12:012d}"


def officer(commune: str = HANOI_WARD) -> dict[str, str]:
    """A commune officer of `commune`."""
    return auth("commune_officer", commune)


def admin() -> dict[str, str]:
    """A national admin."""
    return auth(ADMIN)


def person(name: str = "Nguyễn Văn An", relation: str = "head", **kw: Any) -> dict[str, Any]:
    """A member body."""
    return {"full_name": name, "national_id": kw.pop("national_id", None) or nid(),
            "date_of_birth": kw.pop("date_of_birth", "1980-03-04"),
            "sex": kw.pop("sex", "male"), "relation": relation, **kw}


def body(*, commune: str = HANOI_WARD, province: str = HANOI, village: str | None = None,
         members: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    """A valid POST /v1/households body (a unique village name unless given)."""
    return {"area_type": "rural",
            "location": {"province_code": province, "commune_code": commune,
                         "village": village or f"Thôn {uuid.uuid4().hex[:8]}"},
            "members": members or [person(), person("Trần Thị Bình", "spouse", sex="female")],
            **kw}


def survey(**kw: Any) -> dict[str, Any]:
    """A valid POST …/surveys body."""
    return {"survey_date": "2025-09-15", "review_round": "2025", "income_per_capita_vnd": 1_200_000,
            "deprivations": {"health_insurance": True, "water_source": False, "latrine": True},
            "facts": {"housing_area_m2": 24.5}, "surveyor": "Lò Văn Khánh", **kw}


@dataclass(frozen=True)
class Published:
    """One event as it landed on registry.households."""

    type: str
    data: dict
    id: str
    key: bytes | None
    causation_id: str | None


async def published(bootstrap: str, household_id: str, count: int,
                    timeout: float = 20.0) -> list[Published]:
    """The first `count` events about a household on registry.households (at least that many)."""
    def mine(records: list) -> list:
        return [r for r in records if header(r, "ce_subject") == household_id]

    records = await collect(bootstrap, events.TOPIC, until=lambda rs: len(mine(rs)) >= count,
                            timeout=timeout)
    return [Published(header(r, "ce_type") or "", json.loads(r.value), header(r, "ce_id") or "",
                      r.key, header(r, "ce_causationid") or None) for r in mine(records)]


async def outbox_rows(svc: RunningService) -> int:
    """How many events the registry has written (its outbox is its event log)."""
    async with svc.runtime.engine.connect() as conn:
        return int(await conn.scalar(sa.text("select count(*) from outbox")) or 0)


async def count_households(svc: RunningService) -> int:
    """Households in the registry database."""
    async with svc.runtime.engine.connect() as conn:
        return int(await conn.scalar(sa.text("select count(*) from household")) or 0)


@pytest.fixture(scope="package")
async def registry(servers):
    """The registry in-process against the real broker and database (small import batches)."""
    settings = Settings(consumer_group_prefix=unique_prefix(), consumer_session_timeout_ms=2000,
                        consumer_heartbeat_interval_ms=300, relay_poll_interval_s=0.05,
                        import_batch_size=7, dci_max_page_size=5,
                        dci_callback_prefixes=["http://127.0.0.1:"],
                        dci_callback_backoff_s=0.2, dci_poll_interval_s=0.05)
    async with running(spec(settings)) as svc:
        yield svc
