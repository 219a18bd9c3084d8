"""A disbursement service (in-process) with its own reference partner, for this folder's tests.

Each run uses a fresh partner name, so its instruction and status topics hold only this run's
messages; eligibility facts are published on the real `eligibility.decisions` topic."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from services.bank_partner.config import PartnerConfig
from services.bank_partner.partner import Partner
from services.bank_partner.signing import SigningKey
from services.disbursement.__main__ import spec
from services.disbursement.config import PROGRAMMES_FILE, SANDBOX_PARTNER_KEYS_FILE, Settings
from services.eligibility import events as eligibility_events
from shared.envelope import Envelope
from tests.support.apps import RunningService, auth, running, unique_prefix
from tests.support.kafka import produce_event
from tests.support.wait import eventually

ALL_PROGRAMMES = ("VBSP-POOR-LOAN", "VBSP-NEARPOOR-LOAN", "VBSP-ESCAPED-LOAN", "LIVELIHOOD-MODEL",
                  "VOCATIONAL-TRAINING", "HOUSING-SUPPORT", "HEALTH-INSURANCE-SUBSIDY")
def admin() -> dict[str, str]:
    """A national admin token (signed when called: the session sets the dev key first)."""
    return auth("national_admin")


def programmes_file(partner: str) -> Path:
    """The shipped programmes, routed to `partner`."""
    doc = yaml.safe_load(PROGRAMMES_FILE.read_text(encoding="utf-8"))
    doc["default_partner"] = partner
    path = Path(tempfile.mkdtemp(prefix="disb-prog-")) / "programmes.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def new_commune() -> str:
    """A commune code no other test uses (budgets are per commune)."""
    return f"{random.randint(10000, 99999)}"


def test_settings(partner: str, **kw: object) -> Settings:
    """Fast-reacting settings for tests."""
    return Settings(partners=[partner], programmes_file=programmes_file(partner),
                    consumer_group_prefix=unique_prefix(), consumer_session_timeout_ms=2000,
                    consumer_heartbeat_interval_ms=300, relay_poll_interval_s=0.05,
                    dispatch_interval_s=0.2, **kw)


def new_signing_key(kid: str) -> SigningKey:
    """A fresh Ed25519 key, as a partner would generate one."""
    return SigningKey(kid=kid, key=Ed25519PrivateKey.generate())


# The partner's next key, registered next to the sandbox key (a rotation in progress).
ROTATED_KEY = new_signing_key("rotated-2026-07")


def partner_keys_file(*keys: SigningKey, sandbox: bool = True) -> Path:
    """A JWKS file: the public halves of `keys`, after the sandbox public key (`sandbox`)."""
    jwks = json.loads(SANDBOX_PARTNER_KEYS_FILE.read_text(encoding="utf-8"))
    jwks["keys"] = jwks["keys"] if sandbox else []
    jwks["keys"] += [{**json.loads(OKPAlgorithm.to_jwk(k.key.public_key())), "kid": k.kid}
                     for k in keys]
    path = Path(tempfile.mkdtemp(prefix="disb-keys-")) / "partner.jwks.json"
    path.write_text(json.dumps(jwks), encoding="utf-8")
    return path


def partner_config(partner: str, bootstrap: str, **kw: object) -> PartnerConfig:
    """The reference partner in sandbox mode, answering quickly."""
    return PartnerConfig(**{"partner": partner, "bootstrap_servers": bootstrap,
                            "group_id": f"bank-partner.{partner}.{uuid.uuid4().hex[:6]}",
                            "settle_delay_s": 0.2, "sandbox": True, "repayments": 2,
                            "session_timeout_ms": 2000, "heartbeat_interval_ms": 300, **kw})


@dataclass
class Stack:
    """The service, its partner's name, and helpers to seed facts and drive the flow."""

    service: RunningService
    partner: str
    bootstrap: str

    @property
    def client(self):  # noqa: ANN201 - httpx.AsyncClient
        """HTTP client of the service."""
        return self.service.client

    async def household(self, commune: str, *, village: str = "Thôn Một",
                        eligible: tuple[str, ...] = ALL_PROGRAMMES,
                        head_name: str = "Lò Thị Mai", as_of: datetime | None = None) -> str:
        """Publish an eligibility decision for a new household; wait until it is projected."""
        household_id = str(uuid.uuid4())
        await publish_eligibility(self.bootstrap, household_id=household_id, commune=commune,
                                  village=village, eligible=eligible, head_name=head_name,
                                  as_of=as_of)

        async def projected() -> bool:
            r = await self.client.get(f"/v1/households/{household_id}", headers=admin())
            return r.status_code == 200

        await eventually(projected, timeout=20, message=f"household {household_id} projected")
        return household_id

    async def group(self, commune: str, members: list[str], *, village: str = "Thôn Một") -> str:
        """A Women's Union group with these members."""
        officer = auth("commune_officer", commune)
        r = await self.client.post("/v1/groups", headers=officer, json={
            "commune_code": commune, "village": village, "organisation": "womens_union",
            "name": "Tổ TK&VV Hội Phụ nữ thôn Một", "leader_name": "Hà Thị Lan"})
        assert r.status_code == 201, r.text
        group_id = r.json()["group_id"]
        for household_id in members:
            r = await self.client.post(f"/v1/groups/{group_id}/members", headers=officer,
                                       json={"household_id": household_id})
            assert r.status_code == 201, r.text
        return group_id

    async def application(self, application_id: str, commune: str) -> dict:
        """GET the application as a commune officer."""
        r = await self.client.get(f"/v1/applications/{application_id}",
                                  headers=auth("commune_officer", commune))
        assert r.status_code == 200, r.text
        return r.json()

    async def instruction_status(self, application_id: str, commune: str, status: str) -> dict:
        """Wait until the application's instruction reaches `status`; return the application."""

        async def reached() -> dict | None:
            app = await self.application(application_id, commune)
            inst = app.get("instruction")
            return app if inst and inst["status"] == status else None

        return await eventually(reached, timeout=20, message=f"instruction {status}")


async def publish_eligibility(bootstrap: str, *, household_id: str, commune: str, village: str,
                              eligible: tuple[str, ...], head_name: str = "Lò Thị Mai",
                              as_of: datetime | None = None,
                              reasons: dict[str, str] | None = None) -> None:
    """An `eligibility.program_eligibility.changed.v1` as eligibility would publish it."""
    reasons = reasons or {}
    payload = eligibility_events.ProgramEligibilityChangedV1(
        household_id=household_id, category="poor", status="recognized", commune_code=commune,
        village=village, head_name=head_name, as_of=as_of or datetime.now(UTC),
        programs=[eligibility_events.ProgramStatus(
            program_code=code, eligible=code in eligible,
            reason=reasons.get(code, "recognized poor household" if code in eligible
                               else "the household is not recognized poor"))
            for code in ALL_PROGRAMMES])
    await produce_event(bootstrap, eligibility_events.TOPIC, Envelope(
        type=eligibility_events.PROGRAM_ELIGIBILITY_CHANGED, source=eligibility_events.SOURCE,
        subject=household_id, data=payload.model_dump(mode="json")))


@pytest.fixture(scope="package")
async def stack(servers):
    """Disbursement in-process with a fresh partner name, and the reference partner answering."""
    partner = f"t{uuid.uuid4().hex[:8]}"
    keys = {partner: partner_keys_file(ROTATED_KEY)}
    async with running(spec(test_settings(partner, partner_keys=keys))) as service:
        reference = Partner(partner_config(partner, servers.bootstrap_servers))
        stop = asyncio.Event()
        task = asyncio.create_task(reference.run(stop))
        await asyncio.wait_for(reference.started.wait(), 30)
        yield Stack(service=service, partner=partner, bootstrap=servers.bootstrap_servers)
        stop.set()
        await asyncio.wait_for(task, 30)
