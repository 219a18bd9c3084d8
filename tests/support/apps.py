"""Run a service in-process (real broker and database) and talk to it over ASGI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from shared.auth import issue_token
from shared.runtime import Runtime, ServiceSpec, create_app


@dataclass
class RunningService:
    """An in-process service: its app, runtime and an HTTP client."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        """Live resources (engine, outbox, consumers)."""
        return self.app.state.runtime


@asynccontextmanager
async def running(spec: ServiceSpec) -> AsyncIterator[RunningService]:
    """Start the service's lifespan (migrations, relay, consumers) and yield a client."""
    app = create_app(spec)
    async with app.router.lifespan_context(app):
        app.state.runtime = app.state.runtime  # set by the lifespan
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield RunningService(app=app, client=client)


def auth(role: str, scope: str = "VN", **kw: str) -> dict[str, str]:
    """Authorization header with a dev token."""
    return {"Authorization": f"Bearer {issue_token(role=role, scope=scope, **kw)}"}


def unique_prefix() -> str:
    """A consumer-group prefix so each test module's consumers start fresh."""
    return f"t{uuid.uuid4().hex[:8]}-"
