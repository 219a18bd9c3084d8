"""A seeded chaos monkey: at named points of the flow it SIGKILLs one process (by PID), restarts
it and waits until it is ready again. The plan (who dies where, at which progress) comes from one
seed, so a failing run is replayed with `EVERYDOOR_CHAOS_SEED=<seed>`."""

from __future__ import annotations

import itertools
import os
import random
import time
from dataclasses import dataclass, field

import httpx

from shared.processes import ServiceProcess
from tests.chaos import flow
from tests.support.system import System

DEFAULT_SEED = 20261201
TARGETS = ("registry", "eligibility", "supervision", "disbursement", "bank_partner")
# Points of the flow → the processes that have work in flight there (the first two right after
# an import job is done, while the registry's relay publishes and the others consume).
SLOTS: dict[str, tuple[str, ...]] = {
    "import-1": ("registry", "eligibility", "supervision"),
    "import-2": ("registry", "eligibility", "supervision"),
    "classifying": ("eligibility", "supervision", "registry"),
    "approved": ("eligibility", "supervision", "disbursement"),
    "loans": ("disbursement", "bank_partner", "supervision", "eligibility"),
    "settling": ("bank_partner", "disbursement", "supervision"),
}


def chaos_seed() -> int:
    """The seed of this run: EVERYDOOR_CHAOS_SEED, or a fixed default (so CI is repeatable)."""
    return int(os.environ.get("EVERYDOOR_CHAOS_SEED", DEFAULT_SEED))


@dataclass(frozen=True)
class Plan:
    """Who is killed at each slot, and the progress thresholds that trigger the later kills."""

    seed: int
    victims: dict[str, str]
    classified_at: int  # the classifying kill once eligibility has classified this many
    confirmed_at: int  # the loans kill right after this many loans are confirmed
    # (the settling kill comes right after the last confirmation, its instruction in flight)

    @classmethod
    def draw(cls, seed: int, *, households: int, loans: int) -> Plan:
        """One victim per slot such that every process dies at least once; thresholds."""
        rng = random.Random(seed)
        covering = [combo for combo in itertools.product(*SLOTS.values())
                    if set(combo) == set(TARGETS)]
        victims = dict(zip(SLOTS, rng.choice(covering), strict=True))
        return cls(seed=seed, victims=victims,
                   classified_at=rng.randint(households // 3, households - 1),
                   confirmed_at=rng.randint(1, loans - 1))

    def describe(self) -> str:
        """One line to reproduce and read the plan."""
        kills = ", ".join(f"{slot}→{who}" for slot, who in self.victims.items())
        return (f"chaos seed {self.seed} (EVERYDOOR_CHAOS_SEED={self.seed} replays it): {kills}; "
                f"classifying kill at {self.classified_at} classified, loans kill after "
                f"{self.confirmed_at} confirmed")


@dataclass
class Kill:
    """One SIGKILL and restart, as it happened."""

    slot: str
    target: str
    old_pid: int | None
    new_pid: int | None
    at_s: float
    down_s: float
    progress: str

    def __str__(self) -> str:
        return (f"t+{self.at_s:.1f}s {self.slot}: SIGKILL {self.target} pid {self.old_pid} "
                f"({self.progress}); back as pid {self.new_pid} in {self.down_s:.1f}s")


@dataclass
class Monkey:
    """Carries out a plan on a running system."""

    system: System
    plan: Plan
    kills: list[Kill] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def process(self, name: str) -> ServiceProcess:
        """A service, or the bank partner, by name."""
        if name in self.system.services:
            return self.system.services[name]
        return next(p for p in self.system.extra if p.name == name)

    def strike(self, slot: str, *, progress: str = "") -> None:
        """SIGKILL the slot's victim by PID, start it again and wait until it is ready."""
        target = self.plan.victims[slot]
        proc = self.process(target)
        progress = f"{progress}; {self.in_flight(proc)}" if progress else self.in_flight(proc)
        old_pid, t0 = proc.pid, time.monotonic()
        assert old_pid is not None, f"{target} was not running before the {slot} kill"
        proc.stop(kill=True)
        proc.start()
        proc.wait_ready(timeout=120)
        kill = Kill(slot=slot, target=target, old_pid=old_pid, new_pid=proc.pid,
                    at_s=t0 - self.started, down_s=time.monotonic() - t0, progress=progress)
        self.kills.append(kill)
        print(f"  chaos: {kill}", flush=True)

    @staticmethod
    def in_flight(proc: ServiceProcess) -> str:
        """What the victim has not finished: unpublished outbox rows, or the partner's pending
        settlements (best effort, for the kill log)."""
        try:
            if proc.name == "bank_partner":
                return f"{httpx.get(proc.url, timeout=2).json()['pending']} settlements pending"
            return f"outbox backlog {flow.outbox_backlog(proc.url):.0f}"
        except (httpx.HTTPError, KeyError, ValueError, AssertionError):
            return "in-flight work unknown"

    def report(self) -> str:
        """The plan, the kills done, and where the services' logs are."""
        done = "\n".join(f"  {k}" for k in self.kills) or "  (none yet)"
        logs = self.system.span_file.parent / "logs"
        return f"{self.plan.describe()}\nkills so far:\n{done}\nservice logs: {logs}"
