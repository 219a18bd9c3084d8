"""The chaos test's verdicts, each what a user of one surface would notice (registry officers,
eligibility, auditors' timelines, disbursement and its reconciliation, the bank's topics)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from services.demo.seed import Client
from services.disbursement import events as disbursement
from tests.chaos import flow


def _first(problems: list[str], what: str) -> str:
    return f"{len(problems)} {what}, e.g.:\n  " + "\n  ".join(problems[:10])


def registry_has_every_household(c: Client, planned: list[flow.Planned]) -> None:
    """Each imported household exactly once, with the members it was imported with."""
    rows = flow.registered(c)
    refs = Counter(h["external_ref"] for h in rows)
    assert refs == Counter(p.external_ref for p in planned), (
        f"registry: missing {sorted(set(p.external_ref for p in planned) - set(refs))[:10]}, "
        f"twice {[r for r, n in refs.items() if n > 1][:10]}")
    members = {h["external_ref"]: len(h["members"]) for h in rows}
    wrong = [f"{p.external_ref}: {members[p.external_ref]} members, imported {p.members}"
             for p in planned if members[p.external_ref] != p.members]
    assert not wrong, _first(wrong, "households with other members than imported")


def classified_as_the_rules_say(c: Client, planned: list[flow.Planned], ids: dict[str, str],
                                corrected: dict[str, flow.Correction] | None = None) -> Counter[str]:
    """One current classification per household, recognized, in the category the rule book gives
    its last survey; a re-surveyed household at most one earlier decision, superseded. Returns
    the decisions made per household."""
    corrected = corrected or {}
    rows = flow.classifications(c)
    per_household = Counter(r["household_id"] for r in rows)
    assert set(per_household) == set(ids.values()), "eligibility lost or invented a household"
    again = {ids[ref] for ref in corrected}
    twice = [f"{h}: {n} classifications" for h, n in per_household.items()
             if n > (2 if h in again else 1)]
    assert not twice, _first(twice, "households decided more often than they were surveyed")
    current = [r for r in rows if r["status"] != "superseded"]
    several = [h for h, n in Counter(r["household_id"] for r in current).items() if n != 1]
    assert not several, _first(several, "households with more than one current classification")
    by_household = {r["household_id"]: r for r in current}
    wrong = []
    for p in planned:
        got = by_household[ids[p.external_ref]]
        last = corrected.get(p.external_ref)
        expected = last.expected if last else p.expected
        if (got["category"], got["status"]) != (expected, "recognized"):
            wrong.append(f"{p.external_ref}: {got['category']}/{got['status']}, rules say "
                         f"{expected}/recognized (last survey "
                         f"{last.survey if last else p.line['survey']})")
    assert not wrong, _first(wrong, "households classified otherwise than their last survey")
    return per_household


def timelines_complete_and_once(c: Client, ids: dict[str, str], loans: dict[str, str], *,
                                decided: Counter[str] | None = None,
                                corrected: Collection[str] = (),
                                held: Collection[str] = ()) -> None:
    """Each timeline holds exactly the household's events, each event once (`decided`: the
    decisions eligibility made per household; `corrected`, `held`: household ids)."""
    borrowers = set(loans.values())
    problems = []
    for ref, hid in sorted(ids.items()):
        events = flow.timeline(c, hid)
        expected = flow.expected_events(loan=hid in borrowers, corrected=hid in corrected,
                                        held=hid in held,
                                        decided=decided[hid] if decided else 1)
        got = Counter(e["type"] for e in events)
        if got != expected:
            problems.append(f"{ref} {hid}: missing {dict(expected - got)}, extra "
                            f"{dict(got - expected)}")
        repeated = [i for i, n in Counter(e["event_id"] for e in events).items() if n > 1]
        if repeated:
            problems.append(f"{ref} {hid}: event ids twice {repeated}")
        statuses = Counter(e["data"].get("status") for e in events
                           if e["type"] == disbursement.INSTRUCTION_STATUS_CHANGED)
        want = flow.HELD_STATUSES if hid in held else flow.INSTRUCTION_STATUSES
        if hid in borrowers and statuses != Counter(want):
            problems.append(f"{ref} {hid}: instruction statuses {dict(statuses)}")
    assert not problems, _first(problems, "timelines that lose or repeat events")


def one_instruction_and_one_settlement_per_loan(c: Client, loans: dict[str, str],
                                               held: Collection[str] = ()) -> None:
    """Disbursement's own view: each application disbursed by exactly one instruction that went
    approved → sent → accepted → settled once (a held household's via on_hold and approved
    again); one loan each, one repayment each; a clean reconciliation."""
    url = c.urls.disbursement
    listed = c.call("GET", f"{url}/v1/applications", role="commune_officer",
                    params={"commune_code": c.commune, "limit": 1000})
    got = Counter(a["application_id"] for a in listed)
    assert got == Counter(list(loans)), (
        f"disbursement lost {sorted(set(loans) - set(got))}, invented "
        f"{sorted(set(got) - set(loans))}, repeated {[a for a, n in got.items() if n > 1]}")
    problems, instructions = [], Counter()
    for aid, hid in sorted(loans.items()):
        app = c.call("GET", f"{url}/v1/applications/{aid}", role="commune_officer")
        ins = app["instruction"] or {}
        instructions[ins.get("instruction_id")] += 1
        history = [h["status"] for h in ins.get("history", [])]
        want = flow.HELD_STATUSES if hid in held else flow.INSTRUCTION_STATUSES
        if (app["status"], app["household_id"], history) != ("disbursed", hid, want):
            problems.append(f"{aid}: {app['status']}, instruction history {history}")
    assert not problems, _first(problems, "applications not paid exactly once")
    assert len(instructions) == len(loans) and set(instructions.values()) == {1}, instructions
    report = c.call("GET", f"{url}/v1/reconciliation", role="auditor",
                    params={"commune_code": c.commune})
    assert report["mismatches"] == [], report["mismatches"]
    assert [(s["status"], s["count"]) for s in report["by_status"]] == [("settled", len(loans))]
    assert report["totals"]["settled_amount_vnd"] == report["totals"]["amount_vnd"]
    held = c.call("GET", f"{url}/v1/loans", role="commune_officer",
                  params={"commune_code": c.commune})
    got = Counter(loan["application_id"] for loan in held)
    assert got == Counter(list(loans)), (
        f"loans missing for {sorted(set(loans) - set(got))}, for unknown applications "
        f"{sorted(set(got) - set(loans))}, twice for {[a for a, n in got.items() if n > 1]}")
    wrong = [f"{loan['application_id']}: repaid {loan['repaid_vnd']}" for loan in held
             if loan["repaid_vnd"] != round(loan["principal_vnd"] * loan["annual_rate_pct"] / 1200)]
    assert not wrong, _first(wrong, "loans whose one repayment was not counted exactly once")


def bank_topics_once_per_loan(bootstrap: str, loans: dict[str, str]) -> None:
    """On the partner's topics (deduplicated by CloudEvents id, as the inbox does): one
    instruction per application, and one accepted, one settled, one repayment per instruction."""
    def instructions_complete(records: list) -> bool:
        return len({json.loads(r.value)["application_id"] for r in records}) >= len(loans)

    sent = _read(bootstrap, disbursement.instructions_topic("vbsp"), instructions_complete)
    per_application: dict[str, set[str]] = defaultdict(set)
    by_event: dict[str, str] = {}
    for r in sent:
        body = json.loads(r.value)
        per_application[body["application_id"]].add(flow.header(r, "ce_id") or "")
        by_event[flow.header(r, "ce_id") or ""] = body["instruction_id"]
    assert set(per_application) == set(loans), "instructions for unknown applications"
    twice = {a: ids for a, ids in per_application.items() if len(ids) != 1}
    assert not twice, f"applications issued more than once: {twice}"
    instruction_ids = set(by_event.values())

    def statuses_complete(records: list) -> bool:
        done = {json.loads(r.value)["instruction_id"] for r in records
                if json.loads(r.value)["status"] == "repayment_received"}
        return done >= instruction_ids

    answers = _read(bootstrap, disbursement.status_topic("vbsp"), statuses_complete)
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in answers:
        body = json.loads(r.value)
        seen[(body["instruction_id"], body["status"])].add(flow.header(r, "ce_id") or "")
    counts = {key: len(ids) for key, ids in seen.items()}
    expected = {(i, s): 1 for i in instruction_ids
                for s in ("accepted", "settled", "repayment_received")}
    assert counts == expected, {k: v for k, v in counts.items() if expected.get(k) != v}


def _read(bootstrap: str, topic: str, need: Any) -> list:
    loop = asyncio.new_event_loop()  # a loop of its own: the test is synchronous
    try:
        return loop.run_until_complete(flow.read_topic(bootstrap, topic, need=need))
    finally:
        loop.close()


def holds_released_and_respected(c: Client, loans: dict[str, str],
                                 complaints: dict[str, str]) -> None:
    """Every upheld payment complaint's hold released once its complaint was closed (no
    household left on hold), and no instruction sent before its household's hold was released."""
    problems = []
    by_household = {hid: aid for aid, hid in loans.items()}
    for hid, complaint_id in sorted(complaints.items()):
        seen = c.call("GET", f"{c.urls.disbursement}/v1/households/{hid}",
                      role="commune_officer")
        holds = [h for h in seen["holds"] if h["complaint_id"] == complaint_id]
        if seen["on_hold"] or len(holds) != 1 or holds[0]["released_at"] is None:
            problems.append(f"{hid}: on_hold {seen['on_hold']}, holds {seen['holds']}")
            continue
        app = c.call("GET", f"{c.urls.disbursement}/v1/applications/{by_household[hid]}",
                     role="commune_officer")
        sent = [h["at"] for h in app["instruction"]["history"] if h["status"] == "sent"]
        released = datetime.fromisoformat(holds[0]["released_at"])
        if not sent or min(datetime.fromisoformat(at) for at in sent) < released:
            problems.append(f"{hid}: sent at {sent}, hold released at {holds[0]['released_at']}")
    assert not problems, _first(problems, "households whose hold was not kept or not released")


def no_dead_letters(c: Client, urls: list[str]) -> None:
    """No service parked an event it could not handle."""
    for url in urls:
        parked = c.call("GET", f"{url}/v1/ops/dead-letters", role="auditor")
        assert parked == [], f"{url}: {len(parked)} dead letters, e.g. {parked[:3]}"
