"""docker-compose.yml, as Debian's `docker-compose config` resolves it, runs what the code needs:
every service and the bank partner configured through the settings they really read, every
topic the code uses, one database per service, traces to Jaeger through the collector."""

from __future__ import annotations

import importlib
import re
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml

from services.bank_partner.config import PartnerConfig
from services.cli import DATABASES, G2P_BANK_PORT, G2P_GATEWAY_PORT, G2P_PARTNER, g2p_topics, topics
from services.disbursement import events as disbursement_events
from shared.auth import UrlKeySet, trusted_keys
from shared.processes import SERVICES
from tests.platform.manifests import (
    DB_PASSWORDS,
    INIT_SQL,
    KAFKA_PASSWORDS,
    ROOT,
    TEST_IDP,
    TEST_SECRET,
    compose_config,
    ports,
    volumes,
)

INFRA = ("kafka-certs", "kafka", "kafka-init", "postgres", "otel-collector", "jaeger")
CA_FILE = "/etc/everydoor/kafka-ca/ca.pem"


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings (v1 may render a list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def healthcheck_text(service: dict[str, Any]) -> str:
    """The health check command as one string."""
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


@pytest.fixture
def in_container(monkeypatch: pytest.MonkeyPatch):
    """Apply a compose service's environment to this process, as the container would see it."""
    def apply(service: dict[str, Any]) -> dict[str, str]:
        env = env_of(service)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env
    return apply


def test_compose_file_has_the_infrastructure_the_platform_needs(compose):
    services = compose["services"]
    for name in (*INFRA, *SERVICES, "bank-partner", "g2p-gateway", "g2p-bank"):
        assert name in services, f"{name} missing from docker-compose.yml"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = env_of(services["kafka"])
    assert "broker" in kafka_env["KAFKA_PROCESS_ROLES"] and "controller" in kafka_env[
        "KAFKA_PROCESS_ROLES"], "single-node KRaft: broker and controller in one process"
    # Clients reach Kafka over SASL_SSL only; the controller listens inside the container.
    assert kafka_env["KAFKA_ADVERTISED_LISTENERS"] == (
        "SASL_SSL://kafka:9092,EXTERNAL://localhost:9094")
    protocols = dict(pair.split(":") for pair in
                     kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = dict(re.match(r"(\w+)://(.*)", item).groups()  # type: ignore[union-attr]
                     for item in kafka_env["KAFKA_LISTENERS"].split(","))
    for name, address in listeners.items():
        assert protocols[name] == "SASL_SSL" or address.startswith("localhost:"), (
            f"listener {name} is {protocols[name]} and reachable from other containers")
    assert kafka_env["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")[0] == "SCRAM-SHA-512"
    assert kafka_env["KAFKA_LISTENER_NAME_EXTERNAL_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka_env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka_env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert services["kafka"]["depends_on"]["kafka-certs"]["condition"] == (
        "service_completed_successfully")
    assert "--command-config" in healthcheck_text(services["kafka"])
    assert services["postgres"]["image"].startswith("postgres:")
    assert (16686, 16686) in ports(services["jaeger"]), "Jaeger UI on localhost:16686"
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_runs_its_module_on_its_port_and_is_ready_checked(compose, in_container,
                                                                       name):
    svc = compose["services"][name]
    port = SERVICES[name]
    assert svc["command"] == ["python", "-m", f"services.{name}"]
    assert (port, port) in ports(svc), f"{name} should publish {port}"
    assert f"127.0.0.1:{port}/ready" in healthcheck_text(svc), f"{name} health check is /ready"
    assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert "otel-collector" in svc["depends_on"]

    # The settings the service really reads, from the container's environment.
    env = in_container(svc)
    settings = importlib.import_module(f"services.{name}.config").Settings()
    assert settings.host == "0.0.0.0", f"{name} must listen on all interfaces in a container"
    assert settings.port == port
    assert settings.bootstrap_servers == "kafka:9092"
    db = urlsplit(settings.db_url.replace("+asyncpg", ""))
    assert db.hostname == "postgres" and db.path.lstrip("/") == f"everydoor_{name}"
    # its own role, never the superuser: it can reach its own database only
    assert db.username == name and db.password == DB_PASSWORDS[f"{name.upper()}_DB_PASSWORD"]
    assert "DATABASE_URL" not in env
    assert settings.platform.kafka_enable_idempotence is True
    assert settings.platform.everydoor_dev_mode is False
    # One broker cannot hold 3 copies: compose says so explicitly instead of leaving dev mode.
    assert settings.platform.kafka_topic_replication_factor == 1
    assert settings.platform.kafka_require_replication is False
    # Tokens from the provider: its keys, its issuer, this service's audience.
    assert "EVERYDOOR_JWT_SECRET" not in env, "no shared secret: tokens are asymmetric"
    keys = trusted_keys(settings.platform)
    assert isinstance(keys, UrlKeySet) and keys.url == TEST_IDP["EVERYDOOR_JWKS_URL"]
    assert settings.platform.everydoor_jwt_issuer == TEST_IDP["EVERYDOOR_JWT_ISSUER"]
    assert settings.audience == f"everydoor-{name}"
    assert settings.platform.everydoor_jwt_max_lifetime_s <= 12 * 3600
    # Its own Kafka principal, SCRAM over TLS checked against the mounted CA.
    assert settings.platform.kafka_security_protocol == "SASL_SSL"
    assert settings.platform.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.platform.kafka_sasl_username == name
    assert settings.platform.kafka_sasl_password is not None
    assert settings.platform.kafka_sasl_password.get_secret_value() == KAFKA_PASSWORDS[
        f"{name.upper()}_KAFKA_PASSWORD"]
    assert str(settings.platform.kafka_ssl_cafile) == CA_FILE
    assert volumes(svc)["/etc/everydoor/kafka-ca"] == "kafka-ca"
    assert settings.platform.kafka_require_tls, "compose must not allow clear text"
    assert env["OTEL_SERVICE_NAME"] == name
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_the_reference_bank_partner_reads_its_topics_from_kafka(compose, in_container):
    svc = compose["services"]["bank-partner"]
    assert svc["command"] == ["python", "-m", "services.bank_partner"]
    assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    in_container(svc)
    config = PartnerConfig.from_env()
    assert config.bootstrap_servers == "kafka:9092"
    assert (config.security_protocol, config.sasl_mechanism, config.sasl_username) == (
        "SASL_SSL", "SCRAM-SHA-512", f"bank-{config.partner}")
    assert config.sasl_password == KAFKA_PASSWORDS["VBSP_KAFKA_PASSWORD"]
    assert str(config.ssl_cafile) == CA_FILE and "/etc/everydoor/kafka-ca" in volumes(svc)
    assert f"127.0.0.1:{config.health_port}/health" in healthcheck_text(svc)
    assert config.state_file is not None
    assert any(str(config.state_file).startswith(target) for target in volumes(svc)), (
        "the partner's state file must live on a volume")
    created = set(env_of(compose["services"]["kafka-init"])["TOPICS"].split())
    assert disbursement_events.instructions_topic(config.partner) in created
    assert disbursement_events.status_topic(config.partner) in created
    settings = importlib.import_module("services.disbursement.config").Settings
    in_container(compose["services"]["disbursement"])
    assert config.partner in settings().partners, "disbursement must send to this partner"


def test_kafka_init_creates_every_topic_the_code_uses(compose):
    init = compose["services"]["kafka-init"]
    env = env_of(init)
    created = env["TOPICS"].split()
    assert len(created) == len(set(created))
    used = set(topics()) | set(g2p_topics())
    assert set(created) == used, (
        f"kafka-init TOPICS must be services.cli.topics() and g2p_topics(): missing "
        f"{sorted(used - set(created))}, unknown {sorted(set(created) - used)}")
    assert all(t + ".dlq" in created for t in created if not t.endswith(".dlq"))
    assert env["PARTITIONS"] == "6"
    script = " ".join(init["command"]).replace("$$", "$")  # compose's escape of a literal $
    assert "in $TOPICS" in script and "--create --if-not-exists" in script
    assert '--partitions "$PARTITIONS"' in script
    assert '--replication-factor "$REPLICATION_FACTOR"' in script
    assert '--config "min.insync.replicas=$MIN_INSYNC_REPLICAS"' in script
    service = env_of(compose["services"]["registry"])
    assert env["REPLICATION_FACTOR"] == service["KAFKA_TOPIC_REPLICATION_FACTOR"]
    assert env["MIN_INSYNC_REPLICAS"] == service["KAFKA_MIN_INSYNC_REPLICAS"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_postgres_init_creates_one_database_per_service(compose):
    pg = compose["services"]["postgres"]
    mounts = volumes(pg)
    init = [src for target, src in mounts.items() if target.startswith("/docker-entrypoint-initdb.d/")]
    assert init and init[0].endswith("deploy/postgres/init-databases.sh")
    script = INIT_SQL.read_text()  # run against a real PostgreSQL by test_database_roles.py
    assert "for service in " + " ".join(SERVICES) + "; do" in script
    env = env_of(pg)
    assert {f"{s.upper()}_DB_PASSWORD" for s in SERVICES} <= set(env)
    assert set(DATABASES) == {f"everydoor_{s}" for s in SERVICES}
    major = int(pg["image"].split(":")[1].split(".")[0].split("-")[0])
    if major >= 18:  # the 18+ image keeps its data in a versioned folder under this path
        assert "/var/lib/postgresql" in mounts
    assert "-h 127.0.0.1" in healthcheck_text(pg), (
        "check over TCP: the socket answers while the init script still runs")


def test_traces_go_from_the_services_through_the_collector_to_jaeger(compose):
    services = compose["services"]
    collector = services["otel-collector"]
    assert "opentelemetry-collector" in collector["image"]
    mounts = volumes(collector)
    config_arg = next(a for a in collector["command"] if a.startswith("--config="))
    source = mounts[config_arg.split("=", 1)[1]]
    assert source.endswith("deploy/otel-collector.yaml")
    config = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text())
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.endswith(":4318") and http.startswith("0.0.0.0"), "OTLP/HTTP in, on all interfaces"
    pipeline = config["service"]["pipelines"]["traces"]
    assert "otlp" in pipeline["receivers"]
    jaeger = [config["exporters"][e] for e in pipeline["exporters"] if e.startswith("otlp")]
    assert jaeger and jaeger[0]["endpoint"].split(":")[0] == "jaeger"
    assert "jaeger" in services


@pytest.mark.parametrize("key", ["EVERYDOOR_JWKS_URL", "EVERYDOOR_JWT_ISSUER",
                                 "SUPERVISION_RATE_LIMIT_KEY", "SUPERVISION_REFERENCE_KEY",
                                 "DISBURSEMENT_BENEFICIARY_REFERENCE_KEY", *KAFKA_PASSWORDS,
                                 *DB_PASSWORDS])
def test_the_compose_file_refuses_to_run_without_each_secret_key_or_the_provider(key):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **TEST_IDP,
           "SUPERVISION_RATE_LIMIT_KEY": TEST_SECRET, "SUPERVISION_REFERENCE_KEY": TEST_SECRET,
           "DISBURSEMENT_BENEFICIARY_REFERENCE_KEY": TEST_SECRET, **KAFKA_PASSWORDS,
           **DB_PASSWORDS}
    del env[key]  # no shipped fallback: a forgotten key stops `up`, it is not a public default
    result = compose_config(env)
    assert result.returncode != 0
    assert key in result.stderr


def test_the_reference_partner_is_a_sandbox_profile(compose):
    for name in ("bank-partner", "g2p-bank"):
        partner = compose["services"][name]
        assert partner.get("profiles") == ["sandbox"], "production `up` must not start a fake bank"
        assert env_of(partner)["BANK_PARTNER_SANDBOX"] == "true"
    assert "profiles" not in compose["services"]["g2p-gateway"], "the gateway is production code"


def test_the_g2p_gateway_speaks_for_its_partner_with_its_own_principal(compose, in_container):
    """kind g2p-connect in compose: disbursement sends to the partner, the gateway (same image,
    settings as its container reads them) reads its topics as its own principal over TLS, keeps
    its state on a volume and calls the sandbox bank, which listens where the gateway calls."""
    svc = compose["services"]["g2p-gateway"]
    assert svc["command"] == ["python", "-m", "services.g2p_gateway"]
    assert svc["image"] == compose["services"]["disbursement"]["image"]
    assert (G2P_GATEWAY_PORT, G2P_GATEWAY_PORT) in ports(svc)
    assert f"127.0.0.1:{G2P_GATEWAY_PORT}/ready" in healthcheck_text(svc)
    assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert "postgres" not in svc["depends_on"], "it has no database"
    env = in_container(svc)
    settings = importlib.import_module("services.g2p_gateway.config").Settings()
    assert settings.partner == G2P_PARTNER
    assert (settings.host, settings.port) == ("0.0.0.0", G2P_GATEWAY_PORT)
    assert settings.platform.kafka_bootstrap_servers == "kafka:9092"
    assert settings.platform.everydoor_dev_mode is False
    assert settings.platform.kafka_security_protocol == "SASL_SSL"
    assert settings.platform.kafka_sasl_username == f"g2p-gateway-{G2P_PARTNER}"
    assert settings.platform.kafka_sasl_password is not None
    assert settings.platform.kafka_sasl_password.get_secret_value() == KAFKA_PASSWORDS[
        "G2P_GATEWAY_KAFKA_PASSWORD"]
    assert str(settings.platform.kafka_ssl_cafile) == CA_FILE
    assert volumes(svc)["/etc/everydoor/kafka-ca"] == "kafka-ca"
    assert settings.state_file is not None
    assert any(str(settings.state_file).startswith(target) for target in volumes(svc)), (
        "the gateway's state file must live on a volume")
    assert env["OTEL_SERVICE_NAME"] == "g2p-gateway"
    # the bank calls back the gateway's service name; the gateway calls the bank's
    assert urlsplit(settings.callback_url).hostname == "g2p-gateway"
    bank_url = urlsplit(settings.partner_url)
    assert bank_url.hostname in compose["services"]
    bank = env_of(compose["services"][bank_url.hostname])
    assert bank["BANK_PARTNER_KIND"] == "g2p-connect"
    assert bank["BANK_PARTNER_NAME"] == settings.partner
    assert (bank["BANK_PARTNER_G2P_HOST"], int(bank["BANK_PARTNER_G2P_PORT"])) == (
        "0.0.0.0", bank_url.port) == ("0.0.0.0", G2P_BANK_PORT)
    created = set(env_of(compose["services"]["kafka-init"])["TOPICS"].split())
    assert {disbursement_events.instructions_topic(settings.partner),
            disbursement_events.status_topic(settings.partner)} <= created
    in_container(compose["services"]["disbursement"])
    disbursement = importlib.import_module("services.disbursement.config").Settings()
    assert settings.partner in disbursement.partners, "disbursement must send to this partner"


def test_the_g2p_gateway_refuses_the_sandbox_keys_unless_told(compose, in_container):
    """Outside the sandbox, `up` without the gateway's own keys does not start a gateway that
    signs with the public sandbox key."""
    env = dict(env_of(compose["services"]["g2p-gateway"]), G2P_GATEWAY_ALLOW_SANDBOX_KEYS="false")
    in_container({"environment": env})
    with pytest.raises(ValueError, match="sandbox keys"):
        importlib.import_module("services.g2p_gateway.config").Settings()


def granted(script: str) -> dict[str, list[tuple[set[str], str, str, bool]]]:
    """principal → [(operations, resource type, name, prefixed)] from kafka-init's `acl` lines."""
    out: dict[str, list[tuple[set[str], str, str, bool]]] = {}
    for line in script.splitlines():
        words = line.split()
        if not words or words[0] != "acl" or len(words) < 3 or words[1].startswith('"'):
            continue
        kind = "topic" if "--topic" in words else "group"
        out.setdefault(words[1], []).append((
            {words[i + 1] for i, w in enumerate(words) if w == "--operation"}, kind,
            words[words.index(f"--{kind}") + 1], "prefixed" in words))
    return out


def allows(acls: list[tuple[set[str], str, str, bool]], operation: str, kind: str,
           name: str) -> bool:
    """Whether one of the ACLs lets `operation` on the resource (literal or prefix match)."""
    return any(operation in ops and k == kind and (name.startswith(n) if prefixed else name == n)
               for ops, k, n, prefixed in acls)


def test_kafka_init_gives_each_principal_what_its_code_uses_and_the_bank_only_its_own(
        compose, in_container):
    init = compose["services"]["kafka-init"]
    script = " ".join(init["command"]).replace("$$", "$")
    acls = granted(script)
    gateway = f"g2p-gateway-{G2P_PARTNER}"
    assert set(acls) == {*SERVICES, "bank-vbsp", gateway}
    created_users = set(re.findall(r"(?m)^user (\S+) ", script))
    assert created_users == set(acls), "one SCRAM principal per service and per bank"
    for name in SERVICES:
        in_container(compose["services"][name])
        main = importlib.import_module(f"services.{name}.__main__")
        spec = main.spec(importlib.import_module(f"services.{name}.config").Settings())
        consumed = {t for cs in spec.consumers(mock.MagicMock()) for t in cs.topics}
        mine = acls[name]
        for topic in spec.publishes:
            assert allows(mine, "Write", "topic", topic), f"{name} cannot write {topic}"
        for topic in consumed:
            assert allows(mine, "Read", "topic", topic), f"{name} cannot read {topic}"
            assert allows(mine, "Write", "topic", topic + ".dlq"), f"{name}: {topic}.dlq"
        group = f"{name}.{spec.consumers(mock.MagicMock())[0].name}" if consumed else None
        assert group is None or allows(mine, "Read", "group", group)
        assert allows(mine, "Create", "topic", f"everydoor.marker.{name}")
        assert not allows(mine, "Create", "topic", "everydoor.marker.other")
    # The bank: its instructions in, its statuses out, its own groups; nothing else.
    bank = acls["bank-vbsp"]
    assert allows(bank, "Read", "topic", "disbursement.instructions.vbsp")
    assert allows(bank, "Write", "topic", "disbursement.status.vbsp")
    assert allows(bank, "Read", "group", "bank-partner.vbsp")
    for topic in topics():
        if topic != "disbursement.instructions.vbsp":
            assert not allows(bank, "Read", "topic", topic), topic
        if topic != "disbursement.status.vbsp":
            assert not allows(bank, "Write", "topic", topic), topic
    assert not allows(bank, "Read", "topic", "disbursement.instructions.other")
    assert not allows(bank, "Read", "group", "disbursement.bank-status")
    assert not any(prefixed for _, kind, _, prefixed in bank if kind == "topic")
    # The G2P Connect gateway: exactly its bank's rights.
    g2p = acls[gateway]
    own_in = disbursement_events.instructions_topic(G2P_PARTNER)
    own_out = disbursement_events.status_topic(G2P_PARTNER)
    assert allows(g2p, "Read", "topic", own_in) and allows(g2p, "Write", "topic", own_out)
    assert allows(g2p, "Read", "group", f"g2p-gateway.{G2P_PARTNER}")
    for topic in topics() + g2p_topics():
        assert allows(g2p, "Read", "topic", topic) == (topic == own_in), topic
        # its statuses out, and what it cannot read off its instructions to their dead letters
        assert allows(g2p, "Write", "topic", topic) == (topic in (own_out, own_in + ".dlq")), topic
    assert not any(prefixed for _, kind, _, prefixed in g2p if kind == "topic")


def test_kafka_certificates_are_made_once_and_only_the_ca_reaches_the_clients(compose):
    services = compose["services"]
    certs = services["kafka-certs"]
    script = " ".join(certs["command"]).replace("$$", "$")
    assert "keytool -genkeypair" in script and "SAN=DNS:kafka,DNS:localhost" in script
    assert 'rm "$S/ca.p12"' in script, "the CA's private key must not stay on a volume"
    assert "kafka certificates exist" in script, "a restart keeps the certificates"
    for name in (*SERVICES, "bank-partner", "g2p-gateway"):
        mounts = volumes(services[name])
        assert "kafka-secrets" not in mounts.values(), f"{name} must not see the broker's keys"
        assert mounts["/etc/everydoor/kafka-ca"] == "kafka-ca"
    assert volumes(services["kafka"])["/etc/kafka/secrets"] == "kafka-secrets"
    assert volumes(services["kafka-init"])["/etc/kafka/secrets"] == "kafka-secrets"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
