"""The compose file as `docker-compose config` resolves it, once per session."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.platform.manifests import (
    DB_PASSWORDS,
    KAFKA_PASSWORDS,
    TEST_IDP,
    TEST_SECRET,
    compose_config,
)


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """Anchors merged, variables substituted, validated by docker-compose itself."""
    result = compose_config({"PATH": "/usr/local/bin:/usr/bin:/bin",
                             **TEST_IDP,
                             "DISBURSEMENT_BENEFICIARY_REFERENCE_KEY": TEST_SECRET + "-ref",
                             "SUPERVISION_RATE_LIMIT_KEY": TEST_SECRET + "-rate",
                             "SUPERVISION_REFERENCE_KEY": TEST_SECRET + "-reference",
                             "DISBURSEMENT_ALLOW_SANDBOX_PARTNER_KEY": "true",
                             "G2P_GATEWAY_ALLOW_SANDBOX_KEYS": "true",
                             **KAFKA_PASSWORDS, **DB_PASSWORDS})
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)
