"""Chaos: the whole programme flow through HTTP while the services and the bank partner are
SIGKILLed and restarted (issue 10, item 7 — a safety net before the consumer rewrite).

300 households are imported, classified, posted and recognized; 30 loans go to the reference bank
partner and are settled; meanwhile a seeded plan kills a process at six points of the flow. Then
what a user would notice: nothing lost (every household there, classified as the rule book says,
its timeline complete) and nothing duplicated (one classification, each timeline event once, one
instruction and one settlement per loan, no payment twice, no dead letter).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from services.demo.seed import (
    VILLAGES,
    Client,
    SeedError,
    Urls,
    classification,
    classified_households,
    import_households,
    instruction_status,
    loan_candidates,
    run_posting,
    start_import,
    supervision_saw_decision,
    take_loans,
    wait_for,
    wait_import,
)
from services.eligibility import events as eligibility_events
from shared.processes import SERVICES
from tests.chaos import checks, flow
from tests.chaos.monkey import TARGETS, Monkey, Plan, chaos_seed
from tests.support.system import System, running_system

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

HOUSEHOLDS = 300
IMPORTS = 3  # import jobs of 100 households each
PER_GROUP = 6  # one Women's Union savings group per village, six loans each
LOANS = PER_GROUP * len(VILLAGES)
DEADLINE = 180.0  # seconds for any eventual condition


@pytest.fixture(scope="module")
def system(servers):
    """The four services and the reference bank partner as processes on a fresh broker + PG."""
    with running_system(bank_partner=True) as s:
        yield s


def test_nothing_is_lost_or_duplicated_while_processes_are_killed(system):
    plan = Plan.draw(chaos_seed(), households=HOUSEHOLDS, loans=LOANS)
    print(f"\n{plan.describe()}", flush=True)
    monkey = Monkey(system, plan)
    planned = flow.households(plan.seed, HOUSEHOLDS)
    mix = Counter(p.expected for p in planned)
    assert min(mix["poor"], mix["near_poor"], mix["middle"] + mix["not_poor"]) >= 30, mix
    c = Client(Urls(**{name: system.url(name) for name in SERVICES}), commune=flow.COMMUNE)
    try:
        driven = drive(c, monkey, planned)
        ids, loans = driven.ids, driven.loans
        converge(c, system, ids, loans)
        checks.registry_has_every_household(c, planned)
        checks.classified_as_the_rules_say(c, planned, ids)
        checks.timelines_complete_and_once(c, ids, loans)
        checks.one_instruction_and_one_settlement_per_loan(c, loans)
        checks.bank_topics_once_per_loan(system.infra.bootstrap_servers, loans)
        checks.no_dead_letters(c, [system.url(name) for name in SERVICES])
        assert len(monkey.kills) >= 5 and {k.target for k in monkey.kills} == set(TARGETS), \
            f"the plan was not carried out: {[str(k) for k in monkey.kills]}"
    except BaseException as exc:
        exc.add_note(monkey.report())
        raise
    finally:
        c.close()
        print(monkey.report(), flush=True)


@dataclass
class Driven:
    """What the flow made: household ids by external reference, the loan applications'
    households, and the upheld payment complaints by household."""

    ids: dict[str, str]
    loans: dict[str, str]
    complaints: dict[str, str] = field(default_factory=dict)


def drive(c: Client, monkey: Monkey, planned: list[flow.Planned], *, imports: int = IMPORTS,
          per_group: int = PER_GROUP, corrected: dict[str, flow.Correction] | None = None,
          holds_per_village: int = 0) -> Driven:
    """The officers' flow (through the seed's HTTP steps) with the plan's kills in between.
    `corrected` households are re-surveyed while eligibility decides their first survey;
    `holds_per_village` borrowers of each village are held by an upheld payment complaint
    before their loan is confirmed, and released once every loan is confirmed."""
    plan, t0 = monkey.plan, time.monotonic()
    corrected = corrected or {}
    households, loans_wanted = len(planned), per_group * len(VILLAGES)

    def phase(text: str) -> None:
        print(f"  t+{time.monotonic() - t0:.1f}s {text}", flush=True)

    # 1. Three import jobs. The registry dies while its job runs (the officer uploads the file
    # again: lines already imported are skipped); eligibility or supervision right after a job,
    # while they consume its events.
    size = households // imports
    for n in range(imports):
        lines, slot = [p.line for p in planned[n * size:(n + 1) * size]], f"import-{n + 1}"
        if n + 1 < imports and plan.victims[slot] == "registry":
            job = start_import(c, lines)
            monkey.strike(slot, progress=f"import job {job} of {len(lines)} lines running")
            state = wait_import(c, start_import(c, lines))
            counts = (state["accepted"] + state["skipped"], state["rejected"])
            phase(f"import {n + 1}/{imports} uploaded again: {state['accepted']} accepted, "
                  f"{state['skipped']} skipped as already imported")
        else:
            counts = import_households(c, lines)
            if n + 1 < imports:
                monkey.strike(slot, progress=f"import {n + 1}/{imports} done")
        assert counts == (size, 0), f"import {n + 1}: (imported, rejected) = {counts}"
        phase(f"import {n + 1}/{imports} done")
    ids = {h["external_ref"]: h["household_id"] for h in flow.registered(c)}
    assert set(ids) == {p.external_ref for p in planned}, "the registry lost or invented a household"

    for ref, correction in sorted(corrected.items()):  # while the first surveys are decided
        c.call("POST", f"{c.urls.registry}/v1/households/{ids[ref]}/surveys",
               role="commune_officer", json=correction.survey)
    if corrected:
        phase(f"{len(corrected)} households re-surveyed")

    # 2. Eligibility classifies (a kill once a drawn number are), supervision sees each decision.
    every = set(ids.values())
    count = until(at_least(lambda: len(set(classified_households(c)) & every), plan.classified_at),
                  what=f"{plan.classified_at} households classified")
    monkey.strike("classifying", progress=f"{count} of {households} classified")
    until(lambda: every <= set(classified_households(c)), what="every household classified")
    for hid in sorted(every):
        until(partial(supervision_saw_decision, c, hid), what=f"supervision sees {hid}'s decision")
    for ref, correction in sorted(corrected.items()):
        until(partial(decided_by_last_survey, c, ids[ref], correction),
              what=f"{ref}'s re-survey decided and seen by supervision")
    phase("every household classified and seen by supervision")

    # 3. The commune's list is posted, a complaint resolved, the list approved; a kill at once.
    posting_id = run_posting(c)
    monkey.strike("approved", progress=f"posting {posting_id} approved")
    until(lambda: every <= set(classified_households(c, status="recognized")),
          what="every classification recognized")
    phase(f"posting {posting_id} approved, every household recognized")

    # 4. A savings group per village takes six loans; a kill after the plan's confirmation.
    loans: dict[str, str] = {}

    def confirmed(application_id: str, household_id: str) -> None:
        loans[application_id] = household_id
        if len(loans) == plan.confirmed_at:
            monkey.strike("loans", progress=f"{len(loans)} of {loans_wanted} loans confirmed, "
                                            f"{flow.settled(c)} settled")

    complaints: dict[str, str] = {}
    for village in VILLAGES:
        members = loan_candidates(c, None, village=village, limit=per_group)
        assert len(members) == per_group, f"{village}: only {len(members)} recognized poor"
        for hid in members[:holds_per_village]:
            complaints[hid] = hold_payments(c, hid)
        take_loans(c, members, village=village, on_confirmed=confirmed)
    if complaints:
        by_household = {hid: aid for aid, hid in loans.items()}
        held = [hid for hid in complaints
                if instruction_status(c, by_household[hid]) != "on_hold"]
        assert not held, f"instructions not held for households on hold: {held}"
        for cid in complaints.values():
            c.call("POST", f"{c.urls.supervision}/v1/complaints/{cid}/close",
                   role="commune_officer", json={"note": "Đã chi trả đúng; đóng khiếu nại."})
        phase(f"{len(complaints)} payment complaints upheld, held, closed")

    # 5. A kill as the last instruction goes to the bank; the partner settles every loan.
    monkey.strike("settling", progress=f"{loans_wanted} loans confirmed, {flow.settled(c)} settled")
    until(lambda: flow.settled(c) == loans_wanted, what="every loan settled")
    phase("every loan settled")
    return Driven(ids, loans, complaints)


def decided_by_last_survey(c: Client, household_id: str, correction: flow.Correction) -> bool:
    """Eligibility's current classification is the re-survey's category, and supervision holds
    that very decision (so the posting lists it)."""
    current = classification(c, household_id)
    if current is None or current["category"] != correction.expected:
        return False
    return any(e["type"] == eligibility_events.CLASSIFICATION_DECIDED
               and e["data"].get("classification_id") == current["classification_id"]
               for e in flow.timeline(c, household_id))


def hold_payments(c: Client, household_id: str) -> str:
    """A payment complaint about the household taken in by the officer and upheld: its payments
    are held (waits until disbursement holds them); returns the complaint id."""
    sup = c.urls.supervision
    cid = c.call("POST", f"{sup}/v1/complaints", role="commune_officer", json={
        "commune_code": c.commune, "channel": "officer", "category": "payment_not_received",
        "household_id": household_id,
        "text": "Hộ phản ánh chưa nhận được tiền vay kỳ trước."})["complaint_id"]
    c.call("POST", f"{sup}/v1/complaints/{cid}/assign", role="commune_officer",
           json={"assignee": "demo-commune_officer"})
    c.call("POST", f"{sup}/v1/complaints/{cid}/resolve", role="commune_officer",
           json={"outcome": "upheld", "note": "Tạm dừng giải ngân để xác minh."})
    until(lambda: c.call("GET", f"{c.urls.disbursement}/v1/households/{household_id}",
                         role="commune_officer")["on_hold"],
          what=f"disbursement holds {household_id}'s payments")
    return str(cid)


def converge(c: Client, system: System, ids: dict[str, str], loans: dict[str, str], *,
             corrected: Collection[str] = (), held: Collection[str] = ()) -> None:
    """Wait until every timeline holds what it should (at least) and every outbox is drained."""
    borrowers = set(loans.values())
    waiting = set(ids.values())

    def least(hid: str) -> Counter[str]:
        return flow.expected_events(loan=hid in borrowers, corrected=hid in corrected,
                                    held=hid in held)

    def complete() -> bool:
        for hid in sorted(waiting):
            if flow.missing_events(flow.timeline(c, hid), least(hid)):
                return False
            waiting.discard(hid)
        return True

    try:
        until(complete, what="every timeline complete")
    except SeedError as exc:
        missing = []
        for hid in sorted(waiting)[:10]:
            missing.append(f"{hid}: {dict(flow.missing_events(flow.timeline(c, hid), least(hid)))}")
        exc.add_note(f"{len(waiting)} timelines incomplete, e.g.:\n  " + "\n  ".join(missing))
        raise
    until(lambda: all(flow.outbox_backlog(system.url(n)) == 0 for n in SERVICES),
          what="every outbox drained")


def until(probe: Callable[[], Any], *, what: str) -> Any:
    """Wait for a condition (polling, never a fixed sleep) up to the test's deadline."""
    return wait_for(probe, what=what, timeout=DEADLINE, interval=0.1)


def at_least(count: Callable[[], int], threshold: int) -> Callable[[], int | None]:
    """A probe that is the count once it reaches `threshold` (the kill log says where we were)."""
    return lambda: n if (n := count()) >= threshold else None
