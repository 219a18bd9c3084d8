"""The whole platform as separate processes on a fresh embedded broker + PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shared.infra import EmbeddedInfra, free_port
from shared.processes import SERVICES, ServiceProcess, service_processes
from shared.settings import state_dir
from tests.support.infra import SERVICE_DATABASES


@dataclass
class System:
    """Running services (by name), the infra under them, and the span file they write."""

    infra: EmbeddedInfra
    services: dict[str, ServiceProcess]
    span_file: Path
    extra: list[ServiceProcess] = field(default_factory=list)
    replicas: list[ServiceProcess] = field(default_factory=list)  # second and later replicas

    def url(self, name: str) -> str:
        """Base URL of one service."""
        return self.services[name].url

    def spans(self) -> list[dict]:
        """Every span exported so far by every process."""
        if not self.span_file.exists():
            return []
        return [json.loads(line) for line in self.span_file.read_text().splitlines() if line]

    @property
    def pids(self) -> list[int]:
        """PIDs of everything this system started."""
        procs = [*self.services.values(), *self.replicas, *self.extra]
        return [p.proc.pid for p in procs if p.proc is not None] + self.infra.pids


@contextmanager
def running_system(*, extra_modules: tuple[str, ...] = (), bank_partner: bool = False,
                   env: dict[str, str] | None = None, replicas: int = 1) -> Iterator[System]:
    """Start broker, PostgreSQL and the four services (plus `extra_modules` and the reference
    bank partner when asked; `replicas` processes of each service, the first one serving
    `url()`, the others in `System.replicas`, same database and consumer groups); stop all by
    PID."""
    from services.cli import bank_partner_process, topics

    home = Path(tempfile.mkdtemp(prefix="everydoor-system-"))
    span_file = home / "spans.jsonl"
    infra = EmbeddedInfra(state=home / "infra", broker_port=free_port(), pg_port=free_port(),
                          databases=SERVICE_DATABASES, topics=topics())
    infra.start()
    procs: list[ServiceProcess] = []
    peers: list[ServiceProcess] = []
    extra: list[ServiceProcess] = []
    try:
        base_env = {**infra.client_env, "EVERYDOOR_SPAN_FILE": str(span_file),
                    "EVERYDOOR_HOME": str(state_dir()),  # same dev key as this process' tokens
                    **{f"{n.upper()}_CONSUMER_SESSION_TIMEOUT_MS": "2000" for n in SERVICES},
                    **{f"{n.upper()}_CONSUMER_HEARTBEAT_INTERVAL_MS": "300" for n in SERVICES},
                    **{f"{n.upper()}_RELAY_POLL_INTERVAL_S": "0.1" for n in SERVICES},
                    **(env or {})}
        ports = {name: free_port() for name in SERVICES}
        procs = service_processes(env=base_env, log_dir=home / "logs", ports=ports)
        peers: list[ServiceProcess] = []
        for n in range(2, replicas + 1):
            for p in service_processes(env=base_env, log_dir=home / "logs",
                                       ports={name: free_port() for name in SERVICES}):
                p.name = f"{p.name}-{n}"
                p.log_path = p.log_path.with_name(f"{p.name}.log")
                peers.append(p)
        for module in extra_modules:
            extra.append(ServiceProcess(name=module.rsplit(".", 1)[-1], module=module, port=None,
                                        env=base_env, log_path=home / "logs" / f"{module}.log"))
        if bank_partner:
            extra.append(bank_partner_process(
                env={**base_env, "BANK_PARTNER_SESSION_TIMEOUT_MS": "2000",
                     "BANK_PARTNER_HEARTBEAT_INTERVAL_MS": "300",
                     "BANK_PARTNER_SETTLE_DELAY_S": "0.2"}, home=home, port=free_port()))
        for p in [*procs, *peers, *extra]:
            p.start()
        for p in [*procs, *peers, *extra]:
            p.wait_ready(timeout=180)
        yield System(infra=infra, services={p.name: p for p in procs}, span_file=span_file,
                     extra=extra, replicas=peers)
    finally:
        for p in [*procs, *peers, *extra]:
            p.stop()
        infra.stop()
