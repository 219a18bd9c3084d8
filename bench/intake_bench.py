"""The headline: a province's intake end to end, as `make run` runs it, against the raw baseline.

Starts what `make run` starts — the embedded broker + PostgreSQL, the four services and the
reference bank partner as processes, the span file on (EVERYDOOR_SPAN_FILE, tracing at its
default) — in a temporary home with free ports, then in the same run:
1. the raw one-hop baseline (`bench/baseline.py`, aiokafka + asyncpg only) on the same broker and
   PostgreSQL → events/s;
2. the intake: N households (1–5 members, a survey each; the demo generator's names and surveys,
   spread over the demo rural communes) as one NDJSON upload to registry's `POST /v1/imports`,
   timed from upload start until eligibility has classified every one (household rows with a
   current classification, counted in its database) and supervision has both registry events
   of each (registered + surveyed) on its timelines (timeline_entry rows of the import, counted
   in its database) → households/s and ratio = 2 × households/s / baseline events/s;
3. peak RSS of each process during the intake (VmRSS sampled every 0.5 s, and VmHWM at the end);
   span-file bytes per household (the span file and any rotated ones after the intake / N).
Prints one markdown table with the date and machine. Stops everything it started, by PID.
Run: .venv/bin/python bench/intake_bench.py [N=100000] [BASELINE_EVENTS=50000]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOME = Path(tempfile.mkdtemp(prefix="everydoor-intake-bench-"))
os.environ["EVERYDOOR_HOME"] = str(HOME)  # state, dev key and spooled uploads, shared with children

from bench.baseline import asyncpg_dsn, run_baseline  # noqa: E402
from bench.common import report  # noqa: E402
from services.cli import DATABASES, bank_partner_process, topics  # noqa: E402
from services.demo.households import household  # noqa: E402
from services.registry import events as registry_events  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.infra import EmbeddedInfra, free_port  # noqa: E402
from shared.processes import SERVICES, ServiceProcess, service_processes  # noqa: E402

# The demo's rural communes (services/registry/data/admin_units.csv): (province, commune).
COMMUNES = [("08", "08001"), ("08", "08002"), ("08", "08003"), ("11", "11001"), ("11", "11002"),
            ("11", "11003"), ("14", "14001")]
VILLAGES = [f"Thôn {i}" for i in range(1, 41)]
SURVEY_DATE = date(2026, 10, 15)
REVIEW_ROUND = "2026-periodic"
STALL_S = 180  # no progress at all for this long → report what is stuck and stop


def generate(path: Path, n: int, base: int) -> int:
    """N import lines on disk (the demo generator, members capped at 5, unique national IDs)."""
    members_total = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            province, commune = COMMUNES[i % len(COMMUNES)]
            line = household(i, province_code=province, commune_code=commune, villages=VILLAGES,
                             survey_date=SURVEY_DATE, review_round=REVIEW_ROUND)
            line["external_ref"] = f"INTAKE-{base}-{i:07d}"
            line["members"] = line["members"][:5]  # the head comes first
            for j, m in enumerate(line["members"]):
                m["national_id"] = f"{base + i * 5 + j:012d}"
            members_total += len(line["members"])
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return members_total


async def file_chunks(path: Path, size: int = 256 * 1024):
    """The file as an async byte stream (the upload never sits in memory)."""
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB, from /proc."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount, _ = line.split()
            values[key] = int(amount) / 1024
    return values["VmRSS:"], values["VmHWM:"]


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU time of a process (and, if asked, of its live child processes: the
    PostgreSQL backends under the postmaster), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    if with_children:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    continue
                if int(fields[1]) == pid:
                    pids.append(int(entry.name))
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class RssSampler:
    """Peak VmRSS per process, sampled in the background while the intake runs; CPU seconds
    each spent during it (where the 2 cores went)."""

    def __init__(self, procs: list[ServiceProcess], infra_pids: dict[str, int]) -> None:
        self.pids = {p.name: p.pid for p in procs if p.pid is not None}
        self.infra_pids = infra_pids
        self.peak = dict.fromkeys(self.pids, 0.0)
        self.hwm = dict.fromkeys(self.pids, 0.0)
        self.cpu: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds so far of every service, the broker and PostgreSQL (with its backends)."""
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        for name, pid in self.infra_pids.items():
            now[name] = cpu_seconds(pid, with_children=name == "postgres")
        return now

    def sample(self) -> None:
        """One reading of every process still alive."""
        for name, pid in self.pids.items():
            try:
                rss, hwm = memory_mib(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            self.peak[name] = max(self.peak[name], rss)
            self.hwm[name] = hwm

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.5)

    def __enter__(self) -> RssSampler:
        self.cpu = self.cpu_now()
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()
        end = self.cpu_now()
        self.cpu = {name: end[name] - self.cpu.get(name, 0.0) for name in end}


def span_bytes(span_file: Path) -> int:
    """Bytes in the span file and its rotated siblings (spans.jsonl.1, …)."""
    return sum(p.stat().st_size for p in span_file.parent.glob(span_file.name + "*")
               if p.is_file() and not p.name.endswith(".lock"))


class Counts:
    """Reads the intake's progress straight from the services' databases."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.eligibility: asyncpg.Connection | None = None
        self.supervision: asyncpg.Connection | None = None

    async def open(self) -> None:
        """One connection to each database."""
        self.eligibility = await asyncpg.connect(asyncpg_dsn(self.url, "everydoor_eligibility"))
        self.supervision = await asyncpg.connect(asyncpg_dsn(self.url, "everydoor_supervision"))

    async def close(self) -> None:
        """Close both connections."""
        for conn in (self.eligibility, self.supervision):
            if conn is not None:
                await conn.close()

    async def classified(self) -> int:
        """Households eligibility has a current classification for."""
        assert self.eligibility is not None
        return int(await self.eligibility.fetchval(
            "select count(*) from household where current_classification_id is not null"))

    async def on_timelines(self, job_id: str) -> int:
        """Registry events of the import on supervision's timelines."""
        assert self.supervision is not None
        return int(await self.supervision.fetchval(
            "select count(*) from timeline_entry where topic = $1 and correlation_id = $2",
            registry_events.TOPIC, job_id))

    async def timeline_types(self, job_id: str) -> dict[str, int]:
        """Timeline entries of the import by event type (for the report)."""
        assert self.supervision is not None
        rows = await self.supervision.fetch(
            "select type, count(*) as n from timeline_entry where correlation_id = $1 "
            "group by type order by type", job_id)
        return {r["type"]: r["n"] for r in rows}


async def intake(registry: ServiceProcess, counts: Counts, path: Path, n: int) -> dict:
    """Upload, then poll the job and both databases until every household is through."""
    admin = {"Authorization": f"Bearer {issue_token(role='national_admin', scope='VN')}"}
    result: dict = {}
    async with httpx.AsyncClient(base_url=registry.url, timeout=600) as client:
        t0 = time.perf_counter()
        r = await client.post("/v1/imports", content=file_chunks(path),
                              headers={**admin, "Content-Type": "application/x-ndjson"})
        if r.status_code != 202:
            raise RuntimeError(f"POST /v1/imports → {r.status_code}: {r.text[:500]}")
        job = r.json()
        job_id = job["import_id"]
        result["upload_s"] = time.perf_counter() - t0
        expected = n
        t_import = t_classified = t_timeline = None
        classified = timeline = 0
        last_change, last_state = time.perf_counter(), None
        next_print = 0.0
        while t_classified is None or t_timeline is None:
            now = time.perf_counter() - t0
            if t_import is None:
                job = (await client.get(f"/v1/imports/{job_id}", headers=admin)).json()
                if job["status"] == "failed":
                    raise RuntimeError(f"import job failed: {job}")
                if job["status"] == "done":
                    t_import = now
                    expected = int(job["accepted"])
                    if expected != n:
                        errors = (await client.get(f"/v1/imports/{job_id}/errors",
                                                   headers=admin)).text
                        print(f"  import: {job['accepted']} accepted, {job['rejected']} rejected, "
                              f"{job['skipped']} skipped; first errors:\n"
                              + "\n".join(errors.splitlines()[:6]))
                    print(f"  [{now:7.1f} s] import job done: {job['accepted']} accepted "
                          f"({expected / now:,.0f} rows/s)", flush=True)
            classified = await counts.classified()
            timeline = await counts.on_timelines(job_id)
            if t_classified is None and t_import is not None and classified >= expected:
                t_classified = time.perf_counter() - t0
            if t_timeline is None and t_import is not None and timeline >= 2 * expected:
                t_timeline = time.perf_counter() - t0
            state = (job.get("accepted"), classified, timeline)
            if state != last_state:
                last_change, last_state = time.perf_counter(), state
            elif time.perf_counter() - last_change > STALL_S:
                raise RuntimeError(
                    f"intake stuck for {STALL_S} s at {now:.0f} s: import "
                    f"{job.get('status')} ({job.get('accepted')} accepted of {n}), "
                    f"{classified}/{expected} classified, {timeline}/{2 * expected} registry "
                    f"events on timelines; by type {await counts.timeline_types(job_id)}")
            if now >= next_print:
                print(f"  [{now:7.1f} s] imported {job.get('accepted', 0):>7}/{n}  classified "
                      f"{classified:>7}/{expected}  on timelines {timeline:>7}/{2 * expected}",
                      flush=True)
                next_print = now + (2 if n <= 5000 else 10)
            if t_classified is None or t_timeline is None:
                await asyncio.sleep(0.5 if n <= 10_000 else 1.0)
        result.update(job=job, expected=expected, t_import=t_import, t_classified=t_classified,
                      t_timeline=t_timeline, t_all=max(t_classified, t_timeline),
                      types=await counts.timeline_types(job_id))
    return result


def table(n: int, members: int, baseline: float, baseline_events: int, res: dict,
          rss: RssSampler, span_total: int, span_before: int, wall: float) -> str:
    """The markdown table of the run."""
    hh_s = res["expected"] / res["t_all"]
    ratio = 2 * hh_s / baseline
    rows = [
        ("raw one-hop baseline (events/s)", f"{baseline:,.0f} ({baseline_events:,} events)",
         "1", ""),
        ("import (rows/s, upload start → job done)", f"{res['expected'] / res['t_import']:,.0f}",
         f"{res['expected'] / res['t_import'] * 2 / baseline:.3f}", ""),
        ("eligibility (households classified/s)", f"{res['expected'] / res['t_classified']:,.0f}",
         f"{2 * res['expected'] / res['t_classified'] / baseline:.3f}", ""),
        ("supervision (registry events on timelines/s)",
         f"{2 * res['expected'] / res['t_timeline']:,.0f}",
         f"{2 * res['expected'] / res['t_timeline'] / baseline:.3f}", ""),
        ("**intake end to end (households/s)**",
         f"**{hh_s:,.0f}** ({res['expected']:,} in {res['t_all']:.1f} s)", f"**{ratio:.3f}**",
         "≥ 0.3 × baseline"),
    ]
    for name in rss.pids:
        rows.append((f"peak RSS {name} (MiB, sampled / VmHWM)",
                     f"{rss.peak[name]:.0f} / {rss.hwm[name]:.0f}", "—",
                     "≤ 300 MB" if name in SERVICES else ""))
    for name, seconds in sorted(rss.cpu.items(), key=lambda kv: -kv[1]):
        rows.append((f"CPU {name} (ms per household)", f"{1000 * seconds / n:.2f}", "—", ""))
    rows.append(("span file (bytes per household)",
                 f"{span_total / n:,.0f} ({span_total / 2**20:.1f} MiB; "
                 f"{span_before / 2**20:.1f} MiB before the intake)", "—", "≤ 2 KB"))
    head = (f"Intake bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {os.cpu_count()} cores "
            f"(nproc {len(os.sched_getaffinity(0))}), Python {platform.python_version()}, "
            f"{platform.machine()}; N = {n:,} households ({members:,} members), "
            f"everything running as `make run` runs it; whole run {wall:.0f} s\n\n")
    lines = ["| figure | measured | ratio to baseline | target |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return head + "\n".join(lines)


async def main(n: int, baseline_events: int) -> None:
    """Start everything, run the baseline then the intake, print the table, stop by PID."""
    wall = time.perf_counter()
    span_file = HOME / "spans.jsonl"
    infra = EmbeddedInfra(state=HOME, broker_port=free_port(), pg_port=free_port(),
                          databases=DATABASES, topics=topics())
    procs: list[ServiceProcess] = []
    counts = Counts(infra.database_url)
    try:
        await asyncio.to_thread(infra.start)
        env = {"KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
               "DATABASE_URL": infra.database_url, "EVERYDOOR_SPAN_FILE": str(span_file)}
        procs = [*service_processes(env=env, log_dir=HOME / "logs",
                                    ports={name: free_port() for name in SERVICES}),
                 bank_partner_process(env=env, home=HOME, port=free_port())]
        for p in procs:
            p.start()
        for p in procs:
            await asyncio.to_thread(p.wait_ready, 120)
        print(f"started broker, PostgreSQL, {', '.join(p.name for p in procs)} in "
              f"{time.perf_counter() - wall:.1f} s (home {HOME})", flush=True)

        t = time.perf_counter()
        baseline = await run_baseline(infra.bootstrap_servers, infra.database_url,
                                      events=baseline_events)
        print(f"BASELINE {baseline:,.0f} events/s ({baseline_events:,} events, "
              f"{time.perf_counter() - t:.1f} s with setup)", flush=True)

        path = HOME / "intake.ndjson"
        t = time.perf_counter()
        members = await asyncio.to_thread(generate, path, n, 300_000_000_000)
        print(f"generated {n:,} households ({members:,} members, "
              f"{path.stat().st_size / 2**20:.1f} MiB NDJSON) in {time.perf_counter() - t:.1f} s",
              flush=True)

        await counts.open()
        span_before = span_bytes(span_file)
        registry = next(p for p in procs if p.name == "registry")
        with RssSampler(procs, dict(zip(("broker", "postgres"), infra.pids, strict=False))) as rss:
            res = await intake(registry, counts, path, n)
        for p in procs:
            if p.pid is None:
                raise RuntimeError(f"{p.name} exited during the intake:\n{p.log_tail()}")
        span_total = span_bytes(span_file)
        print(f"timeline entries of the import by type: {res['types']}")
        print(f"INTAKE   {res['expected']:,} households: import done {res['t_import']:.1f} s, "
              f"classified {res['t_classified']:.1f} s, on timelines {res['t_timeline']:.1f} s "
              f"(upload {res['upload_s']:.1f} s)\n")
        print(table(n, members, baseline, baseline_events, res, rss, span_total, span_before,
                    time.perf_counter() - wall))
        hh_s = res["expected"] / res["t_all"]
        report("intake", households=n, accepted=res["expected"], members=members,
               baseline=baseline, baseline_events=baseline_events, households_per_s=hh_s,
               ratio=2 * hh_s / baseline, t_import=res["t_import"],
               t_classified=res["t_classified"], t_timeline=res["t_timeline"],
               t_all=res["t_all"], rss_mib={k: rss.peak[k] for k in rss.pids},
               hwm_mib={k: rss.hwm[k] for k in rss.pids}, services=sorted(SERVICES),
               span_bytes=span_total, span_bytes_before=span_before,
               span_bytes_per_household=span_total / n)
    finally:
        (HOME / "intake.ndjson").unlink(missing_ok=True)
        await counts.close()
        for p in procs:
            p.stop()
        infra.stop()
        print(f"\n(state and logs: {HOME})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 50_000))
