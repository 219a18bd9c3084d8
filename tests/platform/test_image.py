"""The Dockerfile and the Kubernetes manifests run modules that exist, as a non-root user, with
the dependencies the image installs, configured the way the services read their settings."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.auth import AuthConfigError, trusted_keys
from shared.infra import topic_configs
from shared.processes import SERVICES
from shared.settings import PlatformSettings
from tests.platform.manifests import K8S, ROOT, k8s_documents

DOCKERFILE = (ROOT / "Dockerfile").read_text()
PROCESSES = [f"services.{name}" for name in SERVICES] + ["services.bank_partner",
                                                        "services.g2p_gateway"]
SANDBOX = K8S.parent / "sandbox"
SANDBOX_FILES = ("bank-partner.yaml", "g2p-bank.yaml")


def runnable(module: str) -> bool:
    """`python -m module` would run something: a module, or a package with __main__."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return True


def instruction(name: str) -> list[str]:
    """Arguments of every Dockerfile instruction called `name`."""
    return re.findall(rf"(?m)^{name}\s+(.+)$", DOCKERFILE)


def test_the_image_runs_as_a_non_root_user_and_ships_the_code():
    assert instruction("FROM") == ["python:3.11-slim"]
    users = instruction("USER")
    assert users and users[-1].split(":")[0] not in ("0", "root")
    copied = {line.split()[0] for line in instruction("COPY")}
    assert {"shared", "services", "pyproject.toml"} <= copied
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    assert {"!shared/", "!services/", "!pyproject.toml"} <= set(dockerignore)
    # Whatever the image copies is in the build context (`COPY docs/schemas` failed without it).
    for line in instruction("COPY"):
        source = line.split()[0]
        assert f"!{source.rstrip('/')}/" in dockerignore or f"!{source}" in dockerignore, source
    cmd = re.findall(r'"([^"]+)"', instruction("CMD")[-1])
    assert cmd[:2] == ["python", "-m"] and runnable(cmd[2])


# Keys a production deployment sets (the shipped dev values are refused outside dev mode).
PRODUCTION_KEYS = {"SUPERVISION_RATE_LIMIT_KEY": "r" * 24, "SUPERVISION_REFERENCE_KEY": "h" * 24,
                   "DISBURSEMENT_BENEFICIARY_REFERENCE_KEY": "b" * 24,
                   "DISBURSEMENT_ALLOW_SANDBOX_PARTNER_KEY": "true"}


def test_the_runtime_dependencies_are_enough_to_build_every_service(tmp_path):
    """The image leaves out the embedded-mode wheels: every process must start without them,
    and building an app must not connect anywhere nor touch the state folder."""
    skipped = re.search(r'ARG EMBEDDED_ONLY="([^"]+)"', DOCKERFILE)
    assert skipped, "Dockerfile must name the packages it leaves out (ARG EMBEDDED_ONLY)"
    blocked = [name.replace("-", "_") for name in skipped.group(1).split()]
    script = textwrap.dedent(f"""
        import importlib, socket, sys
        BLOCKED = {blocked!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is not installed in the image")
        sys.meta_path.insert(0, Block())
        def no_network(*args, **kwargs):
            raise RuntimeError(f"connected at import or app creation: {{args}}")
        socket.socket.connect = no_network
        from shared.runtime import create_app
        from shared.settings import PlatformSettings
        for name in {list(SERVICES)!r}:
            main = importlib.import_module(f"services.{{name}}.__main__")
            settings = importlib.import_module(f"services.{{name}}.config").Settings(
                platform=PlatformSettings(everydoor_jwks_url="https://idp.example/certs",
                                          everydoor_dev_mode=False))
            assert create_app(main.spec(settings)).openapi()["paths"]
        importlib.import_module("services.bank_partner.__main__")
        gateway = importlib.import_module("services.g2p_gateway.__main__")
        g2p = importlib.import_module("services.g2p_gateway.config").Settings(
            allow_sandbox_keys=True,
            platform=PlatformSettings(everydoor_jwks_url="https://idp.example/certs",
                                      everydoor_dev_mode=False))
        assert gateway.create_app(g2p).openapi()["paths"]
        importlib.import_module("services.cli")
        print("ok")
    """)
    home = tmp_path / "home"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                         "EVERYDOOR_HOME": str(home),
                                                         **PRODUCTION_KEYS})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
    assert not home.exists(), "creating an app must not write local state"


def test_k8s_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    # The overlay is outside the base's folder: kustomize refuses a cycle otherwise.
    assert yaml.safe_load((K8S.parent / "kustomization.yaml").read_text())["resources"] == [
        "base"]
    sandbox = yaml.safe_load((SANDBOX / "kustomization.yaml").read_text())
    assert set(sandbox["resources"]) == {"../base", *SANDBOX_FILES}


def sandbox_documents() -> list[tuple[Path, dict[str, Any]]]:
    """The objects the sandbox overlay adds to the base."""
    return [(SANDBOX / name, doc) for name in SANDBOX_FILES
            for doc in yaml.safe_load_all((SANDBOX / name).read_text()) if doc]


def kustomize(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """`kubectl kustomize folder` (skips when kubectl is not installed): (kind, name) → object."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run([binary, "kustomize", str(folder)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)
            if d}


def test_k8s_base_and_sandbox_build_with_kustomize_and_the_sandbox_adds_both_banks():
    base = kustomize(K8S.parent)
    sandbox = kustomize(SANDBOX)
    for kind in ("Deployment", "Service"):
        assert (kind, "g2p-gateway") in base
        assert (kind, "g2p-bank") not in base and (kind, "g2p-bank") in sandbox
    assert ("Deployment", "bank-partner") in set(sandbox) - set(base)
    assert all(d["metadata"]["namespace"] == "everydoor" for d in sandbox.values()
               if d["kind"] != "Namespace")
    # The sandbox gateway calls the sandbox bank with the sandbox keys; the base has neither.
    base_gw = base[("ConfigMap", "everydoor-g2p-gateway")]["data"]
    sandbox_gw = sandbox[("ConfigMap", "everydoor-g2p-gateway")]["data"]
    assert "CHANGE_ME" in base_gw["G2P_GATEWAY_PARTNER_URL"]
    assert "G2P_GATEWAY_ALLOW_SANDBOX_KEYS" not in base_gw
    assert base_gw["G2P_GATEWAY_SIGNING_KEY_FILE"].startswith("/etc/everydoor/g2p-gateway-keys/")
    assert sandbox_gw["G2P_GATEWAY_PARTNER_URL"] == "http://g2p-bank:8007"
    assert sandbox_gw["G2P_GATEWAY_ALLOW_SANDBOX_KEYS"] == "true"
    assert "G2P_GATEWAY_SIGNING_KEY_FILE" not in sandbox_gw


def test_k8s_a_g2p_connect_partner_is_a_partner_with_its_gateway(monkeypatch):
    """The gateway's settings, as its container reads them, name a partner disbursement sends
    to, whose statuses disbursement verifies with the gateway's key; one replica (its state is
    one file on a persistent volume)."""
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_documents()}
    config = objects[("ConfigMap", "everydoor-config")]["data"]
    gateway = objects[("Deployment", "g2p-gateway")]
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    env = {**config, **objects[("ConfigMap", "everydoor-g2p-gateway")]["data"],
           **objects[("Secret", "everydoor-kafka-g2p-gateway-g2pbank")]["stringData"],
           **{e["name"]: e["value"] for e in container["env"]}}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("G2P_GATEWAY_ALLOW_SANDBOX_KEYS", "true")  # the key files are mounted
    settings = importlib.import_module("services.g2p_gateway.config").Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 8006)
    assert settings.partner in json.loads(config["DISBURSEMENT_PARTNERS"])
    assert json.loads(config["DISBURSEMENT_PARTNER_KEYS"])[settings.partner].startswith(
        "/etc/everydoor/partner-keys/")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(settings.signing_key_file.parent) in mounts
    assert settings.state_file is not None and str(settings.state_file.parent) in mounts
    assert gateway["spec"]["replicas"] == 1 and gateway["spec"]["strategy"]["type"] == "Recreate"
    claim = next(v for v in gateway["spec"]["template"]["spec"]["volumes"]
                 if v["name"] == "state")["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in objects


def test_k8s_production_base_has_no_fake_bank_and_the_sandbox_overlay_adds_it():
    base = {(doc["kind"], doc["metadata"]["name"]) for _, doc in k8s_documents()}
    assert ("Deployment", "bank-partner") not in base
    assert ("Deployment", "g2p-bank") not in base
    partner = next(yaml.safe_load_all((SANDBOX / "bank-partner.yaml").read_text()))
    env = {e["name"]: e.get("value") for e in
           partner["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BANK_PARTNER_SANDBOX"] == "true"
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_documents()}
    config = objects[("ConfigMap", "everydoor-config")]["data"]
    assert "DISBURSEMENT_ALLOW_SANDBOX_PARTNER_KEY" not in config
    assert json.loads(config["DISBURSEMENT_PARTNER_KEYS"])["vbsp"].startswith(
        "/etc/everydoor/partner-keys/")
    patch = yaml.safe_load(yaml.safe_load((SANDBOX / "kustomization.yaml").read_text())[
        "patches"][0]["patch"])
    assert patch["data"]["DISBURSEMENT_ALLOW_SANDBOX_PARTNER_KEY"] == "true"


def test_k8s_deployments_run_existing_modules_with_probes_and_config():
    docs = k8s_documents() + sandbox_documents()
    by_kind: dict[str, dict[str, dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind["Deployment"]
    seen = set()
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"][
            "metadata"]["labels"].items(), name
        for container in pod["containers"]:
            command = container["command"]
            assert command[:2] == ["python", "-m"] and runnable(command[2]), (
                f"{name} runs {command}, which is not a module here")
            seen.add(command[2])
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert ref["name"] in by_kind.get(kind, {}), f"{name}: no {kind} {ref['name']}"
            assert container.get("readinessProbe") and container.get("livenessProbe"), name
    assert seen == set(PROCESSES), f"deployments run {sorted(seen)}"


@pytest.mark.parametrize("name", list(SERVICES))
def test_k8s_service_listens_where_its_probes_and_service_point(name):
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_documents()}
    container = objects[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    port = SERVICES[name]
    assert env[f"{name.upper()}_PORT"] == str(port) and env[f"{name.upper()}_HOST"] == "0.0.0.0"
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    service = objects[("Service", name)]
    assert service["spec"]["ports"][0]["port"] == port
    assert service["spec"]["selector"].items() <= objects[("Deployment", name)]["spec"][
        "template"]["metadata"]["labels"].items()


def test_k8s_config_is_production_mode_with_replicas_and_the_placeholder_provider_is_refused():
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_documents()}
    config = objects[("ConfigMap", "everydoor-config")]["data"]
    secret = {**objects[("Secret", "everydoor-secrets")]["stringData"],
              **objects[("Secret", "everydoor-kafka-registry")]["stringData"]}
    settings = PlatformSettings(**{k.lower(): v for k, v in {**config, **secret}.items()
                                   if k.lower() in PlatformSettings.model_fields})
    assert settings.everydoor_dev_mode is False and settings.kafka_enable_idempotence is True
    # A production cluster: 3 copies, acks=all waits for 2; and one copy would be refused.
    assert settings.kafka_require_replication is True
    assert topic_configs(replication_factor=settings.kafka_topic_replication_factor,
                         min_insync_replicas=settings.kafka_min_insync_replicas,
                         require_replication=True) == {"min.insync.replicas": "2"}
    assert settings.kafka_topic_replication_factor == 3
    assert "EVERYDOOR_JWT_SECRET" not in {**config, **secret}, "tokens are asymmetric"
    assert settings.everydoor_jwks_url and settings.everydoor_jwks_url.startswith("https://")
    assert settings.everydoor_jwt_max_lifetime_s <= 12 * 3600
    with pytest.raises(AuthConfigError):  # nobody runs the shipped placeholder by mistake
        trusted_keys(settings)
    real = settings.model_copy(update={
        "everydoor_jwks_url": settings.everydoor_jwks_url.replace("CHANGE_ME.", ""),
        "everydoor_jwt_issuer": settings.everydoor_jwt_issuer.replace("CHANGE_ME.", "")})
    assert trusted_keys(real), "with the provider's real address the services start"



@pytest.mark.parametrize("name", [*SERVICES, "bank-partner", "g2p-gateway"])
def test_k8s_each_process_is_its_own_kafka_principal_over_tls(name):
    docs = k8s_documents() + sandbox_documents()
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in docs}
    config = objects[("ConfigMap", "everydoor-config")]["data"]
    assert (config["KAFKA_SECURITY_PROTOCOL"], config["KAFKA_SASL_MECHANISM"]) == (
        "SASL_SSL", "SCRAM-SHA-512")
    assert "KAFKA_ALLOW_PLAINTEXT" not in config
    principal = {"bank-partner": "bank-vbsp", "g2p-gateway": "g2p-gateway-g2pbank"}.get(name, name)
    pod = objects[("Deployment", name)]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
    kafka_secrets = [r for r in refs if r.startswith("everydoor-kafka-")]
    assert kafka_secrets == [f"everydoor-kafka-{principal}"], "one principal, its own"
    creds = objects[("Secret", kafka_secrets[0])]["stringData"]
    assert creds["KAFKA_SASL_USERNAME"] == principal and creds["KAFKA_SASL_PASSWORD"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = mounts[config["KAFKA_SSL_CAFILE"].rsplit("/", 1)[0]]
    source = next(v for v in pod["volumes"] if v["name"] == volume)["configMap"]["name"]
    assert "ca.pem" in objects[("ConfigMap", source)]["data"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_k8s_each_service_reads_only_its_own_database_role(name):
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_documents()}
    assert "DATABASE_URL" not in objects[("ConfigMap", "everydoor-config")]["data"]
    assert "DATABASE_URL" not in objects[("Secret", "everydoor-secrets")]["stringData"]
    container = objects[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]
    refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
    assert [r for r in refs if r.startswith("everydoor-db-")] == [f"everydoor-db-{name}"]
    url = objects[("Secret", f"everydoor-db-{name}")]["stringData"][f"{name.upper()}_DATABASE_URL"]
    assert url.startswith(f"postgresql+asyncpg://{name}:") and url.endswith(f"/everydoor_{name}")
