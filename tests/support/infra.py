"""Test infrastructure: the embedded pair (or external servers, or testcontainers)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.infra import EmbeddedInfra, _port_open, free_port, tansu_binary

SERVICE_DATABASES = ["everydoor_registry", "everydoor_eligibility", "everydoor_disbursement",
                     "everydoor_supervision"]


@dataclass
class Servers:
    """Where the broker and PostgreSQL are, and who started them."""

    bootstrap_servers: str
    database_url: str
    kind: str
    pids: tuple[int, ...] = ()


@contextmanager
def test_servers(state: Path | None = None) -> Iterator[Servers]:
    """External servers from the environment, testcontainers when asked, else the embedded pair."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"):
        yield Servers(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"], "external")
        return
    if os.environ.get("EVERYDOOR_TEST_CONTAINERS") == "1":
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with KafkaContainer("apache/kafka:3.9.0") as kafka, PostgresContainer("postgres:17") as pg:
            url = pg.get_connection_url().replace("psycopg2", "asyncpg")
            yield Servers(kafka.get_bootstrap_server(), url, "testcontainers")
        return
    state = state or Path(tempfile.mkdtemp(prefix="everydoor-test-"))
    with EmbeddedInfra(state=state, broker_port=free_port(), pg_port=free_port(),
                       databases=SERVICE_DATABASES) as infra:
        yield Servers(infra.bootstrap_servers, infra.database_url, "embedded", tuple(infra.pids))


def start_broker(port: int) -> subprocess.Popen:
    """A private memory-only Tansu on `port` (the caller stops it by PID)."""
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(tansu_binary()), "broker", "--listener-url", url,
                             "--advertised-listener-url", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    while not _port_open(port):
        assert proc.poll() is None and time.monotonic() < deadline, "broker did not start"
        time.sleep(0.05)
    return proc
