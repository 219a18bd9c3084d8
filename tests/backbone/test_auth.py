"""Auth: 401 without a token, 403 for the wrong role, 404 outside the caller's scope."""

from __future__ import annotations

import time

import jwt
import pytest

from services.registry.__main__ import spec
from services.registry.config import Settings
from shared.auth import AuthConfigError, issue_token, signing_key
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
    forged = jwt.encode({"sub": "x", "role": "national_admin", "scope": ["VN"],
                         "exp": int(time.time()) + 60, "iss": "everydoor"}, "not-the-key" * 4,
                        algorithm="HS256")
    r = await registry.client.get("/v1/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    expired = issue_token(role="national_admin", ttl_s=-10)
    r = await registry.client.get("/v1/whoami", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401


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


def test_outside_dev_mode_a_missing_or_placeholder_key_refuses_to_start():
    with pytest.raises(AuthConfigError):
        signing_key(PlatformSettings(everydoor_dev_mode=False, everydoor_jwt_secret=None))
    with pytest.raises(AuthConfigError):
        signing_key(PlatformSettings(everydoor_dev_mode=False, everydoor_jwt_secret="changeme"))
    good = "x" * 40
    assert signing_key(PlatformSettings(everydoor_dev_mode=False,
                                        everydoor_jwt_secret=good)) == good
