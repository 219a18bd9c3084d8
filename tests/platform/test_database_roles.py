"""deploy/postgres/init-databases.sh, run as the postgres image runs it, on a fresh PostgreSQL:
each service gets a login role that owns its own database, migrates it without superuser
rights (tables, indexes, the append-only triggers), and cannot connect to any other service's
database."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import upgrade
from shared.infra import EmbeddedInfra, free_port, pg_bin, stop_pid
from shared.processes import SERVICES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "postgres" / "init-databases.sh"


@pytest.fixture
def fresh_postgres(tmp_path: Path):
    """A PostgreSQL of its own (the session's already has the service databases)."""
    infra = EmbeddedInfra(state=tmp_path, pg_port=free_port(), broker_port=free_port())
    infra._start_postgres()
    try:
        yield infra.pg_port
    finally:
        assert infra._pg is not None
        stop_pid(infra._pg)


def test_each_service_role_owns_its_database_and_reaches_no_other(fresh_postgres: int):
    passwords = {name: f"pw-{name}-{os.getpid()}" for name in SERVICES}
    env = {"PATH": f"{pg_bin()}:/usr/bin:/bin", "POSTGRES_USER": "postgres",
           "POSTGRES_DB": "postgres", "PGHOST": "127.0.0.1", "PGPORT": str(fresh_postgres),
           **{f"{name.upper()}_DB_PASSWORD": pw for name, pw in passwords.items()}}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    missing = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in env.items() if k != "SUPERVISION_DB_PASSWORD"})
    assert missing.returncode != 0  # a forgotten password stops the init, it is not defaulted

    async def check() -> None:
        for name in SERVICES:
            url = (f"postgresql+asyncpg://{name}:{passwords[name]}@127.0.0.1:{fresh_postgres}"
                   f"/everydoor_{name}")
            engine = create_async_engine(url)
            try:  # its own migrations, as its own role (no superuser)
                await upgrade(engine, ROOT / "services" / name / "migrations")
            finally:
                await engine.dispose()
            conn = await asyncpg.connect(host="127.0.0.1", port=fresh_postgres, user=name,
                                         password=passwords[name], database=f"everydoor_{name}")
            try:
                assert not await conn.fetchval("select rolsuper from pg_roles "
                                               "where rolname = current_user")
                assert await conn.fetchval("select count(*) from pg_trigger "
                                           "where tgname = 'outbox_guard'") == 1, "migrated"
            finally:
                await conn.close()
            for other in SERVICES:
                if other == name:
                    continue
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await asyncpg.connect(host="127.0.0.1", port=fresh_postgres, user=name,
                                          password=passwords[name], database=f"everydoor_{other}")

    asyncio.run(check())
