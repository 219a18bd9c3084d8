"""Backbone slice throughput: registry write → consumed by eligibility, with four real processes.

Posts N households to the registry over HTTP (concurrency C) and measures how fast eligibility's
consumer has processed them (its /metrics counter), on a fresh embedded broker + PostgreSQL.
Run: .venv/bin/python bench/slice_bench.py [N] [C]
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import report  # noqa: E402
from tests.support.apps import auth  # noqa: E402
from tests.support.system import running_system  # noqa: E402


def processed(metrics_text: str) -> int:
    """Registry events eligibility has handled (processed or ignored), from Prometheus text."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("consumer_events_processed_total{") and 'topic="registry.households"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def main(n: int, concurrency: int) -> None:
    """Run the measurement and print the figures."""
    with running_system() as system:
        token = auth("commune_officer", "01001")
        base = int(time.time()) % 10_000_000
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=30) as client:
            start_count = processed((await client.get(f"{system.url('eligibility')}/metrics")).text)

            async def post(i: int) -> None:
                body = {"area_type": "rural",
                        "location": {"province_code": "01", "commune_code": "01001",
                                     "village": f"Thôn {i % 12 + 1}"},
                        "members": [{"full_name": f"Nguyễn Văn Bench {i}",
                                     "national_id": f"{base:07d}{i:05d}",
                                     "date_of_birth": "1980-01-01", "sex": "male",
                                     "relation": "head"}]}
                async with sem:
                    r = await client.post(f"{system.url('registry')}/v1/households", json=body,
                                          headers=token)
                    r.raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(post(i) for i in range(n)))
            t_write = time.perf_counter() - t0
            deadline = time.monotonic() + 300
            while True:
                text = (await client.get(f"{system.url('eligibility')}/metrics")).text
                done = processed(text) - start_count
                if done >= n or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            t_all = time.perf_counter() - t0
    print(f"households posted: {n} (concurrency {concurrency})")
    print(f"registry writes:   {n / t_write:8.1f} req/s  ({t_write:.2f} s)")
    print(f"slice end to end:  {done / t_all:8.1f} events/s consumed by eligibility "
          f"({done}/{n} in {t_all:.2f} s)")
    report("slice", households=n, done=done, events_per_s=done / t_all, writes_per_s=n / t_write)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 16))
