"""Supervision: timeline ingestion, the public posting page, and public complaint filing.

Starts a fresh embedded broker + PostgreSQL; publishes a registration and a provisional
classification for N households of one commune (2N events) before the supervision service
starts (a separate process), times its timeline consumer alone from the first entry until every
event is in the timelines (the raw baseline's measure: a backlog, the group join untimed), then
posts the commune's list and times the public page (N households on one page) and C concurrent
complaint form posts. Ends with one `RESULT {json}` line (bench/run.py).
Run: .venv/bin/python bench/supervision_bench.py [N] [C]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOME = Path(tempfile.mkdtemp(prefix="everydoor-sup-bench-"))
os.environ["EVERYDOOR_HOME"] = str(HOME)  # dev key shared with the child process

from aiokafka import AIOKafkaProducer  # noqa: E402

from bench.baseline import asyncpg_dsn  # noqa: E402
from bench.common import count_or_zero, drain, report  # noqa: E402
from services.disbursement import events as disbursement_events  # noqa: E402
from services.eligibility import events as elig  # noqa: E402
from services.registry import events as reg  # noqa: E402
from services.supervision import events  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.envelope import Envelope  # noqa: E402
from shared.infra import EmbeddedInfra, free_port  # noqa: E402
from shared.processes import ServiceProcess  # noqa: E402

COMMUNE = "01001"


def envelopes(n: int) -> list[tuple[str, Envelope]]:
    """A registration and a provisional classification per household."""
    out = []
    for i in range(n):
        h, village, head = str(uuid.uuid4()), f"Thôn {i % 12 + 1}", f"Nguyễn Văn Bench {i}"
        snap = reg.HouseholdSnapshotV1(
            household_id=h, version=1, area_type="rural", head_name=head,
            location=reg.Location(province_code="01", commune_code=COMMUNE, village=village))
        first = Envelope(type=reg.HOUSEHOLD_REGISTERED, source=reg.SOURCE, subject=h,
                         data=reg.HouseholdRegisteredV1(household_id=h, version=1,
                                                        household=snap).model_dump(mode="json"))
        decided = elig.ClassificationDecidedV1(
            classification_id=str(uuid.uuid4()), household_id=h, category="poor",
            ruleset_id="vn-2022-2025", review_round="2026-periodic", area_type="rural",
            province_code="01", commune_code=COMMUNE, village=village, head_name=head,
            decided_at=datetime.now(UTC), explanation=elig.ExplanationV1(
                ruleset_id="vn-2022-2025", area_type="rural", income_per_capita_vnd=1_000_000,
                income_line_vnd=1_500_000, deprivation_count=3, threshold=3,
                deprived=[elig.Indicator(code="latrine", name_vi="Nhà tiêu hợp vệ sinh",
                                         name_en="Hygienic latrine")] * 3))
        out.append((reg.TOPIC, first))
        out.append((elig.TOPIC, first.caused(type=elig.CLASSIFICATION_DECIDED,
                                             source=elig.SOURCE,
                                             data=decided.model_dump(mode="json"))))
    return out


async def publish(bootstrap: str, items: list[tuple[str, Envelope]]) -> None:
    """Produce everything, batched."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, value=e.value(), key=e.key, headers=e.headers())
                   for t, e in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def main(n: int, concurrency: int) -> None:
    """Run the measurements and print the figures."""
    topics = [reg.TOPIC, elig.TOPIC, events.TOPIC, disbursement_events.TOPIC]
    infra = EmbeddedInfra(state=HOME / "infra", broker_port=free_port(), pg_port=free_port(),
                          databases=["everydoor_supervision"],
                          topics=topics + [t + ".dlq" for t in topics]).start()
    port = free_port()
    service = ServiceProcess(name="supervision", module="services.supervision", port=port, env={
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers, "DATABASE_URL": infra.database_url,
        "OTEL_TRACES_EXPORTER": "none", "SUPERVISION_PORT": str(port),
        "SUPERVISION_RELAY_POLL_INTERVAL_S": "0.05",
        "SUPERVISION_COMPLAINT_RATE_LIMIT": str(10 * concurrency)},
        log_path=HOME / "supervision.log")
    counter: asyncpg.Connection | None = None
    try:
        counter = await asyncpg.connect(asyncpg_dsn(infra.database_url, "everydoor_supervision"))
        items = envelopes(n)
        t0 = time.perf_counter()
        await publish(infra.bootstrap_servers, items)
        t_publish = time.perf_counter() - t0
        service.start()
        entries = "select count(*) from timeline_entry"
        ingest = await drain(lambda: count_or_zero(counter, entries), len(items),
                             what="timeline entries")
        kept = await count_or_zero(counter, entries)
        await asyncio.to_thread(service.wait_ready, 120)

        officer = {"Authorization": "Bearer " + issue_token(role="commune_officer",
                                                            scope=COMMUNE)}
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            t1 = time.perf_counter()
            r = await client.post("/v1/postings", headers=officer, json={
                "commune_code": COMMUNE, "review_round": "2026-periodic",
                "closes_at": (datetime.now(UTC) + timedelta(days=10)).isoformat()})  # ≥ 3 working days
            r.raise_for_status()
            t_post = time.perf_counter() - t1
            posting_id, ref = r.json()["posting_id"], r.json()["items"][0]["reference"]
            page_times = []
            for _ in range(30):
                t = time.perf_counter()
                page = await client.get(f"/public/postings/{posting_id}")
                page_times.append(time.perf_counter() - t)
            sem = asyncio.Semaphore(concurrency)

            async def complain(i: int) -> float:
                async with sem:
                    t = time.perf_counter()
                    r = await client.post(f"/public/postings/{posting_id}/complaints", data={
                        "category": "wrong_category", "household": ref,
                        "text": f"Khiếu nại thử {i}"})
                    assert r.status_code == 201, r.text
                    return time.perf_counter() - t

            t2 = time.perf_counter()
            complaint_times = await asyncio.gather(*(complain(i) for i in range(5 * concurrency)))
            t_complaints = time.perf_counter() - t2
    except BaseException:
        print(f"supervision log tail:\n{service.log_tail()}", file=sys.stderr)
        raise
    finally:
        if counter is not None:
            await counter.close()
        service.stop()
        infra.stop()
    print(f"households: {n}; events published: {len(items)} in {t_publish:.2f} s")
    print(f"timeline ingestion:  {ingest['rate']:8.1f} events/s  ({ingest['items']} events in "
          f"{ingest['seconds']:.2f} s from the first entry; {kept}/{len(items)} kept; published "
          f"before the service started, in {t_publish:.2f} s)")
    print(f"posting snapshot:    {n} households in {t_post * 1000:.0f} ms")
    print(f"public page ({len(page.content) // 1024} KiB): p50 {pct(page_times, .5):.0f} ms, "
          f"p95 {pct(page_times, .95):.0f} ms, mean {statistics.mean(page_times) * 1000:.0f} ms")
    print(f"complaint form posts: {len(complaint_times) / t_complaints:8.1f} req/s "
          f"(concurrency {concurrency}); p50 {pct(complaint_times, .5):.0f} ms, "
          f"p95 {pct(complaint_times, .95):.0f} ms")
    report("supervision", households=n, events=len(items), kept=kept, timeline=ingest,
           posting_ms=t_post * 1000, page_p50_ms=pct(page_times, .5),
           complaints_per_s=len(complaint_times) / t_complaints)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 10))
