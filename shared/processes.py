"""Start service processes, wait until they are ready, stop them by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from shared.infra import stop_pid
from shared.settings import PROJECT_ROOT


@dataclass
class ServiceProcess:
    """One `python -m <module>` child with its own log file."""

    name: str
    module: str
    port: int | None
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL of its HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID while running."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> ServiceProcess:
        """Spawn the process (output appended to its log file)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=PROJECT_ROOT,
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def ready(self) -> bool:
        """Whether /ready answers 200."""
        if self.port is None:
            return self.pid is not None
        try:
            with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until ready; raise with the log tail if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) by PID and wait."""
        if self.proc is not None:
            stop_pid(self.proc, sig=signal.SIGKILL if kill else signal.SIGTERM, timeout=20)

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of its log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


SERVICES = {"registry": 8001, "eligibility": 8002, "disbursement": 8003, "supervision": 8004}


def service_processes(*, env: dict[str, str], log_dir: Path,
                      ports: dict[str, int] | None = None) -> list[ServiceProcess]:
    """The four services as processes (not started)."""
    ports = ports or SERVICES
    out = []
    for name, port in ports.items():
        prefix = name.upper()
        out.append(ServiceProcess(
            name=name, module=f"services.{name}", port=port,
            env={**env, f"{prefix}_PORT": str(port)}, log_path=log_dir / f"{name}.log",
        ))
    return out
