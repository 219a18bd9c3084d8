"""The four services in-process on the session's broker and PostgreSQL, started once for the
security tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from services.disbursement.__main__ import spec as disbursement
from services.disbursement.config import Settings as DisbursementSettings
from services.eligibility.__main__ import spec as eligibility
from services.eligibility.config import Settings as EligibilitySettings
from services.registry.__main__ import spec as registry
from services.registry.config import Settings as RegistrySettings
from services.supervision.__main__ import spec as supervision
from services.supervision.config import Settings as SupervisionSettings
from tests.support.apps import RunningService, running, unique_prefix

FAST = {"consumer_session_timeout_ms": 2000, "consumer_heartbeat_interval_ms": 300,
        "relay_poll_interval_s": 0.05}


@pytest.fixture(scope="package")
async def platform(servers) -> AsyncIterator[dict[str, RunningService]]:
    """registry, eligibility, disbursement and supervision, by name, sharing one broker."""
    specs = {
        "registry": registry(RegistrySettings(consumer_group_prefix=unique_prefix(), **FAST)),
        "eligibility": eligibility(EligibilitySettings(consumer_group_prefix=unique_prefix(),
                                                       **FAST)),
        "disbursement": disbursement(DisbursementSettings(consumer_group_prefix=unique_prefix(),
                                                          **FAST)),
        "supervision": supervision(SupervisionSettings(consumer_group_prefix=unique_prefix(),
                                                       **FAST)),
    }
    async with AsyncExitStack() as stack:
        yield {name: await stack.enter_async_context(running(s)) for name, s in specs.items()}
