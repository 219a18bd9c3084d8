"""Auth: 401 without a token, 403 for the wrong role, 404 outside the caller's scope."""

from __future__ import annotations

import time

import jwt
import pytest

from services.registry.__main__ import spec
from services.registry.config import Settings
from shared.auth import AuthConfigError, issue_token
from shared.runtime import create_app
from shared.settings import PlatformSettings
from tests.support.apps import auth, running, unique_prefix


def household(commune: str, province: str, national_id: str) -> dict:
    """A minimal valid registration body."""
    return {
        "area_type": "rural",
        "location": {"province_code": province, "commune_code": commune, "village": "Thôn Auth"},
        "members": [{"full_name": "Lò Văn Auth", "national_id": national_id,
                     "date_of_birth": "1979-05-01", "sex": "male", "relation": "head"}],
    }


@pytest.fixture(scope="module")
async def registry(servers):
    """The registry in-process against the real broker and database."""
    async with running(spec(Settings(consumer_group_prefix=unique_prefix(),
                                     consumer_session_timeout_ms=2000,
                                     consumer_heartbeat_interval_ms=300))) as svc:
        yield svc


def nid() -> str:
    """A fresh 12-digit national ID."""
    return str(time.time_ns())[-12:]


async def test_no_token_is_401(registry):
    r = await registry.client.get("/v1/households/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_forged_or_expired_tokens_are_401(registry):
    now = int(time.time())
    forged = jwt.encode({"sub": "x", "role": "national_admin", "scope": ["VN"], "iat": now,
                         "exp": now + 60, "iss": "everydoor", "aud": "everydoor-registry"},
                        "not-the-key" * 4, algorithm="HS256")
    r = await registry.client.get("/v1/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert "HS256" in r.json()["detail"]
    expired = issue_token(role="national_admin", ttl_s=-120)  # beyond the clock-skew leeway
    r = await registry.client.get("/v1/whoami", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


async def test_a_token_for_another_service_is_401(registry):
    for_disbursement = issue_token(role="national_admin", audience="everydoor-disbursement")
    r = await registry.client.get("/v1/whoami",
                                  headers={"Authorization": f"Bearer {for_disbursement}"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"] == "Bearer"
    assert "not issued for this service" in r.json()["detail"]
    both = issue_token(role="national_admin",
                       audience=["everydoor-disbursement", "everydoor-registry"])
    r = await registry.client.get("/v1/whoami", headers={"Authorization": f"Bearer {both}"})
    assert r.status_code == 200 and r.json()["sub"] == "dev-national_admin"


async def test_wrong_role_is_403(registry):
    r = await registry.client.post("/v1/households", json=household("01001", "01", nid()),
                                   headers=auth("auditor"))
    assert r.status_code == 403


async def test_household_outside_scope_is_404_inside_is_200(registry):
    created = await registry.client.post("/v1/households", json=household("08001", "08", nid()),
                                         headers=auth("national_admin"))
    assert created.status_code == 201, created.text
    hid = created.json()["household_id"]
    outside = await registry.client.get(f"/v1/households/{hid}",
                                        headers=auth("commune_officer", "01001"))
    assert outside.status_code == 404
    inside = await registry.client.get(f"/v1/households/{hid}",
                                       headers=auth("commune_officer", "08001"))
    assert inside.status_code == 200
    province = await registry.client.get(f"/v1/households/{hid}",
                                         headers=auth("province_officer", "08"))
    assert province.status_code == 200


def test_outside_dev_mode_a_service_without_a_key_set_refuses_to_start():
    production = PlatformSettings(everydoor_dev_mode=False)
    with pytest.raises(AuthConfigError, match="EVERYDOOR_JWKS_URL"):
        create_app(spec(Settings(platform=production)))
    url = production.model_copy(update={"everydoor_jwks_url": "https://idp.example/certs"})
    assert create_app(spec(Settings(platform=url))).state.authenticator.audience == (
        "everydoor-registry")
