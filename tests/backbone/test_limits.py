"""Oversized request bodies are refused before they reach a handler, declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.registry.__main__ import spec
from services.registry.config import Settings
from tests.support.apps import auth, running, unique_prefix


async def test_oversized_bodies_get_413_problem_whether_declared_or_chunked(servers):
    settings = Settings(consumer_group_prefix=unique_prefix(), max_body_bytes=10_000)
    async with running(spec(settings)) as svc:
        headers = {**auth("commune_officer", "01001"), "content-type": "application/json"}
        declared = await svc.client.post("/v1/households", headers=headers,
                                         content=b"{" + b" " * 20_000 + b"}")
        assert declared.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
            for _ in range(5):
                yield b" " * 4_000

        streamed = await svc.client.post("/v1/households", headers=headers, content=chunks())
        assert streamed.status_code == 413
        assert streamed.headers["content-type"].startswith("application/problem+json")
        assert "larger than 10000 bytes" in streamed.json()["detail"]

        listed = await svc.client.get("/v1/households?commune_code=01001&limit=1", headers=headers)
        assert listed.status_code == 200  # the service is fine afterwards
