"""The published bank-partner contract matches the models; the reference partner is a clean
example (only aiokafka, the contract and the envelope) and stops cleanly on SIGTERM."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml

from services.bank_partner.config import PartnerConfig
from services.bank_partner.partner import Partner, Pending
from services.disbursement import contract, events
from shared.infra import free_port
from shared.processes import ServiceProcess
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]

PARTNER_DIR = Path(__file__).resolve().parents[2] / "services" / "bank_partner"
ALLOWED = {"aiokafka", "jwt", "services.disbursement.events", "shared.envelope"}
# The G2P Connect sandbox bank speaks HTTP: its server and client, and the G2P contract module.
ALLOWED_G2P = {"fastapi", "httpx", "uvicorn", "services.g2p_gateway.protocol"}


def test_checked_in_schemas_and_asyncapi_match_the_models():
    for path, text in contract.render().items():
        assert path.exists(), f"{path} missing: run python -m services.disbursement.contract"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run python -m services.disbursement.contract")
    doc = yaml.safe_load((contract.DOCS / "asyncapi-bank-partner.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    assert {c["address"] for c in doc["channels"].values()} == {
        "disbursement.instructions.{partner}", "disbursement.status.{partner}"}
    issued = json.loads((contract.DOCS / "schemas" / f"{events.INSTRUCTION_ISSUED}.json").read_text())
    assert "beneficiary_reference" in issued["required"]
    assert not any("national" in name for name in issued["properties"])


def test_the_reference_partner_uses_only_the_contract_aiokafka_and_pyjwt():
    stdlib = set(sys.stdlib_module_names)
    for path in PARTNER_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                allowed = ALLOWED | (ALLOWED_G2P if path.name == "g2p.py" else set())
                assert (top in stdlib or top in ("__future__", "aiokafka", "jwt")
                        or any(name == a or name.startswith(a + ".") for a in allowed)
                        or name.startswith("services.bank_partner")), f"{path.name} imports {name}"


async def test_the_reference_partner_runs_as_a_process_and_stops_on_sigterm(servers):
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="partner-"))
    partner = f"s{uuid.uuid4().hex[:8]}"
    env = {"PATH": os.environ["PATH"], "KAFKA_BOOTSTRAP_SERVERS": servers.bootstrap_servers}
    refused = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.bank_partner"], env=env,
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert refused.returncode != 0 and "BANK_PARTNER_SANDBOX=true" in refused.stderr, (
        "a fake bank must not start without the sandbox flag")
    proc = ServiceProcess(name="bank_partner", module="services.bank_partner", port=None, env={
        "BANK_PARTNER_SANDBOX": "true",
        "BANK_PARTNER_NAME": partner, "BANK_PARTNER_HEALTH_PORT": str(port),
        "BANK_PARTNER_STATE_FILE": str(home / "state.json"),
        "BANK_PARTNER_SESSION_TIMEOUT_MS": "2000", "BANK_PARTNER_HEARTBEAT_INTERVAL_MS": "300",
        "KAFKA_BOOTSTRAP_SERVERS": servers.bootstrap_servers}, log_path=home / "partner.log")
    from shared.infra import ensure_topics

    await ensure_topics(servers.bootstrap_servers, [events.instructions_topic(partner),
                                                    events.status_topic(partner)], 3)
    proc.start()
    try:
        def health() -> dict | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.loads(r.read())
                    return body if body["consuming"] else None
            except OSError:
                return None

        body = await eventually(lambda: asyncio.to_thread(health), timeout=30,
                                message=f"partner health\n{proc.log_tail()}")
        assert body["partner"] == partner and body["status"] == "ok"
    finally:
        await asyncio.to_thread(proc.stop)
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log_tail()
    assert json.loads((home / "state.json").read_text())["version"] == 1


def test_a_partner_restarted_from_its_last_saved_state_answers_with_the_same_event_ids(tmp_path):
    # Killed after publishing `settled` and the repayment but before saving its state, the
    # partner answers again on restart: with the same ce_ids, the issuer's inbox drops them
    # (new ids counted a second settlement and a second repayment).
    config = PartnerConfig(partner="vbsp", state_file=tmp_path / "state.json", repayments=1)
    before = Partner(config)
    before.state.pending["ins-1"] = Pending(
        instruction_id="ins-1", key="ins-1", amount_vnd=50_000_000, outcome="settled",
        due_at=time.time() - 1, term_months=36, annual_rate_pct=6.6, causation_id="ev-1")
    before.save_state()
    first = before.due_settlements()  # published, then the process dies before save_state()
    after = Partner(config)
    after.load_state()
    again = after.due_settlements()
    assert [e.data["status"] for e in first] == ["settled", "repayment_received"]
    assert [(e.id, e.data["status"]) for e in again] == [(e.id, e.data["status"]) for e in first]
    assert len({e.id for e in first}) == 2  # a settlement and a repayment are two events


async def test_the_migrated_database_matches_the_table_definitions(stack):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.disbursement import tables

    async with stack.service.runtime.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), tables.meta))
    assert [d for d in diffs if "alembic_version" not in str(d)] == []
