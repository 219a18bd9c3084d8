"""Bearer JWT auth (PyJWT): tokens from an OIDC provider, verified against its public keys (JWKS,
EdDSA or RS256), each service requiring its own audience; roles, location scope, bank partners;
in dev mode a local Ed25519 key pair and dev tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import jwt
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import OKPAlgorithm
from starlette.concurrency import run_in_threadpool

from shared.settings import PlatformSettings, service_audience, state_dir

log = logging.getLogger(__name__)

ROLES = (
    "national_admin", "province_officer", "commune_officer", "commune_chair", "supervisor",
    "auditor", "bank_partner",
)
# Asymmetric only: a verifier holds no key that can sign. The key's type fixes its algorithm
# (OKP Ed25519 → EdDSA, RSA → RS256), so a token cannot choose how it is checked.
ALGORITHM_OF_KTY = {"OKP": "EdDSA", "RSA": "RS256"}
ALGORITHMS = tuple(ALGORITHM_OF_KTY.values())
REQUIRED_CLAIMS = ("iss", "aud", "iat", "exp", "sub")
MIN_RSA_BITS = 2048
# Every service's default audience: what a dev token carries unless told otherwise.
SERVICE_NAMES = ("registry", "eligibility", "disbursement", "supervision")
# ... and the G2P Connect gateway's operator endpoints.
ALL_AUDIENCES = tuple(service_audience(name) for name in (*SERVICE_NAMES, "g2p-gateway"))
NATIONAL = "VN"


class AuthConfigError(RuntimeError):
    """The service cannot start (no usable key set outside dev mode), or a dev-only tool was
    used outside dev mode."""


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


class UnknownKey(HTTPException):
    """The token names a key id the trusted set does not hold (yet: a refresh may bring it)."""

    def __init__(self, kid: str) -> None:
        super().__init__(401, f"invalid token: unknown signing key {kid!r}",
                         headers={"WWW-Authenticate": "Bearer"})
        self.kid = kid


# --- key sets -------------------------------------------------------------------------------

def parse_jwks(jwks: Any, *, where: str) -> dict[str, jwt.PyJWK]:
    """kid → verification key of a JWKS document. Signing keys of type Ed25519 (EdDSA) and RSA
    (RS256, 2048+ bits) are kept; others (encryption keys, other algorithms, no kid) are
    skipped, as a provider may publish them. A private key, or no usable key, is an error."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise AuthConfigError(f"{where}: not a JWKS (no `keys` list)")
    out: dict[str, jwt.PyJWK] = {}
    for jwk in keys:
        if not isinstance(jwk, dict):
            continue
        if "d" in jwk:
            raise AuthConfigError(f"{where}: key {jwk.get('kid')!r} is a private key; a verifier "
                                  "trusts only public keys")
        alg = ALGORITHM_OF_KTY.get(str(jwk.get("kty")))
        kid = jwk.get("kid")
        if (alg is None or not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig"
                or jwk.get("alg", alg) not in (alg, "Ed25519")
                or (alg == "EdDSA" and jwk.get("crv") != "Ed25519")):
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError as exc:
            raise AuthConfigError(f"{where}: key {kid!r}: {exc}") from exc
        if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
            continue
        if kid in out:
            raise AuthConfigError(f"{where}: kid {kid!r} appears twice")
        out[kid] = key
    if not out:
        raise AuthConfigError(f"{where}: no usable signing key (Ed25519 or RSA, with a kid)")
    return out


class KeySet:
    """Trusted verification keys by kid; `get` does no I/O, `refresh` re-reads the source."""

    def __init__(self, keys: Mapping[str, jwt.PyJWK] | None = None, *,
                 pinned: Mapping[str, jwt.PyJWK] | None = None) -> None:
        self._keys = dict(keys or {})
        self._pinned = dict(pinned or {})  # dev mode's own key, kept across refreshes

    def get(self, kid: str) -> jwt.PyJWK | None:
        """The key with this id, if trusted."""
        return self._pinned.get(kid) or self._keys.get(kid)

    @property
    def empty(self) -> bool:
        """No key at all (a JWKS URL never fetched successfully)."""
        return not self._keys and not self._pinned

    def due(self) -> bool:
        """Whether the cached keys are old enough to be fetched again."""
        return False

    def may_refresh(self) -> bool:
        """Whether an unknown kid may trigger a refresh now (rate-limited)."""
        return False

    def refresh(self) -> None:
        """Re-read the source (may block: run it off the event loop)."""


class FileKeySet(KeySet):
    """A JWKS file (e.g. a mounted Secret): read at start-up, read again when an unknown kid
    arrives and the file changed since, so replacing the file rotates keys without a restart."""

    def __init__(self, path: Path, *, pinned: Mapping[str, jwt.PyJWK] | None = None) -> None:
        self.path = path
        self._mtime = self._stat()
        super().__init__(self._read(), pinned=pinned)

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError as exc:
            raise AuthConfigError(f"EVERYDOOR_JWKS_FILE {self.path}: {exc}") from exc

    def _read(self) -> dict[str, jwt.PyJWK]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AuthConfigError(f"EVERYDOOR_JWKS_FILE {self.path}: {exc}") from exc
        return parse_jwks(data, where=f"EVERYDOOR_JWKS_FILE {self.path}")

    def may_refresh(self) -> bool:
        """Only when the file changed: a bad token must not make every request read it."""
        try:
            return self.path.stat().st_mtime != self._mtime
        except OSError:
            return False

    def refresh(self) -> None:
        """Read the file again; a broken new file keeps the old keys (and says so)."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            log.error("keeping the previous token keys: %s", exc)
            return
        self._mtime = mtime  # a broken version is read once, not on every unknown kid
        try:
            self._keys = self._read()
        except AuthConfigError as exc:
            log.error("keeping the previous token keys: %s", exc)


class UrlKeySet(KeySet):
    """An OIDC provider's `jwks_uri`: fetched on first use (never at start-up: nothing connects
    before the service runs), again after `cache_s`, and on an unknown kid at most every
    `min_refresh_s` (so forged kids cannot make every request call the provider). A failed
    fetch keeps the keys already known."""

    def __init__(self, url: str, *, cache_s: float = 300.0, min_refresh_s: float = 30.0,
                 timeout_s: float = 5.0, fetch: Callable[[], Any] | None = None,
                 pinned: Mapping[str, jwt.PyJWK] | None = None) -> None:
        super().__init__(pinned=pinned)
        self.url = url
        self.cache_s = cache_s
        self.min_refresh_s = min_refresh_s
        # PyJWKClient does the HTTP (http/https only, no redirects); caching is ours, so the
        # blocking fetch runs off the event loop and a lookup never does I/O.
        self._fetch = fetch or jwt.PyJWKClient(url, cache_jwk_set=False,
                                               timeout=timeout_s).fetch_data
        self._fetched_at: float | None = None
        self._tried_at: float | None = None

    def due(self) -> bool:
        """Never fetched, or fetched longer than `cache_s` ago (and not tried just now)."""
        now = time.monotonic()
        if self._tried_at is not None and now - self._tried_at < min(self.min_refresh_s,
                                                                     self.cache_s):
            return False
        return self._fetched_at is None or now - self._fetched_at >= self.cache_s

    def may_refresh(self) -> bool:
        """At most one forced fetch per `min_refresh_s`."""
        return self._tried_at is None or time.monotonic() - self._tried_at >= self.min_refresh_s

    def refresh(self) -> None:
        """Fetch the JWKS; on failure log and keep the known keys."""
        self._tried_at = time.monotonic()
        try:
            self._keys = parse_jwks(self._fetch(), where=f"EVERYDOOR_JWKS_URL {self.url}")
        except (jwt.PyJWTError, AuthConfigError) as exc:
            log.error("could not refresh the token keys from %s: %s", self.url, exc)
            return
        self._fetched_at = self._tried_at


def _placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(p in lowered for p in ("change_me", "changeme", "change-me"))


def trusted_keys(settings: PlatformSettings | None = None) -> KeySet:
    """The keys tokens are verified with: EVERYDOOR_JWKS_URL or EVERYDOOR_JWKS_FILE (exactly
    one, required outside dev mode); dev mode also trusts the local dev key."""
    settings = settings or PlatformSettings()
    url, path = settings.everydoor_jwks_url, settings.everydoor_jwks_file
    dev = settings.everydoor_dev_mode
    if url and path:
        raise AuthConfigError("set EVERYDOOR_JWKS_URL or EVERYDOOR_JWKS_FILE, not both")
    if not dev:
        if not url and not path:
            raise AuthConfigError(
                "EVERYDOOR_JWKS_URL (the identity provider's jwks_uri) or EVERYDOOR_JWKS_FILE is "
                "required outside dev mode; refusing to start")
        if url and (urlsplit(url).scheme != "https" or not urlsplit(url).hostname
                    or _placeholder(url)):
            raise AuthConfigError(f"EVERYDOOR_JWKS_URL {url!r} must be a real https:// URL "
                                  "outside dev mode; refusing to start")
        if _placeholder(settings.everydoor_jwt_issuer):
            raise AuthConfigError("EVERYDOOR_JWT_ISSUER is a placeholder; set it to the "
                                  "provider's issuer; refusing to start")
    pinned = dev_public_keys() if dev else None
    if url:
        return UrlKeySet(url, cache_s=settings.everydoor_jwks_cache_s,
                         min_refresh_s=settings.everydoor_jwks_min_refresh_s, pinned=pinned)
    if path:
        return FileKeySet(path, pinned=pinned)
    return KeySet(pinned=pinned)


# --- dev mode: a local key pair and tokens signed with it ------------------------------------

def dev_key_path() -> Path:
    """Where the locally generated dev signing key (a private Ed25519 JWK) lives."""
    return state_dir() / "dev-signing-key.private.jwk.json"


_dev_cache: dict[str, tuple[str, Ed25519PrivateKey]] = {}


def _new_dev_jwk() -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    raw = base64.urlsafe_b64decode(jwk["x"] + "==")
    kid = "dev-" + base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:12]).decode()
    return {**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"}


def dev_signing_key() -> tuple[str, Ed25519PrivateKey]:
    """(kid, private key) of the dev key pair, created on first use (dev mode only)."""
    path = dev_key_path()
    cached = _dev_cache.get(str(path))
    if cached is not None and path.exists():
        return cached
    if not path.exists():
        # Written aside then linked into place: processes starting together agree on one key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(_new_dev_jwk(), f)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    jwk = json.loads(path.read_text())
    key = jwt.PyJWK(jwk, algorithm="EdDSA").key
    if not isinstance(key, Ed25519PrivateKey):
        raise AuthConfigError(f"{path} is not a private Ed25519 key; delete it to make a new one")
    _dev_cache[str(path)] = (jwk["kid"], key)
    return _dev_cache[str(path)]


def dev_jwks() -> dict[str, Any]:
    """The dev key pair's public JWKS."""
    kid, key = dev_signing_key()
    public = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": kid, "alg": "EdDSA", "use": "sig"}]}


def dev_public_keys() -> dict[str, jwt.PyJWK]:
    """kid → the dev public key."""
    return parse_jwks(dev_jwks(), where=str(dev_key_path()))


def issue_token(*, role: str, scope: str | list[str] = NATIONAL, sub: str | None = None,
                partner: str | None = None, ttl_s: int = 12 * 3600,
                audience: str | Iterable[str] | None = None,
                settings: PlatformSettings | None = None) -> str:
    """Sign a dev token with the local key (dev mode only: elsewhere tokens come from the
    identity provider). `sub` defaults to `dev-<role>`, one person per role; `audience` to
    every service's."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    settings = settings or PlatformSettings()
    if not settings.everydoor_dev_mode:
        raise AuthConfigError("dev tokens exist only in dev mode (EVERYDOOR_DEV_MODE=true); "
                              "outside it tokens come from the identity provider "
                              "(EVERYDOOR_JWKS_URL)")
    scopes = scope.replace(",", " ").split() if isinstance(scope, str) else list(scope)
    audiences = ([audience] if isinstance(audience, str) else
                 list(audience) if audience is not None else list(ALL_AUDIENCES))
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub or f"dev-{role}", "role": role, "scope": scopes,
                              "iss": settings.everydoor_jwt_issuer, "aud": audiences,
                              "iat": now, "exp": now + ttl_s}
    if partner:
        claims["partner"] = partner
    kid, key = dev_signing_key()
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


@dataclass(frozen=True)
class Principal:
    """The caller: subject, role, the administrative codes they may act in, bank partner."""

    sub: str
    role: str
    scope: tuple[str, ...] = field(default_factory=tuple)
    partner: str | None = None

    @property
    def national(self) -> bool:
        """National scope (or a role that reads everywhere)."""
        return NATIONAL in self.scope or self.role in ("national_admin", "auditor")

    def covers(self, *, province_code: str | None = None, commune_code: str | None = None) -> bool:
        """Whether a record in this province/commune is inside the caller's scope."""
        if self.national:
            return True
        return (province_code is not None and province_code in self.scope) or (
            commune_code is not None and commune_code in self.scope
        )

    def communes_filter(self) -> tuple[str, ...] | None:
        """Scope codes to filter a listing by (None: everything)."""
        return None if self.national else self.scope

    def covers_row(self, row: Any) -> bool:
        """Whether a row with `commune_code` (and maybe `province_code`) is inside the scope."""
        return self.covers(province_code=getattr(row, "province_code", None),
                           commune_code=getattr(row, "commune_code", None))


def actor_of(user: Principal | None) -> str | None:
    """How an actor is recorded in history and events: `role:sub`."""
    return None if user is None else f"{user.role}:{user.sub}"


def scope_clause(user: Principal, table: sa.Table) -> sa.ColumnElement[bool]:
    """WHERE clause limiting a listing of `table` (commune_code, province_code) to the caller's
    scope (`true` for national scope)."""
    codes = user.communes_filter()
    if codes is None:
        return sa.true()
    return sa.or_(table.c.commune_code.in_(codes), table.c.province_code.in_(codes))


_bearer = HTTPBearer(auto_error=False)


class Authenticator:
    """Validates bearer tokens for one service: signature by a trusted key, issuer, this
    service's audience, iat/exp within the maximum lifetime, sub; then role, scope, partner."""

    def __init__(self, keys: KeySet, *, issuer: str, audience: str,
                 max_lifetime_s: int = 12 * 3600, leeway_s: int = 30) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.max_lifetime_s = max_lifetime_s
        self.leeway_s = leeway_s
        self._refreshing = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: PlatformSettings | None = None, *,
                      audience: str) -> Authenticator:
        """From the platform settings (AuthConfigError when no usable key set)."""
        settings = settings or PlatformSettings()
        return cls(trusted_keys(settings), issuer=settings.everydoor_jwt_issuer,
                   audience=audience, max_lifetime_s=settings.everydoor_jwt_max_lifetime_s,
                   leeway_s=settings.everydoor_jwt_leeway_s)

    def decode(self, token: str) -> Principal:
        """Validate a token against the keys known now (no I/O); 401 with the reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _unauthorized(f"invalid token: algorithm {alg!r} is not accepted (only "
                                f"{' or '.join(ALGORITHMS)}, signed by the identity provider)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("invalid token: no key id (kid) in its header")
        key = self.keys.get(kid)
        if key is None:
            raise UnknownKey(kid)
        if key.algorithm_name != alg:
            raise _unauthorized(f"invalid token: key {kid!r} is not an {alg} key")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway_s,
                                options={"require": list(REQUIRED_CLAIMS)})
        except jwt.InvalidAudienceError as exc:
            raise _unauthorized(f"invalid token: not issued for this service (its audience "
                                f"{self.audience!r} is not in the token's aud)") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from exc
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > self.max_lifetime_s:
            raise _unauthorized(f"invalid token: lifetime {lifetime:.0f} s exceeds the maximum "
                                f"{self.max_lifetime_s} s (EVERYDOOR_JWT_MAX_LIFETIME_S)")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub.strip():
            raise _unauthorized("invalid token: empty subject (sub)")
        role = claims.get("role")
        if role not in ROLES:
            raise _unauthorized("invalid token: unknown role")
        scope = claims.get("scope") or []
        if isinstance(scope, str):
            scope = scope.split()
        partner = claims.get("partner")
        return Principal(sub=sub, role=role, scope=tuple(str(s) for s in scope),
                         partner=str(partner) if partner is not None else None)

    async def authenticate(self, token: str) -> Principal:
        """`decode`, fetching the key set first when it is due, and again (rate-limited) when
        the token names a key not known yet (a provider's rotation)."""
        if self.keys.due():
            await self._refresh(force=False)
        try:
            return self.decode(token)
        except UnknownKey:
            if not self.keys.may_refresh():
                self._unavailable()
                raise
            await self._refresh(force=True)
            self._unavailable()
            return self.decode(token)

    async def _refresh(self, *, force: bool) -> None:
        async with self._refreshing:  # one fetch at a time; the others wait for its keys
            if self.keys.due() or (force and self.keys.may_refresh()):
                await run_in_threadpool(self.keys.refresh)

    def _unavailable(self) -> None:
        if self.keys.empty:
            raise HTTPException(503, "the identity provider's keys could not be fetched; "
                                     "try again shortly")


# A browser signed in at supervision's `/sign-in` keeps the token in this cookie (HttpOnly,
# SameSite=Strict): it is read for safe methods only, so a page can be opened and its links
# followed, while every write still needs the Authorization header (no cross-site request
# forgery can act with it).
SESSION_COOKIE = "everydoor_token"
SAFE_METHODS = frozenset({"GET", "HEAD"})


async def current_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """The authenticated caller (the bearer token; for GET/HEAD also the sign-in cookie), or
    401."""
    token = credentials.credentials if credentials is not None else None
    if token is None and request.method in SAFE_METHODS:
        token = request.cookies.get(SESSION_COOKIE) or None
    if token is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(token)
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: str):
    """Dependency: the caller must have one of `roles` (403 otherwise)."""

    async def check(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"role {principal.role} may not do this; needs one of "
                                     f"{', '.join(roles)}")
        return principal

    check.roles = roles  # type: ignore[attr-defined]  # read by the authorization matrix
    return Depends(check)
