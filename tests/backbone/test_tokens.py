"""Token verification without I/O: keys from a JWKS (EdDSA, RS256), issuer, the service's
audience, bounded lifetime, required claims; algorithm confusion, unknown kids and rotation."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi import HTTPException
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from services import cli
from shared.auth import (
    ALL_AUDIENCES,
    AuthConfigError,
    Authenticator,
    FileKeySet,
    KeySet,
    UnknownKey,
    UrlKeySet,
    issue_token,
    parse_jwks,
    trusted_keys,
)
from shared.settings import PlatformSettings

ISSUER = "https://sso.example.gov.vn/realms/everydoor"
REGISTRY = "everydoor-registry"


class Key:
    """A provider's signing key: private half to mint, public JWK to publish."""

    def __init__(self, kid: str, kind: str = "ed25519") -> None:
        self.kid = kid
        if kind == "ed25519":
            self.private: Any = ed25519.Ed25519PrivateKey.generate()
            self.alg = "EdDSA"
            self.jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**self.jwk, "kid": kid, "use": "sig"}

    def sign(self, **overrides: Any) -> str:
        """A token a provider would issue for the registry, claims overridable (None drops)."""
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": REGISTRY, "sub": "f3a9c2-lan", "iat": now,
                  "exp": now + 600, "role": "commune_officer", "scope": ["01001"]}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid})


def jwks(*keys: Key) -> dict[str, Any]:
    """The public JWKS publishing `keys`."""
    return {"keys": [k.jwk for k in keys]}


ED = Key("ed-2026-01")
RS = Key("rs-2026-01", "rsa")


def verifier(*keys: Key, audience: str = REGISTRY, max_lifetime_s: int = 12 * 3600) -> Authenticator:
    """An authenticator for the registry trusting `keys`."""
    return Authenticator(KeySet(parse_jwks(jwks(*keys), where="test")), issuer=ISSUER,
                         audience=audience, max_lifetime_s=max_lifetime_s, leeway_s=0)


def refused(auth: Authenticator, token: str) -> str:
    """The 401 reason a token is refused with."""
    with pytest.raises(HTTPException) as caught:
        auth.decode(token)
    assert caught.value.status_code == 401
    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}
    return str(caught.value.detail)


@pytest.mark.parametrize("key", [ED, RS], ids=["EdDSA", "RS256"])
def test_a_good_token_gives_the_caller(key):
    principal = verifier(ED, RS).decode(key.sign(partner="vbsp"))
    assert (principal.sub, principal.role, principal.scope, principal.partner) == (
        "f3a9c2-lan", "commune_officer", ("01001",), "vbsp")


def test_the_audience_must_name_this_service():
    auth = verifier(ED)
    reason = refused(auth, ED.sign(aud="everydoor-disbursement"))
    assert "not issued for this service" in reason and REGISTRY in reason
    assert auth.decode(ED.sign(aud=["everydoor-disbursement", REGISTRY])).sub == "f3a9c2-lan"
    assert "aud" in refused(auth, ED.sign(aud=None))


def test_expired_and_overlong_tokens_are_refused():
    now = int(time.time())
    auth = verifier(ED, max_lifetime_s=3600)
    assert "expired" in refused(auth, ED.sign(iat=now - 700, exp=now - 100))
    reason = refused(auth, ED.sign(iat=now, exp=now + 3601))
    assert "lifetime 3601 s exceeds the maximum 3600 s" in reason
    assert auth.decode(ED.sign(iat=now, exp=now + 3600))


@pytest.mark.parametrize("claim", ["iat", "sub", "exp", "iss"])
def test_required_claims(claim):
    assert f'"{claim}"' in refused(verifier(ED), ED.sign(**{claim: None}))


def test_an_empty_subject_or_unknown_role_is_refused():
    assert "sub" in refused(verifier(ED), ED.sign(sub=" "))
    assert "role" in refused(verifier(ED), ED.sign(role="root"))


def test_another_issuer_is_refused():
    assert "issuer" in refused(verifier(ED), ED.sign(iss="https://evil.example"))


def test_symmetric_and_unsigned_tokens_are_refused():
    claims = json.loads(jwt.api_jws.decode_complete(ED.sign(), options={
        "verify_signature": False})["payload"])
    # HS256 keyed with the public key (the classic confusion) and with any secret.
    public = ED.private.public_key().public_bytes_raw()
    for token in (jwt.encode(claims, public, algorithm="HS256", headers={"kid": ED.kid}),
                  jwt.encode(claims, "s" * 40, algorithm="HS256", headers={"kid": ED.kid}),
                  jwt.encode(claims, None, algorithm="none", headers={"kid": ED.kid})):
        assert "is not accepted" in refused(verifier(ED), token)


def test_a_key_is_used_only_with_its_own_algorithm():
    impostor = Key(RS.kid)  # an EdDSA token naming the RSA key's kid
    assert "is not an EdDSA key" in refused(verifier(RS), impostor.sign())


def test_an_unknown_or_missing_kid_is_refused():
    other = Key("someone-else")
    with pytest.raises(UnknownKey) as caught:
        verifier(ED).decode(other.sign())
    assert caught.value.status_code == 401 and "someone-else" in caught.value.detail
    token = jwt.encode({"sub": "x"}, ED.private, algorithm="EdDSA")
    assert "kid" in refused(verifier(ED), token)
    assert "forged" not in refused(verifier(ED), "not.a.jwt")


def test_a_key_set_keeps_signing_keys_and_refuses_private_ones():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    skipped = [{"kty": "RSA", "use": "enc", "kid": "enc", **RS.jwk},
               {**RSAAlgorithm.to_jwk(small.public_key(), as_dict=True), "kid": "weak"},
               {"kty": "EC", "crv": "P-256", "kid": "ec", "x": "a", "y": "b"},
               {**ED.jwk, "kid": None}]
    skipped[0]["use"] = "enc"
    keys = parse_jwks({"keys": [*skipped, ED.jwk, RS.jwk]}, where="idp")
    assert set(keys) == {ED.kid, RS.kid}
    private = OKPAlgorithm.to_jwk(ED.private, as_dict=True)
    with pytest.raises(AuthConfigError, match="private key"):
        parse_jwks({"keys": [{**private, "kid": "oops"}]}, where="idp")
    with pytest.raises(AuthConfigError, match="no usable signing key"):
        parse_jwks({"keys": skipped}, where="idp")


async def test_a_jwks_file_with_two_keys_rotates(tmp_path: Path):
    old, new, newer = Key("2026-01"), Key("2026-07"), Key("2027-01")
    path = tmp_path / "idp.jwks.json"
    path.write_text(json.dumps(jwks(old, new)))
    auth = Authenticator(FileKeySet(path), issuer=ISSUER, audience=REGISTRY)
    assert (await auth.authenticate(old.sign())).sub == (await auth.authenticate(new.sign())).sub
    with pytest.raises(UnknownKey):  # not published yet, and the file did not change
        await auth.authenticate(newer.sign())
    path.write_text(json.dumps(jwks(new, newer)))  # the provider rotates: old retired
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert await auth.authenticate(newer.sign())
    assert await auth.authenticate(new.sign())
    with pytest.raises(UnknownKey):
        await auth.authenticate(old.sign())
    path.write_text("{not json")  # a broken file keeps the keys it replaced
    os.utime(path, (time.time() + 10, time.time() + 10))
    with pytest.raises(UnknownKey):
        await auth.authenticate(old.sign())
    assert await auth.authenticate(newer.sign())


async def test_a_jwks_url_is_fetched_on_use_and_again_for_an_unknown_kid():
    published = [ED]
    fetches: list[float] = []

    def fetch() -> dict[str, Any]:
        fetches.append(time.monotonic())
        return jwks(*published)

    keys = UrlKeySet("https://idp.example/certs", min_refresh_s=0, fetch=fetch)
    auth = Authenticator(keys, issuer=ISSUER, audience=REGISTRY)
    assert not fetches, "nothing is fetched before the first token"
    assert await auth.authenticate(ED.sign())
    assert await auth.authenticate(ED.sign())
    assert len(fetches) == 1, "cached"
    published.append(RS)  # rotation: a new kid is fetched at once
    assert await auth.authenticate(RS.sign())
    assert len(fetches) == 2


async def test_unknown_kids_refresh_a_jwks_url_at_most_once_per_interval():
    fetches = 0

    def fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        return jwks(ED)

    auth = Authenticator(UrlKeySet("https://idp.example/certs", min_refresh_s=60, fetch=fetch),
                         issuer=ISSUER, audience=REGISTRY)
    for n in range(5):
        with pytest.raises(UnknownKey):
            await auth.authenticate(Key(f"forged-{n}").sign())
    assert fetches == 1


async def test_an_unreachable_provider_is_503_until_its_keys_arrive():
    up = False

    def fetch() -> dict[str, Any]:
        if not up:
            raise jwt.PyJWKClientConnectionError("connection refused")
        return jwks(ED)

    auth = Authenticator(UrlKeySet("https://idp.example/certs", min_refresh_s=0, fetch=fetch),
                         issuer=ISSUER, audience=REGISTRY)
    with pytest.raises(HTTPException) as caught:
        await auth.authenticate(ED.sign())
    assert caught.value.status_code == 503
    up = True
    assert await auth.authenticate(ED.sign())
    up = False  # a later outage keeps the known keys
    auth.keys.cache_s = 0.0  # type: ignore[attr-defined]
    assert await auth.authenticate(ED.sign())


def test_outside_dev_mode_a_key_set_is_required(tmp_path: Path):
    def prod(**kw: Any) -> PlatformSettings:
        return PlatformSettings(everydoor_dev_mode=False, everydoor_jwt_issuer=ISSUER, **kw)

    for settings, reason in [(prod(), "required outside dev mode"),
                             (prod(everydoor_jwks_url="http://idp.example/certs"), "https://"),
                             (prod(everydoor_jwks_url="https://CHANGE_ME/certs"), "https://"),
                             (prod(everydoor_jwks_url="https://idp.example/certs",
                                   everydoor_jwks_file=tmp_path / "x.json"), "not both"),
                             (prod(everydoor_jwks_file=tmp_path / "missing.json"), "missing"),
                             (PlatformSettings(everydoor_dev_mode=False,
                                               everydoor_jwks_url="https://idp.example/certs",
                                               everydoor_jwt_issuer="https://CHANGE_ME"),
                              "EVERYDOOR_JWT_ISSUER")]:
        with pytest.raises(AuthConfigError, match=reason):
            trusted_keys(settings)
    assert isinstance(trusted_keys(prod(everydoor_jwks_url="https://idp.example/certs")),
                      UrlKeySet)


def test_dev_mode_signs_with_a_local_key_pair_and_only_there(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EVERYDOOR_HOME", str(tmp_path))
    token = issue_token(role="commune_chair", scope="01001")
    assert len(list(tmp_path.glob("dev-signing-key.private.jwk.json"))) == 1
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "dev-commune_chair" and set(claims["aud"]) == set(ALL_AUDIENCES)
    auth = Authenticator.from_settings(PlatformSettings(), audience=REGISTRY)
    assert auth.decode(token).sub == "dev-commune_chair"
    assert "not issued" in refused(auth, issue_token(role="auditor",
                                                     audience="everydoor-disbursement"))
    with pytest.raises(AuthConfigError, match="identity provider"):
        issue_token(role="auditor", settings=PlatformSettings(everydoor_dev_mode=False))


def test_everydoor_token_refuses_outside_dev_mode(monkeypatch: pytest.MonkeyPatch, capsys,
                                                  tmp_path: Path):
    monkeypatch.setenv("EVERYDOOR_HOME", str(tmp_path))
    monkeypatch.setenv("EVERYDOOR_DEV_MODE", "false")
    assert cli.main(["token", "--role", "auditor"]) == 2
    assert "identity provider" in capsys.readouterr().err
    monkeypatch.setenv("EVERYDOOR_DEV_MODE", "true")
    assert cli.main(["token", "--role", "auditor"]) == 0
    sub = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})["sub"]
    assert sub.startswith("dev-auditor-"), "a personal dev subject"
