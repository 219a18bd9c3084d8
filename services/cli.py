"""`everydoor`: run the platform locally, print dev tokens, seed demo data."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from shared.auth import ROLES, issue_token
from shared.infra import EmbeddedInfra
from shared.processes import SERVICES, service_processes
from shared.settings import state_dir

DATABASES = [f"everydoor_{name}" for name in SERVICES]


def topics() -> list[str]:
    """Every topic the four services use (created up front so consumers join at once)."""
    from services.disbursement import events as d
    from services.eligibility import events as e
    from services.registry import events as r
    from services.supervision import events as s

    base = [r.TOPIC, e.TOPIC, s.TOPIC, d.TOPIC, d.instructions_topic("vbsp"), d.status_topic("vbsp")]
    return base + [t + ".dlq" for t in base]


def cmd_token(args: argparse.Namespace) -> int:
    """Print a dev token."""
    print(issue_token(role=args.role, scope=args.scope, sub=args.sub, partner=args.partner))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Start broker, PostgreSQL and the four services; stop everything on Ctrl-C/SIGTERM."""
    started = time.monotonic()
    home = state_dir()
    external = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"))
    infra = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    procs = []
    try:
        if external:
            env = {}
            print("using external Kafka and PostgreSQL from the environment")
        else:
            infra = EmbeddedInfra(state=home, broker_port=args.broker_port, pg_port=args.pg_port,
                                  databases=DATABASES, topics=topics()).start()
            env = {"KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
                   "DATABASE_URL": infra.database_url}
        env.setdefault("EVERYDOOR_SPAN_FILE", str(home / "spans.jsonl"))
        procs = service_processes(env=env, log_dir=home / "logs")
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready(timeout=90)
        elapsed = time.monotonic() - started
        print(f"\nEvery Door is running (ready in {elapsed:.1f}s)\n")
        for p in procs:
            print(f"  {p.name:<13} {p.url}   docs {p.url}/docs   pid {p.pid}")
        if infra is not None:
            print(f"  {'broker':<13} {infra.bootstrap_servers} (Kafka protocol, embedded Tansu)")
            print(f"  {'postgres':<13} {infra.database_url}")
        print(f"\n  state, logs, spans: {home}")
        print("  a token:   .venv/bin/everydoor token --role commune_officer --scope 01001")
        print("             (or: make token ROLE=commune_officer SCOPE=01001)")
        print("\nCtrl-C stops everything.", flush=True)
        while not stop.is_set():
            dead = [p for p in procs if p.pid is None]
            if dead:
                print(f"{dead[0].name} exited:\n{dead[0].log_tail()}", file=sys.stderr)
                return 1
            stop.wait(1.0)
        return 0
    finally:
        print("\nstopping…", flush=True)
        for p in procs:
            p.stop()
        if infra is not None:
            infra.stop()
        print("stopped.")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `everydoor` command."""
    parser = argparse.ArgumentParser(prog="everydoor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tok = sub.add_parser("token", help="print a dev JWT")
    tok.add_argument("--role", required=True, choices=ROLES)
    tok.add_argument("--scope", default="VN", help="VN, a province code, or commune codes")
    tok.add_argument("--partner", default=None)
    tok.add_argument("--sub", default=None)
    tok.set_defaults(func=cmd_token)
    run = sub.add_parser("run", help="start broker, PostgreSQL and the four services")
    run.add_argument("--broker-port", type=int, default=9092)
    run.add_argument("--pg-port", type=int, default=5433)
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
