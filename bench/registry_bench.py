"""Registry: bulk import throughput and memory, and POST /v1/households latency at a steady rate.

Starts a fresh embedded broker + PostgreSQL and the registry as a separate process, then
1. generates N households (1–5 members each, an inline survey) as an NDJSON file on disk, uploads
   it to POST /v1/imports (streamed) and times it until the job is done → rows/s; the service
   process' peak RSS (VmHWM) before and after; then the time until the relay has published all
   2·N events (registered + surveyed);
2. posts households at a steady R requests/s for S seconds (open loop: each request is sent at
   its scheduled time, whatever the previous ones do) → p50/p99 latency.
Run: .venv/bin/python bench/registry_bench.py [N] [R] [S]   (defaults 100000 50 20)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOME = Path(tempfile.mkdtemp(prefix="everydoor-registry-bench-"))
os.environ["EVERYDOOR_HOME"] = str(HOME)  # dev key shared with the child process

from bench.common import report  # noqa: E402
from services.registry import events  # noqa: E402
from services.supervision import events as supervision_events  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.infra import EmbeddedInfra, free_port  # noqa: E402
from shared.processes import ServiceProcess  # noqa: E402

COMMUNES = [("11", "11001"), ("11", "11002"), ("08", "08001"), ("14", "14001"), ("52", "52001")]
SURNAMES = ["Nguyễn", "Lò", "Vàng", "Giàng", "Hà", "Lường", "Sùng", "Trần", "Lê", "Phạm"]
GIVEN = ["Văn", "Thị", "A", "Seo", "Minh", "Thu", "Páo", "Dế", "Chư", "Mai", "Lan", "Cường"]
INDICATORS = list(events.INDICATOR_CODES)


def bearer(role: str, scope: str = "VN") -> dict[str, str]:
    """Dev token header."""
    return {"Authorization": f"Bearer {issue_token(role=role, scope=scope)}"}


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount, _ = line.split()
            values[key] = int(amount) / 1024
    return values["VmRSS:"], values["VmHWM:"]


def generate(path: Path, n: int, base: int) -> int:
    """Write n NDJSON households (streamed to disk); return the member count."""
    rnd = random.Random(7)
    members_total = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            province, commune = COMMUNES[i % len(COMMUNES)]
            size = rnd.randint(1, 5)
            members = []
            for j in range(size):
                members.append({
                    "full_name": f"{rnd.choice(SURNAMES)} {rnd.choice(GIVEN)} {rnd.choice(GIVEN)}",
                    "national_id": f"{base + i * 5 + j:012d}",
                    "date_of_birth": f"{rnd.randint(1940, 2020)}-{rnd.randint(1, 12):02d}-"
                                     f"{rnd.randint(1, 28):02d}",
                    "sex": rnd.choice(["male", "female"]),
                    "relation": "head" if j == 0 else rnd.choice(["spouse", "child", "parent"])})
            members_total += size
            fh.write(json.dumps({
                "external_ref": f"bench-{base}-{i}", "area_type": "rural",
                "location": {"province_code": province, "commune_code": commune,
                             "village": f"Bản {i % 40 + 1}"},
                "members": members,
                "survey": {"survey_date": "2025-09-15", "review_round": "2025",
                           "income_per_capita_vnd": rnd.randint(300_000, 3_000_000),
                           "deprivations": {c: rnd.random() < 0.3 for c in INDICATORS},
                           "facts": {"housing_area_m2": rnd.randint(8, 80)}},
            }, ensure_ascii=False) + "\n")
    return members_total


async def backlog(client: httpx.AsyncClient) -> int:
    """Unpublished outbox rows, from /metrics."""
    text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("outbox_backlog "):
            return int(float(line.split()[1]))
    return -1


async def file_chunks(path: Path, size: int = 256 * 1024):
    """The file as an async byte stream (the upload never sits in memory)."""
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


async def bench_import(client: httpx.AsyncClient, pid: int, n: int) -> dict:
    """Generate, upload, time the job; memory of the service process."""
    path = HOME / "households.ndjson"
    base = 100_000_000_000
    t = time.perf_counter()
    members = await asyncio.to_thread(generate, path, n, base)
    print(f"generated {n} households ({members} members), "
          f"{path.stat().st_size / 2**20:.1f} MiB NDJSON in {time.perf_counter() - t:.1f} s")
    rss_before, hwm_before = peak_rss_mb(pid)
    admin = bearer("national_admin")
    t0 = time.perf_counter()
    r = await client.post("/v1/imports", content=file_chunks(path), timeout=600,
                          headers={**admin, "Content-Type": "application/x-ndjson"})
    r.raise_for_status()
    job = r.json()
    t_upload = time.perf_counter() - t0
    hwm_samples = []
    while True:
        job = (await client.get(f"/v1/imports/{job['import_id']}", headers=admin)).json()
        hwm_samples.append(peak_rss_mb(pid)[0])
        if job["status"] != "running":
            break
        await asyncio.sleep(0.5)
    t_import = time.perf_counter() - t0
    rss_after, hwm_after = peak_rss_mb(pid)
    assert job["status"] == "done", job
    print(f"import job: {job['accepted']} accepted, {job['rejected']} rejected, "
          f"{job['skipped']} skipped (upload {t_upload:.1f} s)")
    print(f"IMPORT   {n} households in {t_import:.1f} s = {n / t_import:,.0f} rows/s "
          f"({members / t_import:,.0f} members/s, {2 * n / t_import:,.0f} events/s into outbox)")
    print(f"MEMORY   service RSS before {rss_before:.0f} MiB (peak so far {hwm_before:.0f}), "
          f"max during import {max(hwm_samples):.0f} MiB, peak (VmHWM) {hwm_after:.0f} MiB, "
          f"after {rss_after:.0f} MiB")
    left = await backlog(client)
    for _ in range(3600):  # at most 30 minutes
        if left <= 0:
            break
        await asyncio.sleep(0.5)
        left = await backlog(client)
    t_pub = time.perf_counter() - t0
    print(f"RELAY    all {2 * n} events published {t_pub:.1f} s after the upload started "
          f"({2 * n / t_pub:,.0f} events/s end to end); backlog {left}")
    path.unlink()
    return {"rows_per_s": n / t_import, "import_s": t_import, "hwm_mib": hwm_after,
            "published_s": t_pub, "backlog": left}


async def bench_latency(client: httpx.AsyncClient, rate: int, seconds: int) -> dict:
    """Open-loop POST /v1/households at `rate`/s for `seconds`."""
    officer = bearer("commune_officer", "11001")
    base = 200_000_000_000
    latencies: list[float] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        body = {"area_type": "rural",
                "location": {"province_code": "11", "commune_code": "11001",
                             "village": f"Bản {i % 12 + 1}"},
                "members": [{"full_name": f"Lò Văn Đo {i}", "national_id": f"{base + i:012d}",
                             "date_of_birth": "1980-01-01", "sex": "male", "relation": "head"},
                            {"full_name": f"Lò Thị Đo {i}", "national_id": f"{base + 500_000 + i:012d}",
                             "date_of_birth": "1982-02-02", "sex": "female",
                             "relation": "spouse"}]}
        t = time.perf_counter()
        r = await client.post("/v1/households", json=body, headers=officer)
        latencies.append(time.perf_counter() - t)
        if r.status_code != 201:
            failures += 1

    total = rate * seconds
    start = time.perf_counter() + 0.2
    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    print(f"LATENCY  POST /v1/households at {rate} req/s for {seconds} s ({total} requests, "
          f"{total / elapsed:.1f} req/s achieved, {failures} failures): "
          f"p50 {q[49] * 1000:.1f} ms, p90 {q[89] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    return {"rate": rate, "achieved": total / elapsed, "failures": failures,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


async def main(n: int, rate: int, seconds: int) -> None:
    """Start the infra and the registry, run both measurements, stop everything by PID."""
    topics = [events.TOPIC, supervision_events.TOPIC, supervision_events.TOPIC + ".dlq"]
    infra = EmbeddedInfra(state=HOME / "infra", broker_port=free_port(), pg_port=free_port(),
                          databases=["everydoor_registry"], topics=topics).start()
    port = free_port()
    registry = ServiceProcess(
        name="registry", module="services.registry", port=port, log_path=HOME / "registry.log",
        env={"KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
             "DATABASE_URL": infra.database_url, "REGISTRY_PORT": str(port),
             "OTEL_TRACES_EXPORTER": "none"})
    try:
        registry.start()
        await asyncio.to_thread(registry.wait_ready, 120)
        assert registry.pid is not None
        async with httpx.AsyncClient(base_url=registry.url, timeout=60,
                                     limits=httpx.Limits(max_connections=200)) as client:
            imported = await bench_import(client, registry.pid, n)
            post = await bench_latency(client, rate, seconds)
        report("registry", households=n, imported=imported, post=post)
    finally:
        registry.stop()
        infra.stop()
        print(f"(state and logs: {HOME})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 50,
                     int(sys.argv[3]) if len(sys.argv) > 3 else 20))
