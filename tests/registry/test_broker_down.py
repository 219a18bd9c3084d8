"""Scenario 10 of issue 14: the broker may be down when a service starts. The registry starts
anyway (health and readiness answer, readiness on the database, the broker reported), takes an
officer's writes into its outbox, and publishes them once a broker appears."""

from __future__ import annotations

import subprocess

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from services.registry.__main__ import spec
from services.registry.config import Settings
from shared.infra import free_port, stop_pid
from shared.settings import PlatformSettings
from tests.registry.conftest import body, officer
from tests.support.apps import running, unique_prefix
from tests.support.infra import start_broker
from tests.support.wait import eventually


async def test_the_registry_starts_and_takes_writes_while_the_broker_is_down(servers):
    port = free_port()
    url = make_url(servers.database_url).set(database="everydoor_registry_brokerdown")
    settings = Settings(
        consumer_group_prefix=unique_prefix(), relay_poll_interval_s=0.05,
        broker_startup_wait_s=2, consumer_start_timeout_s=5,
        database_url=url.render_as_string(hide_password=False),
        platform=PlatformSettings(kafka_bootstrap_servers=f"127.0.0.1:{port}"))
    broker: subprocess.Popen | None = None
    async with running(spec(settings)) as svc:
        try:
            assert (await svc.client.get("/health")).status_code == 200
            ready = await svc.client.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["broker"].startswith("unreachable")
            r = await svc.client.post("/v1/households", headers=officer(), json=body())
            assert r.status_code == 201, r.text

            async def unsent() -> int:
                async with svc.runtime.engine.connect() as conn:
                    return int(await conn.scalar(sa.text(
                        "select count(*) from outbox where sent_at is null")) or 0)

            assert await unsent() >= 1  # the write waits in the outbox
            broker = start_broker(port)
            await eventually(lambda: _zero(unsent()), timeout=60,
                             message="the outbox published once the broker appeared")
            await eventually(lambda: _broker_ok(svc), timeout=30, message="/ready reports ok")
        finally:
            if broker is not None:
                stop_pid(broker, timeout=5)


async def _zero(count: object) -> bool:
    return await count == 0  # type: ignore[misc]


async def _broker_ok(svc: object) -> bool:
    r = await svc.client.get("/ready")  # type: ignore[attr-defined]
    return r.json()["broker"] == "ok"
