"""`make bench`: the benchmarks of issue 10 one after the other, then ONE markdown table.

Each bench runs as its own process (its own embedded broker + PostgreSQL, stopped by PID at its
end), its output passed through as it comes; each ends with a `RESULT {json}` line, which this
collects. In order:
1. bench/baseline.py — the raw one-hop baseline (aiokafka + asyncpg, no project code), alone;
2. bench/intake_bench.py — everything as `make run` runs it, its own baseline on the same broker
   and PostgreSQL, then the intake end to end; peak RSS per service, span-file bytes/household;
3. bench/eligibility_bench.py — the consumer alone (a backlog of surveyed events), survey →
   decision latency at each steady rate, re-evaluation of N households after a line correction;
4. bench/supervision_bench.py — the timeline consumer alone (a backlog of 2 events/household);
5. bench/disbursement_bench.py — the eligibility projection alone (a backlog of 2 events per
   household), then N confirmed applications → settled by the reference partner;
6. with BENCH_EXTRAS=1 also bench/registry_bench.py and bench/slice_bench.py.
Ratios: the intake to its own baseline (same run, everything running); each consumer alone to
the standalone baseline (both on a fresh broker + PostgreSQL with nothing else running).
A bench that fails is marked "failed" in the table, its output's tail is printed, and the exit
status is 1; the table is printed anyway.

Sizes (environment, the issue's defaults; BENCH_QUICK=1 scales everything down to minutes):
BENCH_BASELINE_EVENTS=50000  BENCH_INTAKE_N=100000  BENCH_ELIGIBILITY_N=50000 (events)
BENCH_TIMELINE_N=10000 (households, 2 events each)  BENCH_PROJECTION_N=25000 (households, 2 each)
BENCH_REEVAL_N=1000000  BENCH_RATES=100,1000  BENCH_LATENCY_S=20  BENCH_SETTLE_N=10000
BENCH_CONCURRENCY=16  BENCH_TIMEOUT_S=5400 (per bench)  BENCH_ONLY=intake,eligibility,… (a subset)
Run: .venv/bin/python bench/run.py   (or `make bench`)
"""

from __future__ import annotations

import collections
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK", "").lower() not in ("", "0", "false", "no")

# The issue's sizes; the quick ones finish the whole run in a few minutes.
DEFAULTS: dict[str, tuple[str, str]] = {
    "BENCH_BASELINE_EVENTS": ("50000", "30000"),
    "BENCH_INTAKE_N": ("100000", "2000"),
    "BENCH_ELIGIBILITY_N": ("50000", "5000"),
    "BENCH_TIMELINE_N": ("10000", "4000"),
    "BENCH_PROJECTION_N": ("25000", "5000"),
    "BENCH_REEVAL_N": ("1000000", "20000"),
    "BENCH_RATES": ("100,1000", "100,1000"),
    "BENCH_LATENCY_S": ("20", "5"),
    "BENCH_SETTLE_N": ("10000", "300"),
    "BENCH_CONCURRENCY": ("16", "16"),
    "BENCH_TIMEOUT_S": ("5400", "900"),
}
ISSUE = {"BENCH_INTAKE_N": 100_000, "BENCH_REEVAL_N": 1_000_000, "BENCH_SETTLE_N": 10_000}
RSS_LIMIT_MB = 300
SPAN_LIMIT_B = 2048
LATENCY_TARGETS_MS = {100: 100, 1000: 500}


def setting(name: str) -> str:
    """The environment's value, else the issue's default (or the quick one)."""
    default, quick = DEFAULTS[name]
    return os.environ.get(name) or (quick if QUICK else default)


def number(name: str) -> int:
    """A size setting as an int."""
    return int(setting(name))


@dataclass
class Bench:
    """One bench script and what it left behind."""

    name: str
    argv: list[str]
    result: dict | None = None
    returncode: int | None = None
    seconds: float = 0.0
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=60))

    @property
    def failed(self) -> bool:
        """It exited non-zero or printed no RESULT line."""
        return self.returncode != 0 or self.result is None

    def run(self, timeout: float) -> None:
        """Run it, echo its output, keep the tail and the RESULT line. On timeout: SIGINT (its
        finally blocks stop what it started), then SIGKILL of its process group."""
        cmd = [sys.executable, "-u", str(ROOT / self.argv[0]), *self.argv[1:]]
        print(f"\n== {self.name}: {' '.join(['bench/' + Path(cmd[2]).name, *cmd[3:]])}",
              flush=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            self.interrupt(proc)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith("RESULT "):
                    try:
                        self.result = json.loads(line[len("RESULT "):])
                    except json.JSONDecodeError as exc:
                        self.tail.append(f"(unreadable RESULT line: {exc})")
                    continue
                print(line, flush=True)
                self.tail.append(line)
            self.returncode = proc.wait()
        except KeyboardInterrupt:
            self.interrupt(proc)
            raise
        finally:
            timer.cancel()
            self.seconds = time.perf_counter() - t0
        if timed_out.is_set():
            self.tail.append(f"(stopped after the {timeout:.0f} s timeout, BENCH_TIMEOUT_S)")
        if self.failed:
            print(f"== {self.name}: FAILED (exit {self.returncode}"
                  f"{', no RESULT line' if self.result is None else ''}) after "
                  f"{self.seconds:.0f} s", flush=True)
        else:
            print(f"== {self.name}: done in {self.seconds:.0f} s", flush=True)

    @staticmethod
    def interrupt(proc: subprocess.Popen) -> None:
        """SIGINT to the bench (by PID), 60 s for it to clean up, then SIGKILL its group."""
        if proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGINT)
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the bench and what it forked
        except ProcessLookupError:
            pass


def benches() -> list[Bench]:
    """The benches of this run, with their sizes."""
    s = setting
    out = [
        Bench("baseline", ["bench/baseline.py", s("BENCH_BASELINE_EVENTS")]),
        Bench("intake", ["bench/intake_bench.py", s("BENCH_INTAKE_N"),
                         s("BENCH_BASELINE_EVENTS")]),
        Bench("eligibility", ["bench/eligibility_bench.py", s("BENCH_REEVAL_N"), s("BENCH_RATES"),
                              s("BENCH_LATENCY_S"), s("BENCH_ELIGIBILITY_N")]),
        Bench("supervision", ["bench/supervision_bench.py", s("BENCH_TIMELINE_N"), "10"]),
        Bench("disbursement", ["bench/disbursement_bench.py", s("BENCH_SETTLE_N"),
                               s("BENCH_CONCURRENCY"), s("BENCH_PROJECTION_N")]),
    ]
    if os.environ.get("BENCH_EXTRAS", "") not in ("", "0"):
        out += [Bench("registry", ["bench/registry_bench.py", *(
                    ("2000", "50", "5") if QUICK else ("100000", "50", "20"))]),
                Bench("slice", ["bench/slice_bench.py", "300" if QUICK else "2000", "16"])]
    only = {n.strip() for n in os.environ.get("BENCH_ONLY", "").split(",") if n.strip()}
    return [b for b in out if not only or b.name in only]


# ---- the table ---------------------------------------------------------------------------------

def verdict(ok: bool | None, scaled: bool = False) -> str:
    """met / missed (pro rata when the size is not the issue's)."""
    if ok is None:
        return "—"
    return ("met" if ok else "**missed**") + (" (pro rata)" if scaled else "")


def rows(run: dict[str, Bench]) -> list[tuple[str, str, str, str, str]]:
    """(figure, measured, ratio to baseline, target, met/missed) for every figure of the run."""
    out: list[tuple[str, str, str, str, str]] = []

    def res(name: str) -> dict | None:
        b = run.get(name)
        return None if b is None or b.failed else b.result

    def failed(name: str, figure: str, target: str = "") -> None:
        if name in run:
            out.append((figure, "failed", "—", target, "failed"))

    base = res("baseline")
    intake = res("intake")
    alone_base = base["rate"] if base else (intake["baseline"] if intake else None)
    alone_note = "" if base else " (intake's baseline)"

    def ratio(events_per_s: float, baseline: float | None) -> tuple[str, float | None]:
        if not baseline:
            return "—", None
        r = events_per_s / baseline
        return f"{r:.3f}", r

    if base:
        out.append(("raw one-hop baseline, alone (events/s)",
                    f"{base['rate']:,.0f} ({base['events']:,} events)", "1", "", ""))
    else:
        failed("baseline", "raw one-hop baseline, alone (events/s)")
    if intake:
        out.append(("raw one-hop baseline, in the intake run, everything running (events/s)",
                    f"{intake['baseline']:,.0f} ({intake['baseline_events']:,} events)",
                    f"{intake['baseline'] / base['rate']:.3f} of the alone one" if base else "1",
                    "", ""))
        text, r = ratio(2 * intake["households_per_s"], intake["baseline"])
        out.append(("**intake end to end** (households/s; 2 registry events each)",
                    f"**{intake['households_per_s']:,.0f}** ({intake['accepted']:,} in "
                    f"{intake['t_all']:.1f} s; import {intake['t_import']:.1f} s, classified "
                    f"{intake['t_classified']:.1f} s, on timelines {intake['t_timeline']:.1f} s)",
                    f"**{text}**", "≥ 0.3 × baseline", verdict(r is not None and r >= 0.3)))
    else:
        failed("intake", "intake end to end (households/s)", "≥ 0.3 × baseline")

    elig = res("eligibility")
    if elig and elig.get("alone"):
        a = elig["alone"]
        text, r = ratio(a["rate"], alone_base)
        drained = elig.get("outbox_drain_s")
        out.append(("eligibility consumer alone (surveyed events/s)",
                    f"{a['rate']:,.0f} ({a['items']:,} in {a['seconds']:.1f} s"
                    + (f"; its {2 * a['items']:,} decision events all published "
                       f"{drained:.1f} s after the last decision" if drained is not None else "")
                    + ")",
                    text + alone_note, "≥ 0.5 × baseline", verdict(r is not None and r >= 0.5)))
    else:
        failed("eligibility", "eligibility consumer alone (events/s)", "≥ 0.5 × baseline")
    sup = res("supervision")
    if sup:
        t = sup["timeline"]
        text, r = ratio(t["rate"], alone_base)
        out.append(("supervision timeline consumer alone (events/s)",
                    f"{t['rate']:,.0f} ({t['items']:,} in {t['seconds']:.1f} s)",
                    text + alone_note, "≥ 0.5 × baseline", verdict(r is not None and r >= 0.5)))
    else:
        failed("supervision", "supervision timeline consumer alone (events/s)",
               "≥ 0.5 × baseline")
    disb = res("disbursement")
    if disb and disb.get("projection"):
        p = disb["projection"]
        text, _ = ratio(p["rate"], alone_base)
        out.append(("disbursement eligibility projection alone (events/s)",
                    f"{p['rate']:,.0f} ({p['events']:,} events, {p['households']:,} households, "
                    f"in {p['seconds']:.1f} s)", text + alone_note, "", "—"))
    else:
        failed("disbursement", "disbursement eligibility projection alone (events/s)")

    if elig:
        job = elig["reeval_corrected"]
        n, secs = job["processed"], job["seconds"]
        issue_n = ISSUE["BENCH_REEVAL_N"]
        ok = job["status"] == "done" and n > 0 and secs <= 300 * n / issue_n
        first = elig["reeval_first"]
        out.append(("re-evaluation after a line correction (s)",
                    f"{secs:.1f} s for {n:,} households ({n / secs:,.0f}/s; {job['changed']:,} "
                    f"changed; first decision of all {first['seconds']:.1f} s) [{job['status']}]",
                    "—", f"≤ 300 s per {issue_n:,}", verdict(ok, n != issue_n)))
        for load in elig["latency"]:
            limit = LATENCY_TARGETS_MS.get(load["asked"])
            p99 = load["p99"] * 1000
            slow = load["rate"] < 0.9 * load["asked"]
            out.append((f"survey → decision latency at {load['asked']:,}/s (p50 / p99)",
                        f"{load['p50'] * 1000:,.0f} / {p99:,.0f} ms ({load['events']:,} events, "
                        f"sent at {load['rate']:,.0f}/s{', BELOW the rate asked' if slow else ''})",
                        "—", f"p99 ≤ {limit} ms" if limit else "",
                        verdict(None if limit is None else p99 <= limit and not slow)))
        if elig.get("eligibility_hwm_mib"):
            out.append(("eligibility peak RSS through the re-evaluations (MB, VmHWM)",
                        f"{elig['eligibility_hwm_mib'] * 1.048576:,.0f}", "—",
                        "flat in the input size", "—"))
    else:
        failed("eligibility", "re-evaluation after a line correction (s)",
               f"≤ 300 s per {ISSUE['BENCH_REEVAL_N']:,}")
        if "eligibility" in run:
            for rate in setting("BENCH_RATES").split(","):
                limit = LATENCY_TARGETS_MS.get(int(rate))
                failed("eligibility", f"survey → decision latency at {int(rate):,}/s (p50 / p99)",
                       f"p99 ≤ {limit} ms" if limit else "")

    if disb:
        n, secs = disb["applications"], disb["settle_s"]
        issue_n = ISSUE["BENCH_SETTLE_N"]
        ok = disb["settled"] >= n and disb["counts_ok"] and secs <= 60 * n / issue_n
        out.append(("confirmed applications → settled by the reference partner (s)",
                    f"{secs:.1f} s for {disb['settled']:,}/{n:,} ({disb['settled'] / secs:,.0f}/s"
                    f", the partner started after the last confirmation; count check "
                    f"{'ok' if disb['counts_ok'] else 'MISMATCH'})", "—",
                    f"≤ 60 s per {issue_n:,}", verdict(ok, n != issue_n)))
        out.append(("loan confirmations through the API (requests/s)",
                    f"{n / disb['confirm_s']:,.1f} ({n:,} in {disb['confirm_s']:.1f} s, "
                    f"{disb['concurrency']} at a time)", "—", "", "—"))
    else:
        failed("disbursement", "confirmed applications → settled (s)",
               f"≤ 60 s per {ISSUE['BENCH_SETTLE_N']:,}")

    if intake:
        for name in intake["rss_mib"]:
            sampled, hwm = intake["rss_mib"][name], intake["hwm_mib"].get(name, 0.0)
            service = name in intake["services"]
            mb = max(sampled, hwm) * 1.048576
            out.append((f"peak RSS {name} during the intake (MB, sampled / VmHWM)",
                        f"{sampled * 1.048576:,.0f} / {hwm * 1.048576:,.0f}", "—",
                        f"≤ {RSS_LIMIT_MB} MB" if service else "",
                        verdict(mb <= RSS_LIMIT_MB if service else None)))
        written = intake["span_bytes"] - intake["span_bytes_before"]
        if written <= 0:  # rotated away during the intake: the whole file per household
            written = intake["span_bytes"]
        per = written / intake["households"]
        out.append(("span file written during the intake (bytes per household)",
                    f"{per:,.0f} ({written / 2**20:.1f} MiB for {intake['households']:,}; "
                    f"file {intake['span_bytes'] / 2**20:.1f} MiB)", "—",
                    f"≤ {SPAN_LIMIT_B:,} B (2 KB)", verdict(per <= SPAN_LIMIT_B)))
    else:
        failed("intake", "peak RSS of each service during the intake (MB)", f"≤ {RSS_LIMIT_MB} MB")
        failed("intake", "span file (bytes per household)", f"≤ {SPAN_LIMIT_B:,} B (2 KB)")

    for name, label in (("registry", "registry import (rows/s) / POST /v1/households p99"),
                        ("slice", "slice registry → eligibility (events/s)")):
        r = res(name)
        if r and name == "registry":
            out.append((label, f"{r['imported']['rows_per_s']:,.0f} rows/s / "
                               f"{r['post']['p99_ms']:,.0f} ms at {r['post']['rate']}/s",
                        "—", "", "—"))
        elif r:
            out.append((label, f"{r['events_per_s']:,.0f}", "—", "", "—"))
        else:
            failed(name, label)
    return out


def machine() -> str:
    """Date, machine and code version of the run."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor() or "?")
    mem = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text()
                .splitlines() if line.startswith("MemTotal:")), 0.0)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               text=True, capture_output=True, check=True).stdout.strip()
        commit += " (uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC — nproc {len(os.sched_getaffinity(0))} "
            f"({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()} on "
            f"{platform.system()} {platform.machine()}; commit {commit}")


def table(run: dict[str, Bench], wall: float) -> str:
    """The one markdown table of the run, with its header and notes."""
    sizes = ", ".join(f"{k.removeprefix('BENCH_')}={setting(k)}" for k in DEFAULTS
                      if k not in ("BENCH_TIMEOUT_S", "BENCH_CONCURRENCY"))
    times = ", ".join(f"{b.name} {b.seconds:.0f} s" for b in run.values())
    lines = [f"## `make bench`{' (BENCH_QUICK=1)' if QUICK else ''}: {machine()}", "",
             f"Sizes: {sizes}. Whole run {wall / 60:.1f} min ({times}).", "",
             "| figure | measured | ratio to baseline | target | met? |",
             "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows(run)]
    lines += ["",
              "The intake runs everything as `make run` runs it (tracing at its default, the span "
              "file on) and its ratio is to its own baseline on the same broker and PostgreSQL; "
              "each consumer alone (a backlog published before the service starts, timed from its "
              "first output, tracing off) is a ratio to the standalone baseline. Latency: "
              "eligibility alone, tracing off. \"pro rata\": the size is not the issue's, the "
              "target is scaled to it."]
    return "\n".join(lines)


def main() -> int:
    """Run every bench, print the table, 1 when any failed."""
    wall = time.perf_counter()
    timeout = float(setting("BENCH_TIMEOUT_S"))
    run: dict[str, Bench] = {}
    try:
        for bench in benches():
            run[bench.name] = bench
            bench.run(timeout)
    except KeyboardInterrupt:
        print("\ninterrupted: the table of what ran so far", flush=True)
    failures = [b for b in run.values() if b.failed]
    for b in failures:
        print(f"\n== {b.name} FAILED (exit {b.returncode}); last lines of its output:")
        print("\n".join(f"   {line}" for line in b.tail))
    print("\n" + table(run, time.perf_counter() - wall), flush=True)
    return 1 if failures or len(run) < len(benches()) else 0


if __name__ == "__main__":
    sys.exit(main())
