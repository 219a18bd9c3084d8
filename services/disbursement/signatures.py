"""Verifying partners' status signatures against their registered public keys.

Each partner has a key set (a JWKS file of Ed25519 public keys, each with a `kid`), parsed once
at start-up; a status is authentic when its `ev_signature` JWS is EdDSA, names a key of its
topic's partner, verifies with it, and its payload names this very record (id, type, source and
the SHA-256 of the value bytes). Several keys per partner let a partner rotate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from aiokafka import ConsumerRecord

from services.disbursement import events
from services.disbursement.config import SANDBOX_PARTNER_KEYS_FILE
from shared.envelope import Envelope

_STATUS_TOPIC = events.status_topic("")


class KeySetError(ValueError):
    """A partner key set that cannot be used (unreadable, not Ed25519, no kid, sandbox key in
    production)."""


def parse_key_set(jwks: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """kid → Ed25519 public key of a JWKS document."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise KeySetError(f"{where}: not a JWKS (no `keys` list) or no key in it")
    out: dict[str, Any] = {}
    for jwk in keys:
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if not kid:
            raise KeySetError(f"{where}: every key needs a `kid`")
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise KeySetError(f"{where}: key {kid} is not an Ed25519 key (kty OKP, crv Ed25519)")
        if "d" in jwk:
            raise KeySetError(f"{where}: key {kid} is a private key; register the public half")
        if kid in out:
            raise KeySetError(f"{where}: kid {kid} appears twice")
        try:
            out[kid] = jwt.PyJWK(jwk, algorithm=events.SIGNATURE_ALGORITHM).key
        except jwt.PyJWKError as exc:
            raise KeySetError(f"{where}: key {kid}: {exc}") from exc
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        return parse_key_set(json.loads(path.read_text(encoding="utf-8")), where=str(path))
    except (OSError, ValueError) as exc:
        if isinstance(exc, KeySetError):
            raise
        raise KeySetError(f"{path}: {exc}") from exc


def _raw(key: Any) -> bytes:
    return key.public_bytes_raw()


class PartnerKeys:
    """Every partner's trusted status keys; `verify` checks one record (no I/O)."""

    def __init__(self, keys: Mapping[str, Mapping[str, Any]]) -> None:
        self.keys = {partner: dict(ks) for partner, ks in keys.items()}

    @classmethod
    def load(cls, files: Mapping[str, Path], *, allow_sandbox: bool) -> PartnerKeys:
        """Read each partner's JWKS file; unless `allow_sandbox` (dev mode), a key set holding
        the shipped sandbox key is refused."""
        sandbox = {_raw(k) for k in _read(SANDBOX_PARTNER_KEYS_FILE).values()}
        keys = {}
        for partner, path in files.items():
            keys[partner] = _read(path)
            if not allow_sandbox:
                for kid, key in keys[partner].items():
                    if _raw(key) in sandbox:
                        raise KeySetError(
                            f"{path}: key {kid} of partner {partner} is the public sandbox key, "
                            "trusted only in dev mode (EVERYDOOR_DEV_MODE=true) or with "
                            "DISBURSEMENT_ALLOW_SANDBOX_PARTNER_KEY=true")
        return cls(keys)

    def verify(self, record: ConsumerRecord, event: Envelope) -> str | None:
        """None if the status is signed by one of its partner's keys; else why it is refused."""
        partner = record.topic.removeprefix(_STATUS_TOPIC)
        token = next((v for k, v in record.headers or () if k == events.SIGNATURE_HEADER), None)
        if not token:
            return f"unsigned bank status (no {events.SIGNATURE_HEADER} header)"
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            return f"bank status signature is not a compact JWS: {exc}"
        kid, alg = header.get("kid"), header.get("alg")
        if alg != events.SIGNATURE_ALGORITHM:
            return f"bank status signed with alg {alg!r}; {events.SIGNATURE_ALGORITHM} is required"
        trusted = self.keys.get(partner, {})
        if not isinstance(kid, str) or kid not in trusted:
            return (f"bank status signed with unknown key {kid!r} (partner {partner} has "
                    f"{', '.join(sorted(trusted)) or 'no registered key'})")
        try:
            signed = jwt.api_jws.decode_complete(token, trusted[kid],
                                                 algorithms=[events.SIGNATURE_ALGORITHM])
            claims = json.loads(signed["payload"])
        except (jwt.PyJWTError, ValueError) as exc:
            return f"signature does not verify for key {kid}: {exc}"
        expected = events.status_signature_claims(ce_id=event.id, ce_type=event.type,
                                                  ce_source=event.source,
                                                  value=record.value or b"")
        if not isinstance(claims, dict):
            return f"signature of key {kid} does not sign a status (payload is not an object)"
        differs = [name for name, want in expected.items() if claims.get(name) != want]
        if differs:
            return (f"signature of key {kid} was made for another record "
                    f"({', '.join(differs)} differ)")
        return None
