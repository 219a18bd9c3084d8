"""Bearer JWT auth (PyJWT): roles, location scope, bank partners; dev key and dev tokens."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import jwt
import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import PlatformSettings, state_dir

ROLES = (
    "national_admin", "province_officer", "commune_officer", "commune_chair", "supervisor",
    "auditor", "bank_partner",
)
ALGORITHM = "HS256"
PLACEHOLDERS = {"", "changeme", "change-me", "secret", "placeholder", "dev", "CHANGE_ME"}
NATIONAL = "VN"


class AuthConfigError(RuntimeError):
    """The service cannot start: no usable signing key outside dev mode."""


def dev_key_path() -> Path:
    """Where the locally generated dev signing key lives."""
    return state_dir() / "dev-signing.key"


def signing_key(settings: PlatformSettings | None = None) -> str:
    """The JWT key: EVERYDOOR_JWT_SECRET, or (dev mode only) a local key created on first use."""
    settings = settings or PlatformSettings()
    secret = settings.everydoor_jwt_secret
    if secret and secret.strip() not in PLACEHOLDERS and len(secret) >= 32:
        return secret
    if not settings.everydoor_dev_mode:
        raise AuthConfigError(
            "EVERYDOOR_JWT_SECRET is missing, a placeholder or shorter than 32 characters; "
            "refusing to start outside dev mode"
        )
    path = dev_key_path()
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def issue_token(*, role: str, scope: str | list[str] = NATIONAL, sub: str | None = None,
                partner: str | None = None, ttl_s: int = 12 * 3600,
                settings: PlatformSettings | None = None) -> str:
    """Sign a token (dev tooling and tests)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    settings = settings or PlatformSettings()
    scopes = scope.replace(",", " ").split() if isinstance(scope, str) else list(scope)
    now = int(time.time())
    claims = {"sub": sub or f"dev-{role}", "role": role, "scope": scopes,
              "iss": settings.everydoor_jwt_issuer, "iat": now, "exp": now + ttl_s}
    if partner:
        claims["partner"] = partner
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


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
    """FastAPI dependency that validates the bearer token against the platform key."""

    def __init__(self, settings: PlatformSettings | None = None) -> None:
        self.settings = settings or PlatformSettings()
        self.key = signing_key(self.settings)

    def decode(self, token: str) -> Principal:
        """Validate signature, expiry and claims."""
        try:
            claims = jwt.decode(token, self.key, algorithms=[ALGORITHM],
                                options={"require": ["sub", "exp"]},
                                issuer=self.settings.everydoor_jwt_issuer)
        except jwt.PyJWTError as exc:
            raise HTTPException(401, f"invalid token: {exc}",
                                headers={"WWW-Authenticate": "Bearer"}) from exc
        role = claims.get("role")
        if role not in ROLES:
            raise HTTPException(401, "invalid token: unknown role",
                                headers={"WWW-Authenticate": "Bearer"})
        scope = claims.get("scope") or []
        if isinstance(scope, str):
            scope = scope.split()
        return Principal(sub=str(claims["sub"]), role=role, scope=tuple(scope),
                         partner=claims.get("partner"))


async def current_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """The authenticated caller, or 401."""
    if credentials is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.decode(credentials.credentials)
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
