"""Chaos with two replicas of every service (issue 14): each service runs as two processes on
their own ports, in the same consumer groups, with relays on the same outbox. While the
officers' flow runs through the first replicas, the second replicas are SIGKILLed and restarted
at random every few seconds (each kill rebalances its groups with the peer's batches in
flight), the plan's first replicas die at the six points of the flow, and the broker restarts
once, memory lost, while the registry's events are in flight to eligibility and supervision.

Thirty households are re-surveyed (another category) while their first survey is being decided,
and one borrower per village is held by an upheld payment complaint before its loan is
confirmed, released when the complaint is closed.

Then the same verdicts as the one-replica chaos test — nothing lost, nothing reordered or
decided twice, each household in the category of its last survey, one instruction and one
settlement per loan, none sent while its household was on hold and no household left on hold,
one repayment per bank reference, no dead letter — and no background task dead in any replica
at the end.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from services.demo.seed import VILLAGES, Client, Urls
from shared.processes import SERVICES, ServiceProcess
from tests.chaos import checks, flow
from tests.chaos.monkey import Monkey, Plan, chaos_seed
from tests.chaos.test_chaos import converge, drive, until
from tests.support.system import System, running_system

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

HOUSEHOLDS = 300
IMPORTS = 3
PER_GROUP = 4
LOANS = PER_GROUP * len(VILLAGES)
KILL_EVERY_S = (1.5, 4.0)  # a random second replica dies this often
CORRECTIONS = 30  # households re-surveyed (another category) while the first survey is decided
HOLDS_PER_VILLAGE = 1  # borrowers held by an upheld payment complaint until it is closed


@pytest.fixture(scope="module")
def system(servers):
    """Two processes of each service and the reference partner on a fresh broker + PG."""
    env = {f"{n.upper()}_BROKER_RECOVERY_GRACE_S": "3" for n in SERVICES}
    with running_system(bank_partner=True, replicas=2, env=env) as s:
        yield s


@dataclass
class RandomKiller:
    """SIGKILLs a random process of `targets` every few seconds and starts it again at once
    (without waiting for it: a replica may die again while it starts)."""

    targets: list[ServiceProcess]
    seed: int
    kills: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RandomKiller:
        rng = random.Random(f"{self.seed}-replicas")
        t0 = time.monotonic()

        def loop() -> None:
            while not self._stop.wait(rng.uniform(*KILL_EVERY_S)):
                proc = rng.choice(self.targets)
                pid = proc.pid
                proc.stop(kill=True)
                proc.start()
                self.kills.append(f"t+{time.monotonic() - t0:.1f}s SIGKILL {proc.name} pid "
                                  f"{pid} → {proc.pid}")

        self._thread = threading.Thread(target=loop, name="random-killer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


@dataclass
class ReplicaMonkey(Monkey):
    """The plan's kills on the first replicas, and one broker restart at the classifying kill."""

    broker_restarts: list[float] = field(default_factory=list)

    def strike(self, slot: str, *, progress: str = "") -> None:
        if slot == "classifying":
            t0 = time.monotonic()
            self.system.infra.restart_broker()
            self.broker_restarts.append(t0 - self.started)
            print(f"  chaos: t+{t0 - self.started:.1f}s broker restarted, memory lost "
                  f"({progress})", flush=True)
        super().strike(slot, progress=progress)


def test_two_replicas_lose_nothing_while_replicas_and_the_broker_die(system: System):
    plan = Plan.draw(chaos_seed(), households=HOUSEHOLDS, loans=LOANS)
    print(f"\n{plan.describe()}", flush=True)
    monkey = ReplicaMonkey(system, plan)
    planned = flow.households(plan.seed, HOUSEHOLDS)
    c = Client(Urls(**{name: system.url(name) for name in SERVICES}), commune=flow.COMMUNE)
    corrected = flow.corrections(plan.seed, planned, CORRECTIONS)
    killer = RandomKiller(system.replicas, plan.seed)
    t0 = time.monotonic()
    try:
        with killer:
            driven = drive(c, monkey, planned, imports=IMPORTS, per_group=PER_GROUP,
                           corrected=corrected, holds_per_village=HOLDS_PER_VILLAGE)
            until(lambda: len(killer.kills) >= 8, what="eight random kills")
        ids, loans, held = driven.ids, driven.loans, set(driven.complaints)
        again = {ids[ref] for ref in corrected}
        for proc in system.replicas:  # the last random victims come back
            proc.wait_ready(timeout=180)
        converge(c, system, ids, loans, corrected=again, held=held)
        for proc in system.replicas:
            until(lambda p=proc: flow.outbox_backlog(p.url) == 0,
                  what=f"{proc.name}'s outbox drained")
        checks.registry_has_every_household(c, planned)
        decided = checks.classified_as_the_rules_say(c, planned, ids, corrected)
        checks.timelines_complete_and_once(c, ids, loans, decided=decided, corrected=again,
                                           held=held)
        checks.one_instruction_and_one_settlement_per_loan(c, loans, held)
        checks.holds_released_and_respected(c, loans, driven.complaints)
        checks.bank_topics_once_per_loan(system.infra.bootstrap_servers, loans)
        checks.no_dead_letters(c, [system.url(name) for name in SERVICES])
        no_task_dead([*system.services.values(), *system.replicas])
        assert monkey.broker_restarts, "the broker was not restarted"
        print(f"two replicas: {HOUSEHOLDS} households ({len(corrected)} re-surveyed, "
              f"{sum(decided[h] == 2 for h in again)} of them decided twice), "
              f"{len(loans)} loans ({len(held)} held by a complaint and released), "
              f"{len(monkey.kills)} planned + {len(killer.kills)} random kills, "
              f"{len(monkey.broker_restarts)} broker restart; lost 0, duplicated 0, "
              f"reordered 0, in {time.monotonic() - t0:.0f} s", flush=True)
    except BaseException as exc:
        exc.add_note(monkey.report() + "\nrandom kills:\n  " + "\n  ".join(killer.kills)
                     + "\n" + _payments(c) + "\n" + _postings_on_the_broker(system))
        raise
    finally:
        c.close()


def no_task_dead(procs: list[ServiceProcess]) -> None:
    """Every replica ready, none of its background tasks stopped or stuck."""
    problems = []
    for proc in procs:
        body = httpx.get(f"{proc.url}/ready", timeout=10).json()
        states = Counter(t["state"] for t in body["tasks"].values())
        if body["status"] != "ready" or set(states) != {"running"}:
            problems.append(f"{proc.name}: {body['status']}, tasks {dict(states)}, "
                            f"checks {body['checks']}")
    assert not problems, problems


def _payments(c: Client) -> str:
    """Every application's status and instruction history (what a failure report needs)."""
    try:
        url = c.urls.disbursement
        apps = c.call("GET", f"{url}/v1/applications", role="commune_officer",
                      params={"commune_code": c.commune, "limit": 1000})
        lines = []
        for a in apps:
            app = c.call("GET", f"{url}/v1/applications/{a['application_id']}",
                         role="commune_officer")
            ins = app.get("instruction") or {}
            lines.append(f"  {a['application_id']} {app['status']} instruction "
                         f"{ins.get('instruction_id')} {ins.get('status')} "
                         f"{[h['status'] for h in ins.get('history', [])]}")
        for name in SERVICES:
            base = getattr(c.urls, name)
            parked = c.call("GET", f"{base}/v1/ops/outbox/parked", role="national_admin")
            dead = c.call("GET", f"{base}/v1/ops/dead-letters", role="auditor")
            lines.append(f"  {name}: {len(parked)} parked outbox rows {parked[:3]}, "
                         f"{len(dead)} dead letters {[(d['topic'], d['reason']) for d in dead[:3]]}")
        return "applications:\n" + "\n".join(lines)
    except Exception as exc:  # noqa: BLE001 - a report, not a verdict
        return f"applications: unavailable ({exc!r})"


def _postings_on_the_broker(system: System) -> str:
    """Where the posting events are on the broker (partition, offset), for a failure report."""
    import asyncio

    from services.supervision import events as supervision

    try:
        records = asyncio.run(flow.read_topic(system.infra.bootstrap_servers, supervision.TOPIC,
                                              need=lambda rs: True, timeout=20))
        posting = [(r.partition, r.offset, flow.header(r, "ce_type")) for r in records
                   if "posting" in (flow.header(r, "ce_type") or "")]
        return f"{supervision.TOPIC}: {len(records)} records, postings at {posting}"
    except BaseException as exc:  # noqa: BLE001 - a report, not a verdict
        return f"{supervision.TOPIC}: unreadable ({exc!r})"
