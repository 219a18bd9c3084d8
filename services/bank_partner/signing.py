"""Signing statuses as the partner: a compact JWS (EdDSA) over the record's identity and value.

The scheme is the contract's (`events.status_signature_claims`, docs/bank-partner.md); the key is
the partner's private Ed25519 JWK. The one shipped here is the sandbox key: public in the
repository, trusted by disbursement only in dev mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from services.bank_partner.config import SANDBOX_KEY_FILE
from services.disbursement import events
from shared.envelope import Envelope


@dataclass(frozen=True)
class SigningKey:
    """A partner's private signing key and the id disbursement knows its public half by."""

    kid: str
    key: Any  # cryptography's Ed25519PrivateKey

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> SigningKey:
        """From a private Ed25519 JWK (`kty` OKP, `crv` Ed25519, `d`, `x`, `kid`)."""
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" not in jwk:
            raise ValueError("the signing key must be a private Ed25519 JWK (kty OKP, crv "
                             "Ed25519, with d)")
        if not jwk.get("kid"):
            raise ValueError("the signing key needs a kid (the id registered with Every Door)")
        return cls(kid=str(jwk["kid"]), key=jwt.PyJWK(jwk, algorithm=events.SIGNATURE_ALGORITHM).key)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """From a JWK file."""
        return cls.from_jwk(json.loads(path.read_text(encoding="utf-8")))


def sandbox_key() -> SigningKey:
    """The shipped sandbox key (dev mode, tests, `make run`)."""
    return SigningKey.load(SANDBOX_KEY_FILE)


def signature(*, key: SigningKey, ce_id: str, ce_type: str, ce_source: str, value: bytes) -> str:
    """The compact JWS over one record (its `ev_signature` header)."""
    claims = events.status_signature_claims(ce_id=ce_id, ce_type=ce_type, ce_source=ce_source,
                                            value=value)
    return jwt.api_jws.encode(json.dumps(claims, separators=(",", ":")).encode(), key.key,
                              algorithm=events.SIGNATURE_ALGORITHM, headers={"kid": key.kid, "typ": None})


def sign_status(event: Envelope, *, key: SigningKey) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record to publish for a status: its value and its headers, the signature among them."""
    value = event.value()
    token = signature(key=key, ce_id=event.id, ce_type=event.type, ce_source=event.source,
                      value=value)
    return value, [*event.headers(), (events.SIGNATURE_HEADER, token.encode())]
