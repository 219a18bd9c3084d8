"""Readers of the deployment files for the platform tests: compose (as resolved), k8s, SQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s" / "base"
INIT_SQL = ROOT / "deploy" / "postgres" / "init-databases.sh"
# Any value of 32+ characters, for the compose file's required keys.
TEST_SECRET = "platform-test-secret-" + "x" * 24
# The identity provider the compose file requires (never fetched by the tests).
TEST_IDP = {"EVERYDOOR_JWT_ISSUER": "https://sso.example.test/realms/everydoor",
            "EVERYDOOR_JWKS_URL": "https://sso.example.test/realms/everydoor/certs"}
# The operator's PostgreSQL superuser and each service's own role: compose requires them all.
DB_PASSWORDS = {f"{name}_DB_PASSWORD": f"db-{name.lower()}-{TEST_SECRET}"
                for name in ("POSTGRES", "REGISTRY", "ELIGIBILITY", "DISBURSEMENT", "SUPERVISION")}
DB_PASSWORDS["POSTGRES_PASSWORD"] = DB_PASSWORDS.pop("POSTGRES_DB_PASSWORD")
# Each Kafka principal's password: compose requires every one (docker-compose.yml header).
KAFKA_PASSWORDS = {f"{name}_KAFKA_PASSWORD": f"kafka-{name.lower()}-{TEST_SECRET}"
                   for name in ("REGISTRY", "ELIGIBILITY", "DISBURSEMENT", "SUPERVISION", "VBSP",
                                "G2P_GATEWAY")}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f docker-compose.yml config` under `env` (skips when not installed)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (`make test` installs Debian's as root)")
    return subprocess.run([binary, "-f", str(COMPOSE_FILE), "config"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def volumes(service: dict[str, Any]) -> dict[str, str]:
    """target → source of a service's mounts, from v1's short or v2's long syntax."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v.get("source", ""), v["target"]
        out[target] = source
    return out


def ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(published, target) pairs, from either syntax."""
    out = set()
    for p in service.get("ports", []):
        if isinstance(p, str):
            published, target = p.split(":")[-2:]
            out.add((int(published), int(target)))
        else:
            out.add((int(p["published"]), int(p["target"])))
    return out


def created_databases(sql: str) -> set[str]:
    """Names in the `CREATE DATABASE` statements of an init script."""
    return set(re.findall(r"(?im)^\s*CREATE\s+DATABASE\s+\"?([a-z0-9_]+)\"?", sql))


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every object of every manifest of the base, deploy/k8s/base (kustomization aside)."""
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out
