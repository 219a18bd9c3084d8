"""What the chaos test feeds the platform and what it must get back: households with varied
surveys and the category the pure eligibility rules give them, the events each household's
timeline must hold, and readers of the platform's public surfaces (HTTP, the bank's topics)."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from services.demo.households import INDICATORS_2022, household
from services.demo.seed import COMMUNE, PROVINCE, REVIEW_ROUND, SURVEY_DATE, VILLAGES, Client, items
from services.disbursement import events as disbursement
from services.eligibility import domain
from services.eligibility import events as eligibility
from services.eligibility.config import RULESETS_DIR
from services.eligibility.handlers.common import load_rulebook
from services.registry import events as registry
from services.supervision import events as supervision

EVERY_HOUSEHOLD = Counter({
    registry.HOUSEHOLD_REGISTERED: 1, registry.HOUSEHOLD_SURVEYED: 1,
    eligibility.CLASSIFICATION_DECIDED: 1,
    supervision.POSTING_OPENED: 1, supervision.POSTING_CLOSED: 1, supervision.POSTING_APPROVED: 1,
    eligibility.CLASSIFICATION_RECOGNIZED: 1,
    # once when provisionally decided, once more when recognized (the status it carries changed)
    eligibility.PROGRAM_ELIGIBILITY_CHANGED: 2,
})
WITH_A_LOAN = EVERY_HOUSEHOLD + Counter({
    disbursement.APPLICATION_SUBMITTED: 1, disbursement.APPLICATION_REVIEWED: 1,
    disbursement.APPLICATION_CONFIRMED: 1, disbursement.INSTRUCTION_ISSUED: 1,
    disbursement.INSTRUCTION_STATUS_CHANGED: 4,  # approved, sent, accepted, settled
    disbursement.REPAYMENT_RECORDED: 1,  # the reference partner reports one repayment
    # the bank's messages that changed something: accepted, settled, the repayment
    disbursement.BANK_MESSAGE_RECEIVED: 3,
})
INSTRUCTION_STATUSES = ["approved", "sent", "accepted", "settled"]


@dataclass(frozen=True)
class Planned:
    """One household as imported, and the category the rules give its survey."""

    external_ref: str
    village: str
    members: int
    line: dict[str, Any]
    expected: str


def households(seed: int, count: int) -> list[Planned]:
    """`count` demo households (names, IDs, villages from the demo generator) with 1–5 members
    and surveys drawn to be poor, near-poor or neither; the expected category is what the pure
    rule book says for those inputs."""
    rng = random.Random(f"{seed}-households")
    book = load_rulebook([RULESETS_DIR])
    out = []
    for i in range(count):
        line = household(i, province_code=PROVINCE, commune_code=COMMUNE, villages=VILLAGES,
                         survey_date=SURVEY_DATE, review_round=REVIEW_ROUND)
        line["members"] = line["members"][:rng.randint(1, 5)]  # the head comes first
        income, deprived = _survey(rng)
        line["survey"]["income_per_capita_vnd"] = income
        line["survey"]["deprivations"] = {c: c in deprived for c in INDICATORS_2022}
        ruleset = book.select(SURVEY_DATE, PROVINCE)
        expected = domain.classify(ruleset, area_type=line["area_type"],
                                   income_per_capita_vnd=income,
                                   deprivations=line["survey"]["deprivations"]).category
        out.append(Planned(external_ref=line["external_ref"], village=line["location"]["village"],
                           members=len(line["members"]), line=line, expected=expected))
    return out


@dataclass(frozen=True)
class Correction:
    """A second survey of an imported household, recorded while the first is being decided: it
    gives another category, and the last survey must decide."""

    external_ref: str
    survey: dict[str, Any]
    expected: str


def corrections(seed: int, planned: list[Planned], count: int) -> dict[str, Correction]:
    """`count` households re-surveyed the same day with results the rules classify otherwise."""
    rng = random.Random(f"{seed}-corrections")
    ruleset = load_rulebook([RULESETS_DIR]).select(SURVEY_DATE, PROVINCE)
    out: dict[str, Correction] = {}
    for p in rng.sample(planned, count):
        while True:  # a drawn survey of another category (a few draws at most)
            income, deprived = _survey(rng)
            deprivations = {c: c in deprived for c in INDICATORS_2022}
            expected = domain.classify(ruleset, area_type=p.line["area_type"],
                                       income_per_capita_vnd=income,
                                       deprivations=deprivations).category
            if expected != p.expected:
                break
        survey = p.line["survey"] | {"income_per_capita_vnd": income,
                                     "deprivations": deprivations,
                                     "notes": "Phúc tra: số liệu điều tra lần đầu bị ghi sai."}
        out[p.external_ref] = Correction(p.external_ref, survey, expected)
    return out


def expected_events(*, loan: bool, decided: int = 1, corrected: bool = False,
                    held: bool = False) -> Counter[str]:
    """The events a household's timeline must hold: a re-surveyed household has a second survey
    and one more decision (and programme list) per decision eligibility made; a borrower held by
    an upheld payment complaint has the complaint, the hold requested, applied and released, and
    its instruction went on_hold and back to approved."""
    out = Counter(WITH_A_LOAN if loan else EVERY_HOUSEHOLD)
    if corrected:
        out[registry.HOUSEHOLD_SURVEYED] += 1
    out[eligibility.CLASSIFICATION_DECIDED] = decided
    out[eligibility.PROGRAM_ELIGIBILITY_CHANGED] = decided + 1  # each decision, the recognition
    if held:
        out += HELD
    return out


HELD = Counter({
    supervision.COMPLAINT_RECEIVED: 1, supervision.COMPLAINT_RESOLVED: 1,
    supervision.HOLD_REQUESTED: 1, supervision.HOLD_RELEASED: 1,
    disbursement.HOLD_APPLIED: 1, disbursement.HOLD_RELEASED: 1,
    disbursement.INSTRUCTION_STATUS_CHANGED: 2,  # on_hold, then approved again
})
HELD_STATUSES = ["approved", "on_hold", "approved", "sent", "accepted", "settled"]


def _survey(rng: random.Random) -> tuple[int, set[str]]:
    """Income and deprived indicators aimed at poor (40%), near-poor (20%) or neither, with the
    rural lines themselves (1,500,000 and 2,250,000 VND) among the incomes."""
    aim = rng.choices(("poor", "near_poor", "neither"), (4, 2, 4))[0]
    if aim == "neither":
        income = rng.choice((1_510_000, 2_250_000, 2_260_000, rng.randrange(1_510_000,
                                                                            6_000_000, 10_000)))
        return income, set(rng.sample(INDICATORS_2022, rng.randint(0, 5)))
    income = rng.choice((1_500_000, rng.randrange(400_000, 1_500_000, 10_000)))
    count = rng.randint(3, 8) if aim == "poor" else rng.randint(0, 2)
    return income, set(rng.sample(INDICATORS_2022, count))


def registered(c: Client) -> list[dict[str, Any]]:
    """Every household of the commune at the registry (cursor pages)."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = c.call("GET", f"{c.urls.registry}/v1/households", role="commune_officer",
                      params={"commune_code": c.commune, "limit": 500,
                              **({"cursor": cursor} if cursor else {})})
        out += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def classifications(c: Client) -> list[dict[str, Any]]:
    """Every classification eligibility holds for the commune (all statuses, paged)."""
    out: list[dict[str, Any]] = []
    while True:
        page = items(c.call("GET", f"{c.urls.eligibility}/v1/classifications",
                            role="commune_officer",
                            params={"commune_code": c.commune, "limit": 1000,
                                    "offset": len(out)}))
        out += page
        if len(page) < 1000:
            return out


def settled(c: Client) -> int:
    """How many of the commune's instructions the bank has settled (disbursement's
    reconciliation: one request, so a kill can follow a confirmation closely)."""
    report = c.call("GET", f"{c.urls.disbursement}/v1/reconciliation", role="auditor",
                    params={"commune_code": c.commune})
    return sum(s["count"] for s in report["by_status"] if s["status"] == "settled")


def timeline(c: Client, household_id: str) -> list[dict[str, Any]]:
    """A household's timeline at supervision (empty until supervision saw an event of it)."""
    resp = c.http.get(f"{c.urls.supervision}/v1/households/{household_id}/timeline",
                      headers=c.headers("auditor"))
    assert resp.status_code in (200, 404), resp.text
    return resp.json()["events"] if resp.status_code == 200 else []


def missing_events(events: list[dict[str, Any]], expected: Counter[str]) -> Counter[str]:
    """Event types (with counts) the timeline still lacks."""
    return expected - Counter(e["type"] for e in events)


def outbox_backlog(url: str) -> float:
    """Outbox rows a service has not yet published (its /metrics gauge)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(r"^outbox_backlog (\S+)$", text, re.M)
    assert found, f"{url}/metrics has no outbox_backlog"
    return float(found.group(1))


async def read_topic(bootstrap: str, topic: str, *, need: Any, timeout: float = 60) -> list[
        ConsumerRecord]:
    """Every record of `topic`: read from the beginning until `need(records)` holds and one more
    poll finds nothing new (caught up; the broker's end offsets cannot be trusted)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                group_id=f"chaos-check-{uuid.uuid4()}",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=2000, heartbeat_interval_ms=300)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                fresh = [r for recs in batch.values() for r in recs]
                records += fresh
                if not fresh and need(records):
                    return records
    except TimeoutError:
        raise AssertionError(f"{topic}: not complete within {timeout}s "
                             f"({len(records)} records)") from None
    finally:
        await consumer.stop()


def header(record: ConsumerRecord, name: str) -> str | None:
    """One CloudEvents header of a record."""
    return next((v.decode() for k, v in record.headers or () if k == name), None)
