"""`everydoor`: run the platform locally, print dev tokens, seed demo data, import households and
re-evaluate a rule set with a progress bar."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from services.demo.seed import SeedError, Urls, seed
from shared.auth import ROLES, issue_token
from shared.infra import EmbeddedInfra
from shared.processes import SERVICES, ServiceProcess, service_processes
from shared.settings import PlatformSettings, state_dir

BANK_PARTNER_PORT = 8005
# `make run` also runs a G2P Connect partner: the sandbox bank over HTTP and the gateway that
# speaks for it on Kafka; livestock support is paid through it, everything else through vbsp.
G2P_PARTNER, G2P_PROGRAMME = "g2pbank", "LIVELIHOOD-LIVESTOCK"
G2P_GATEWAY_PORT, G2P_BANK_PORT = 8006, 8007

DATABASES = [f"everydoor_{name}" for name in SERVICES]


def topics() -> list[str]:
    """Every topic the four services use (created up front so consumers join at once)."""
    from services.disbursement import events as d
    from services.eligibility import events as e
    from services.registry import events as r
    from services.supervision import events as s

    base = [r.TOPIC, e.TOPIC, s.TOPIC, d.TOPIC, d.instructions_topic("vbsp"), d.status_topic("vbsp")]
    return base + [t + ".dlq" for t in base]


def g2p_topics() -> list[str]:
    """The G2P partner's topics (created up front by `make run`'s embedded broker)."""
    from services.disbursement import events as d

    base = [d.instructions_topic(G2P_PARTNER), d.status_topic(G2P_PARTNER)]
    return base + [t + ".dlq" for t in base]


def g2p_programmes(home: Path) -> Path:
    """The shipped programmes with livestock support routed to the G2P partner."""
    import yaml

    from services.disbursement.config import PROGRAMMES_FILE

    doc = yaml.safe_load(PROGRAMMES_FILE.read_text(encoding="utf-8"))
    for programme in doc["programmes"]:
        if programme["code"] == G2P_PROGRAMME:
            programme["partner"] = G2P_PARTNER
    path = home / "programmes.g2p.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by `everydoor run`: the shipped programmes, "
                    f"{G2P_PROGRAMME} paid through {G2P_PARTNER}.\n"
                    + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def g2p_processes(*, env: dict[str, str], home: Path, bank_port: int = G2P_BANK_PORT,
                  gateway_port: int = G2P_GATEWAY_PORT) -> list[ServiceProcess]:
    """The G2P Connect sandbox bank and the gateway in front of it (not started)."""
    bank = ServiceProcess(
        name="g2p_bank", module="services.bank_partner", port=bank_port,
        env={**env, "BANK_PARTNER_KIND": "g2p-connect", "BANK_PARTNER_NAME": G2P_PARTNER,
             "BANK_PARTNER_SANDBOX": "true", "BANK_PARTNER_G2P_PORT": str(bank_port)},
        log_path=home / "logs" / "g2p_bank.log")
    gateway = ServiceProcess(
        name="g2p_gateway", module="services.g2p_gateway", port=gateway_port,
        env={**env, "G2P_GATEWAY_PARTNER": G2P_PARTNER, "G2P_GATEWAY_PORT": str(gateway_port),
             "G2P_GATEWAY_PARTNER_URL": f"http://127.0.0.1:{bank_port}",
             "G2P_GATEWAY_STATE_FILE": str(home / "g2p_gateway.json")},
        log_path=home / "logs" / "g2p_gateway.log")
    return [bank, gateway]


def bank_partner_process(*, env: dict[str, str], home: Path,
                         port: int = BANK_PARTNER_PORT) -> ServiceProcess:
    """The reference bank partner (`python -m services.bank_partner`), answering like a bank."""
    return ServiceProcess(
        name="bank_partner", module="services.bank_partner", port=port,
        env={**env, "BANK_PARTNER_HEALTH_PORT": str(port), "BANK_PARTNER_REPAYMENTS": "1",
             "BANK_PARTNER_SANDBOX": "true",
             "BANK_PARTNER_STATE_FILE": str(home / "bank_partner.json")},
        log_path=home / "logs" / "bank_partner.log")


RUN_LABELS = {"bank_partner": " (reference bank partner)",
              "g2p_bank": f" (sandbox bank {G2P_PARTNER}, G2P Connect)",
              "g2p_gateway": f" (G2P Connect gateway for {G2P_PARTNER}; {G2P_PROGRAMME})"}


def service_urls() -> Urls:
    """Service base URLs: the default ports, or EVERYDOOR_<SERVICE>_URL."""
    return Urls(**{name: os.environ.get(f"EVERYDOOR_{name.upper()}_URL",
                                        f"http://127.0.0.1:{port}")
                   for name, port in SERVICES.items()})


def seed_file() -> Path:
    """Where the last seed's result is kept for the tour."""
    return state_dir() / "seed.json"


def do_seed(urls: Urls, *, households: int, golden: bool) -> dict:
    """Seed through the APIs and remember the result (households are numbered on from before)."""
    path = seed_file()
    before = json.loads(path.read_text()) if path.exists() else {}
    start = int(before.get("next_index", 0))
    t0 = time.monotonic()
    result = seed(urls, households=households, start=start, with_golden=golden).as_dict()
    merged = {**before, **{k: v for k, v in result.items() if v}}
    merged["next_index"] = start + households
    merged["households_total"] = int(before.get("households_total", 0)) + result["imported"]
    path.write_text(json.dumps(merged, indent=2))
    print(f"  seeded in {time.monotonic() - t0:.1f}s")
    return merged


def print_tour(urls: Urls, state: dict) -> None:
    """The short tour: where to look first."""
    hid = state.get("golden_household_id")
    posting = state.get("posting_id")
    print("\nA short tour")
    print(f"  demo commune {state.get('commune_code')}: {state.get('households_total', 0)} "
          "households with surveys, classified, posted, approved; loans settled by the bank")
    if posting:
        print(f"  public posting (no login):  {urls.supervision}/public/postings/{posting}")
    print("  a token for every command below:")
    print("    export TOKEN=$(.venv/bin/everydoor token --role auditor --scope VN)")
    auth = '-H "Authorization: Bearer $TOKEN"'
    if hid:
        print(f"  the golden household {hid}:")
        print(f"    curl -s {auth} {urls.registry}/v1/households/{hid}")
        print(f"    curl -s {auth} {urls.eligibility}/v1/households/{hid}/classification")
        print(f"    curl -s {auth} '{urls.supervision}/v1/households/{hid}/timeline?view=tree'")
    if state.get("golden_application_id"):
        print(f"    curl -s {auth} "
              f"{urls.disbursement}/v1/applications/{state['golden_application_id']}")
    commune = state.get("commune_code")
    if state.get("review_round"):
        rnd = state["review_round"]
        print(f"  door to door: {state.get('cadres', 0)} cadres (Party cell, Women's Union, "
              f"Farmers' Association, a young cadre) visited the households of round {rnd}:")
        print(f"    curl -s {auth} '{urls.registry}/v1/coverage?commune_code={commune}"
              f"&review_round={rnd}'")
        print(f"    curl -s {auth} '{urls.supervision}/dashboard?commune_code={commune}' > "
              "dashboard.html   (the supervision dashboard: the round's funnel, categories, "
              "complaints, loans)")
    if state.get("restructuring_id"):
        print("  a flood hit its village; its loan was restructured (6-month extension):")
        print(f"    curl -s {auth} "
              f"{urls.disbursement}/v1/restructurings/{state['restructuring_id']}")
        print(f"    curl -s {auth} '{urls.disbursement}/v1/reconciliation?commune_code="
              f"{state.get('commune_code')}'")
    print("  traces: one JSON span per line in .everydoor/spans.jsonl "
          "(or Jaeger under docker compose)")


def cmd_seed(args: argparse.Namespace) -> int:
    """Seed more demo households into the running platform."""
    urls = service_urls()
    state = do_seed(urls, households=args.households,
                    golden=not seed_file().exists() or args.golden)
    print_tour(urls, state)
    return 0


def dev_subject(role: str) -> str:
    """A personal dev `sub`: `dev-<role>-<login>`, so audit trails say who (and one person can
    still play maker and checker in different roles)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        login = "local"
    return f"dev-{role}-{login}"


def cmd_token(args: argparse.Namespace) -> int:
    """Print a dev token (dev mode only: elsewhere tokens come from the identity provider)."""
    if not PlatformSettings().everydoor_dev_mode:
        print("everydoor token: refused outside dev mode (EVERYDOOR_DEV_MODE=false). Tokens come "
              "from the identity provider whose keys the services trust (EVERYDOOR_JWKS_URL or "
              "EVERYDOOR_JWKS_FILE); sign in there.", file=sys.stderr)
        return 2
    print(issue_token(role=args.role, scope=args.scope, sub=args.sub or dev_subject(args.role),
                      partner=args.partner, audience=args.audience or None))
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
                                  databases=DATABASES, topics=topics() + g2p_topics(),
                                  durable=True).start()
            env = infra.client_env
        env.setdefault("EVERYDOOR_SPAN_FILE", str(home / "spans.jsonl"))
        # The G2P partner joins unless the operator chose partners or programmes themselves.
        g2p = not args.no_g2p and not ({"DISBURSEMENT_PARTNERS", "DISBURSEMENT_PROGRAMMES_FILE"}
                                       & set(os.environ))
        if g2p:
            env["DISBURSEMENT_PARTNERS"] = json.dumps(["vbsp", G2P_PARTNER])
            env["DISBURSEMENT_PROGRAMMES_FILE"] = str(g2p_programmes(home))
        procs = [*service_processes(env=env, log_dir=home / "logs"),
                 bank_partner_process(env=env, home=home),
                 *(g2p_processes(env=env, home=home) if g2p else [])]
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready(timeout=90)
        elapsed = time.monotonic() - started
        print(f"\nEvery Door is running (ready in {elapsed:.1f}s)\n")
        for p in procs:
            docs = (f"   docs {p.url}/docs" if p.name in SERVICES
                    else RUN_LABELS.get(p.name, ""))
            print(f"  {p.name:<13} {p.url}{docs}   pid {p.pid}")
        if infra is not None:
            print(f"  {'broker':<13} {infra.bootstrap_servers} (Kafka protocol, embedded Tansu)")
            print(f"  {'postgres':<13} {infra.database_url}")
        print(f"\n  state, logs, spans: {home}")
        print("  a token:   .venv/bin/everydoor token --role commune_officer --scope 01001")
        print("             (or: make token ROLE=commune_officer SCOPE=01001)")
        urls = service_urls()
        if not args.no_seed:
            if not seed_file().exists():
                print(f"\nseeding the demo commune ({args.households} households)…", flush=True)
                try:
                    do_seed(urls, households=args.households, golden=True)
                except SeedError as exc:
                    print(f"  seeding stopped: {exc}\n  (the services keep running; see "
                          f"{home / 'logs'})", file=sys.stderr)
            if seed_file().exists():
                print_tour(urls, json.loads(seed_file().read_text()))
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
    tok = sub.add_parser("token", help="print a dev JWT (dev mode only)")
    tok.add_argument("--role", required=True, choices=ROLES)
    tok.add_argument("--scope", default="VN", help="VN, a province code, or commune codes")
    tok.add_argument("--partner", default=None)
    tok.add_argument("--sub", default=None, help="subject (default dev-<role>-<login>)")
    tok.add_argument("--audience", action="append", default=[],
                     help="audience, repeatable (default: all four services')")
    tok.set_defaults(func=cmd_token)
    run = sub.add_parser("run", help="start broker, PostgreSQL and the four services")
    run.add_argument("--broker-port", type=int, default=9092)
    run.add_argument("--pg-port", type=int, default=5433)
    run.add_argument("--households", type=int, default=300, help="demo households on first run")
    run.add_argument("--no-seed", action="store_true", help="start empty, no demo data")
    run.add_argument("--no-g2p", action="store_true",
                     help="without the G2P Connect sandbox bank and gateway")
    run.set_defaults(func=cmd_run)
    sd = sub.add_parser("seed", help="seed demo households into the running platform")
    sd.add_argument("--households", type=int, default=300)
    sd.add_argument("--golden", action="store_true", help="run the golden path again")
    sd.set_defaults(func=cmd_seed)
    from services.jobs_cli import add_parsers

    add_parsers(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
