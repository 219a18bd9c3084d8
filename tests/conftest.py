"""Session fixtures: one embedded broker + PostgreSQL for the whole run, stopped by PID."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.telemetry import setup_tracing
from tests.support.infra import Servers, test_servers

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """The broker and PostgreSQL every integration test uses; env vars point services at them."""
    home = Path(tempfile.mkdtemp(prefix="everydoor-home-"))
    os.environ["EVERYDOOR_HOME"] = str(home)  # dev key shared by in-process and child services
    os.environ.setdefault("EVERYDOOR_SPAN_FILE", str(home / "spans.jsonl"))
    with test_servers(home / "infra") as s:
        saved = {k: os.environ.get(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = s.bootstrap_servers
        os.environ["DATABASE_URL"] = s.database_url
        try:
            yield s
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="session", autouse=True)
def tracing() -> None:
    """In-process services export spans to the session's span file."""
    setup_tracing("everydoor-tests")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and reports the tests leave behind."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
