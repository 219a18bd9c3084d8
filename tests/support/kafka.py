"""Kafka helpers for tests: produce raw records, collect what lands on a topic."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from shared.envelope import Envelope


async def produce(bootstrap: str, topic: str, *, value: bytes,
                  headers: list[tuple[str, bytes]] | None = None, key: bytes | None = None,
                  attempts: int = 3, attempt_timeout_s: float = 20.0) -> None:
    """Publish one record and wait for the ack; an attempt that hangs (a broker connection
    stuck on a loaded machine) is abandoned and made again with a fresh producer, and the test
    fails with a clear error instead of hanging (a repeat is absorbed by the consumers' inbox)."""
    for attempt in range(1, attempts + 1):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        try:
            async with asyncio.timeout(attempt_timeout_s):
                await producer.start()
                await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
            return
        except TimeoutError:
            if attempt == attempts:
                raise AssertionError(f"{topic}: no ack in {attempts} attempts of "
                                     f"{attempt_timeout_s:g}s") from None
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await producer.stop()


async def produce_event(bootstrap: str, topic: str, event: Envelope) -> None:
    """Publish a CloudEvent in binary mode."""
    await produce(bootstrap, topic, value=event.value(), headers=event.headers(), key=event.key)


async def collect(bootstrap: str, topic: str, *, until: Callable[[list[ConsumerRecord]], bool],
                  timeout: float = 20.0) -> list[ConsumerRecord]:
    """Read `topic` from the beginning until `until(records)` holds (or fail at the deadline)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4()}",
        auto_offset_reset="earliest", enable_auto_commit=False,
        session_timeout_ms=2000, heartbeat_interval_ms=300,
    )
    async with asyncio.timeout(60):  # a failure to join, not a hang
        await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met in {timeout}s; "
                                     f"saw {len(records)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records


def header(record: ConsumerRecord, name: str) -> str | None:
    """One header of a record, decoded."""
    for key, value in record.headers or ():
        if key == name:
            return value.decode()
    return None
