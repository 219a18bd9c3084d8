"""Kafka security reaches every client: each producer, consumer and admin client the code creates
authenticates (SASL) and encrypts (TLS) with the KAFKA_* settings, a new client cannot forget
them, and outside dev mode clear text is refused before anything connects. No broker needed: the
aiokafka classes are replaced by recorders of what they were given."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import ssl
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.bank_partner import partner as bank_partner
from services.bank_partner.config import PartnerConfig
from shared.broker import BrokerWatch, client_security
from shared.consumer import Consumer
from shared.infra import ensure_topics
from shared.runtime import make_producer
from shared.settings import PlatformSettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}
PASSWORD = "scram-password-of-registry-0123456789"


def _pem_pair(tmp: Path, name: str, *, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
              = None) -> tuple[Path, Path, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
            .sign(issuer_key, hashes.SHA256()))
    cert_file, key_file = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file, subject, key


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    """A CA, and a client certificate and key it signed (mutual TLS)."""
    ca, _, ca_name, ca_key = _pem_pair(tmp_path, "everydoor-test-ca")
    cert, key, _, _ = _pem_pair(tmp_path, "registry", issuer=(ca_name, ca_key))
    return {"cafile": ca, "certfile": cert, "keyfile": key}


@pytest.fixture
def production(tls_files: dict[str, Path]) -> PlatformSettings:
    """SCRAM over mutual TLS, outside dev mode."""
    return PlatformSettings(
        everydoor_dev_mode=False, everydoor_jwt_secret="j" * 40,
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="registry",
        kafka_sasl_password=PASSWORD, kafka_ssl_cafile=tls_files["cafile"],
        kafka_ssl_certfile=tls_files["certfile"], kafka_ssl_keyfile=tls_files["keyfile"])


class Stop(Exception):
    """Raised by a recorder's start(): nothing connects."""


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every aiokafka client the code constructs, as (class name, keyword arguments)."""
    record: list[tuple[str, dict[str, Any]]] = []

    def recorder(kind: str) -> type:
        class Recorder:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                record.append((kind, kwargs))

            async def start(self) -> None:
                raise Stop

            async def stop(self) -> None:
                return None

            async def close(self) -> None:
                return None

            def subscribe(self, *args: Any, **kwargs: Any) -> None:
                return None
        return Recorder

    for target in ("shared.runtime.AIOKafkaProducer", "shared.consumer.AIOKafkaConsumer",
                   "aiokafka.admin.AIOKafkaAdminClient",
                   "services.bank_partner.partner.AIOKafkaProducer",
                   "services.bank_partner.partner.AIOKafkaConsumer"):
        monkeypatch.setattr(target, recorder(target.rsplit(".", 1)[1]))
    return record


def assert_secured(kwargs: dict[str, Any], ca_subject: str = "everydoor-test-ca") -> None:
    """SCRAM-SHA-512 as `registry` over TLS that verifies the broker against our CA."""
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("registry", PASSWORD)
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [dict(x[0] for x in ca["subject"])["commonName"] for ca in context.get_ca_certs()]
    assert subjects == [ca_subject], "the broker is verified against KAFKA_SSL_CAFILE only"


async def test_every_client_factory_gets_the_security_settings(made, production):
    make_producer(ServiceSettings(platform=production))

    consumer = Consumer(spec=SimpleNamespace(name="households", topics=["registry.households"]),
                        service="registry", bootstrap="kafka:9092", sessions=mock.Mock(),
                        tables=mock.Mock(), outbox=mock.Mock(), metrics=mock.Mock(),
                        platform=production)
    with pytest.raises(Stop):
        await consumer.start()

    with pytest.raises(Stop):
        await ensure_topics("kafka:9092", ["registry.households"], 6, platform=production)

    watch = BrokerWatch(bootstrap="kafka:9092", producer=mock.Mock(), engine=mock.Mock(),
                        tables=mock.Mock(), topics=["registry.households"], partitions=6,
                        service="registry", platform=production)
    with pytest.raises(Stop):  # the topics the watch creates (missing ones, its marker)
        await watch._ensure_topics(watch.bootstrap, [watch.marker], 1)

    kinds = [kind for kind, _ in made]
    assert kinds == ["AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient",
                     "AIOKafkaAdminClient"]
    for _, kwargs in made:
        assert_secured(kwargs)


async def test_the_reference_partner_takes_the_same_variables(made, tls_files, monkeypatch):
    for name, value in {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "registry",
                        "KAFKA_SASL_PASSWORD": PASSWORD,
                        "KAFKA_SSL_CAFILE": str(tls_files["cafile"]),
                        "KAFKA_SSL_CERTFILE": str(tls_files["certfile"]),
                        "KAFKA_SSL_KEYFILE": str(tls_files["keyfile"])}.items():
        monkeypatch.setenv(name, value)
    config = PartnerConfig.from_env()
    assert PASSWORD not in repr(config)
    with pytest.raises(Stop):
        await bank_partner.Partner(config).run(asyncio.Event())
    assert sorted(kind for kind, _ in made) == ["AIOKafkaConsumer", "AIOKafkaProducer"]
    for _, kwargs in made:
        assert_secured(kwargs)
    # ... and means what the services' settings mean.
    shared = client_security(PlatformSettings())
    partner = bank_partner.client_security(config)
    assert shared.keys() == partner.keys()
    assert {k: v for k, v in shared.items() if k != "ssl_context"} == {
        k: v for k, v in partner.items() if k != "ssl_context"}


def test_clear_text_is_refused_outside_dev_mode_unless_allowed():
    for protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        creds = {"kafka_sasl_username": "registry", "kafka_sasl_password": PASSWORD}
        production = PlatformSettings(everydoor_dev_mode=False, kafka_security_protocol=protocol,
                                      **creds)
        with pytest.raises(ValueError, match="KAFKA_ALLOW_PLAINTEXT=true"):
            client_security(production)
        with pytest.raises(ValueError, match="KAFKA_ALLOW_PLAINTEXT=true"):
            make_producer(ServiceSettings(platform=production))  # the service does not start
        allowed = PlatformSettings(everydoor_dev_mode=False, kafka_security_protocol=protocol,
                                   kafka_allow_plaintext=True, **creds)
        assert client_security(allowed)["security_protocol"] == protocol
    # The embedded dev broker: plain, nothing else to set.
    assert client_security(PlatformSettings()) == {"security_protocol": "PLAINTEXT"}


def test_incomplete_kafka_credentials_are_refused_when_the_settings_load(tls_files):
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        PlatformSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="registry")
    with pytest.raises(ValueError, match="go together"):
        PlatformSettings(kafka_security_protocol="SSL", kafka_ssl_certfile=tls_files["certfile"])
    with pytest.raises(ValueError):
        PlatformSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="GSSAPI",
                         kafka_sasl_username="registry", kafka_sasl_password=PASSWORD)
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        PartnerConfig(security_protocol="SASL_SSL", sasl_username="bank-vbsp")


def test_the_password_stays_out_of_reprs_and_logs(production):
    assert PASSWORD not in repr(production) and PASSWORD not in str(production.model_dump())
    assert PASSWORD not in repr(ServiceSettings(platform=production))


def test_mutual_tls_presents_the_client_certificate(tls_files):
    ssl_only = PlatformSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=tls_files["cafile"],
                                kafka_ssl_certfile=tls_files["certfile"],
                                kafka_ssl_keyfile=tls_files["cafile"])  # not the cert's key
    with pytest.raises(ssl.SSLError):  # the pair is loaded into the context, so checked
        client_security(ssl_only)
    ok = ssl_only.model_copy(update={"kafka_ssl_keyfile": tls_files["keyfile"]})
    kwargs = client_security(ok)
    assert kwargs["security_protocol"] == "SSL" and "sasl_mechanism" not in kwargs


def _client_calls(path: Path) -> list[tuple[int, str, bool]]:
    """(line, class, secured) for each aiokafka client constructed in a file: secured means a
    `**client_security(...)` argument."""
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiokafka"):
            for alias in node.names:
                assert not (alias.name in CLIENT_CLASSES and alias.asname), (
                    f"{path}:{node.lineno}: {alias.name} imported under another name")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else "")
        if name not in CLIENT_CLASSES:
            continue
        secured = any(
            kw.arg is None and isinstance(kw.value, ast.Call) and (
                getattr(kw.value.func, "id", None) == "client_security"
                or getattr(kw.value.func, "attr", None) == "client_security")
            for kw in node.keywords)
        overridden = {kw.arg for kw in node.keywords} & {
            "security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
            "sasl_plain_password"}
        calls.append((node.lineno, name, secured and not overridden))
    return calls


def test_no_kafka_client_is_created_without_the_security_settings():
    """A new producer, consumer or admin client anywhere in shared/ or services/ must take
    `**client_security(...)` (the partner's own, stdlib-configured one in its package)."""
    files = sorted([*ROOT.glob("shared/**/*.py"), *ROOT.glob("services/**/*.py")])
    found, unsecured = 0, []
    for path in files:
        for line, name, secured in _client_calls(path):
            found += 1
            if not secured:
                unsecured.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert not unsecured, "constructed without **client_security(...): " + ", ".join(unsecured)
    assert found >= 5, "the scan must see the producer, consumer, admin and partner clients"


def test_the_scan_notices_a_client_that_forgets(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from aiokafka import AIOKafkaProducer\n"
                   "p = AIOKafkaProducer(bootstrap_servers='x')\n"
                   "q = AIOKafkaProducer(bootstrap_servers='x', **client_security(s))\n"
                   "r = AIOKafkaProducer(**client_security(s), security_protocol='PLAINTEXT')\n")
    assert [(line, secured) for line, _, secured in _client_calls(bad)] == [
        (2, False), (3, True), (4, False)]
