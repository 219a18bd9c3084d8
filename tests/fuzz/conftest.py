"""The four services in-process on the session's broker and PostgreSQL, started once for the
fuzz run (the security tests' fixture), and the event loop they run on."""

from __future__ import annotations

import asyncio

import pytest

from tests.security.conftest import platform  # noqa: F401  (the fixture, started once here)


@pytest.fixture(scope="package")
async def loop() -> asyncio.AbstractEventLoop:
    """The session loop: the services' relay and consumers run on it while a request is sent."""
    return asyncio.get_running_loop()
