"""The G2P Connect disbursement contract (v1.0.0) as both sides use it: envelopes, detached JWS
signatures over the HTTP body, the spec's JSON Schemas (vendored in docs/schemas/g2p-connect/),
and the mapping of G2P Connect statuses onto the instruction lifecycle.

The sandbox bank (services/bank_partner, `--g2p`) imports this module as the reference partner
imports `services.disbursement.events`: it is the contract, not the gateway's internals.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import yaml

from shared.settings import PROJECT_ROOT

VERSION = "1.0.0"
SIGNATURE_ALGORITHM = "EdDSA"
SIGNATURE_HEADER = "Signature"  # HTTP header: detached JWS (RFC 7515 App. F) over the body bytes
SCHEMA_DIR = PROJECT_ROOT / "docs" / "schemas" / "g2p-connect"
API_FILE = "disburse/disburse_core_api_v1.0.0.yaml"
SCHEMA_BASE = "https://g2p-connect.invalid/src/"

# Error codes of the async acknowledgement (common/schema/Error.yaml).
ERR_BAD_REQUEST = "err.request.bad"
ERR_VERSION = "err.version.not_supported"
ERR_SENDER = "err.sender_id.invalid"
ERR_RECEIVER = "err.receiver_id.invalid"
ERR_SIGNATURE_MISSING = "err.signature.missing"
ERR_SIGNATURE_INVALID = "err.signature.invalid"
ERR_ENCRYPTION = "err.encryption.invalid"
# Reason code the bank gives a reference id it has already seen: not a business rejection.
DUPLICATE_REFERENCE = "rjct.reference_id.duplicate"

# The operations we use: (path, method) → the JSON pointer of its request-body schema.
OPERATIONS = ("/disburse", "/on-disburse", "/disburse/txn/status", "/disburse/txn/on-status")

# Known defects of the published spec, patched when the schemas are loaded (docs/bank-partner.md
# "Deviations"): (file, JSON path to a list, wrong item, right item).
PATCHES = (("disburse/schema/DisburseRequest.yaml", ("required",), "disburemsents",
            "disbursements"),)


def compact(doc: Any) -> bytes:
    """The compact JSON bytes of a document (what is signed and sent)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def now_ts() -> str:
    """An RFC 3339 timestamp with its offset."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def amount(vnd: int) -> str:
    """A VND amount as the spec's decimal string (`^\\d{1,13}\\.\\d{1,2}$`)."""
    return f"{vnd}.00"


def amount_vnd(value: str) -> int:
    """The spec's decimal string back to whole VND."""
    return round(float(value))


# --- signatures ------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_detached(body: bytes, *, key: Any, kid: str) -> str:
    """A detached compact JWS (`<header>..<signature>`, EdDSA) over `body`."""
    token = jwt.api_jws.encode(body, key, algorithm=SIGNATURE_ALGORITHM,
                               headers={"kid": kid, "typ": None})
    head, _, sig = token.split(".")
    return f"{head}..{sig}"


def verify_detached(body: bytes, signature: str | None, *, keys: Mapping[str, Any]) -> str | None:
    """None when `signature` is a detached EdDSA JWS over `body` by one of `keys` (kid → public
    key); else why not."""
    if not signature:
        return "no Signature header"
    parts = signature.strip().split(".")
    if len(parts) != 3 or parts[1]:
        return "Signature is not a detached compact JWS (<header>..<signature>)"
    try:
        header = jwt.get_unverified_header(f"{parts[0]}.{_b64(b'{}')}.{parts[2]}")
    except jwt.PyJWTError as exc:
        return f"Signature header unreadable: {exc}"
    kid, alg = header.get("kid"), header.get("alg")
    if alg != SIGNATURE_ALGORITHM:
        return f"Signature alg {alg!r}; {SIGNATURE_ALGORITHM} is required"
    if not isinstance(kid, str) or kid not in keys:
        return f"Signature by unknown key {kid!r} (registered: {', '.join(sorted(keys)) or 'none'})"
    try:
        jwt.api_jws.decode_complete(f"{parts[0]}.{_b64(body)}.{parts[2]}", keys[kid],
                                    algorithms=[SIGNATURE_ALGORITHM])
    except jwt.PyJWTError as exc:
        return f"Signature does not verify for key {kid}: {exc}"
    return None


def load_public_keys(path: Path) -> dict[str, Any]:
    """kid → Ed25519 public key of a JWKS file (private keys refused)."""
    jwks = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" in jwk or not jwk.get("kid"):
            raise ValueError(f"{path}: every key must be a public Ed25519 JWK with a kid")
        out[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=SIGNATURE_ALGORITHM).key
    if not out:
        raise ValueError(f"{path}: no key")
    return out


@dataclass(frozen=True)
class Signer:
    """Who signs a message: a private Ed25519 key and its registered kid."""

    kid: str
    key: Any

    def body(self, *, header: dict[str, Any], message: dict[str, Any]) -> tuple[bytes, str]:
        """The request body (with the spec's `signature` of {header}+{message}) and the HTTP
        `Signature` header over the whole body bytes."""
        inner = sign_detached(compact({"header": header, "message": message}), key=self.key,
                              kid=self.kid)
        body = compact({"signature": inner, "header": header, "message": message})
        return body, sign_detached(body, key=self.key, kid=self.kid)


# --- envelopes -------------------------------------------------------------------------------

def request_header(*, action: str, sender_id: str, sender_uri: str | None, receiver_id: str,
                   total_count: int, message_id: str | None = None) -> dict[str, Any]:
    """A request header (MsgHeader_V1.0.0)."""
    header: dict[str, Any] = {"version": VERSION, "message_id": message_id or str(uuid.uuid4()),
                              "message_ts": now_ts(), "action": action, "sender_id": sender_id}
    if sender_uri:
        header["sender_uri"] = sender_uri
    header.update({"receiver_id": receiver_id, "total_count": total_count,
                   "is_msg_encrypted": False})
    return header


def callback_header(*, action: str, status: str, sender_id: str, receiver_id: str,
                    total_count: int, completed_count: int) -> dict[str, Any]:
    """A callback header (MsgCallbackHeader_V1.0.0)."""
    return {"version": VERSION, "message_id": str(uuid.uuid4()), "message_ts": now_ts(),
            "action": action, "status": status, "total_count": total_count,
            "completed_count": completed_count, "sender_id": sender_id,
            "receiver_id": receiver_id, "is_msg_encrypted": False}


def ack(status: str, *, correlation_id: str, code: str | None = None,
        message: str | None = None) -> dict[str, Any]:
    """The async acknowledgement (common/response/Response.yaml): ACK, NACK or ERR."""
    out: dict[str, Any] = {"ack_status": status, "timestamp": now_ts(),
                           "correlation_id": correlation_id}
    if code:
        out["error"] = {"code": code, "message": (message or code)[:999]}
    return {"message": out}


# --- the spec's schemas ----------------------------------------------------------------------

def _patched(rel: str, doc: Any) -> Any:
    for file, path, wrong, right in PATCHES:
        if file == rel:
            node = doc
            for step in path:
                node = node[step]
            node[:] = [right if item == wrong else item for item in node]
    return doc


@cache
def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resources = []
    for path in sorted(SCHEMA_DIR.rglob("*.yaml")):
        rel = path.relative_to(SCHEMA_DIR).as_posix()
        doc = _patched(rel, yaml.safe_load(path.read_text(encoding="utf-8")))
        resources.append((SCHEMA_BASE + rel,
                          Resource.from_contents(doc, default_specification=DRAFT7)))
    return Registry().with_resources(resources)


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def _validator(ref: str) -> Any:
    from jsonschema import Draft7Validator

    return Draft7Validator({"$ref": ref}, registry=_registry())


def request_schema_ref(path: str) -> str:
    """The `$ref` of one operation's JSON request body."""
    assert path in OPERATIONS, path
    return (f"{SCHEMA_BASE}{API_FILE}#/"
            + _pointer("paths", path, "post", "requestBody", "content", "application/json",
                       "schema"))


ACK_SCHEMA_REF = (f"{SCHEMA_BASE}common/response/Response.yaml#/"
                  + _pointer("content", "application/json", "schema"))


def schema_errors(doc: Any, ref: str) -> list[str]:
    """Every violation of the schema at `ref` (empty: valid)."""
    from jsonschema.exceptions import best_match

    out = []
    for error in sorted(_validator(ref).iter_errors(doc), key=lambda e: list(e.path)):
        # anyOf/oneOf (message: request or encrypted): say what the likeliest branch lacks
        e = best_match(error.context) if error.context else error
        e = e or error
        out.append(f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}")
    return out


# --- status mapping --------------------------------------------------------------------------

FINAL = {"settled", "rejected", "failed"}


def lifecycle(g2p_status: str, reason_code: str | None, *, published: set[str]) -> list[str]:
    """Our statuses to publish for one G2P Connect item status, given those already published
    for the instruction: monotonic (accepted before settled; rjct after acceptance is `failed`),
    nothing after a final status, nothing for a duplicate-reference rejection."""
    if published & FINAL:
        return []
    out: list[str] = []
    if g2p_status == "pdng":
        out = ["accepted"]
    elif g2p_status == "succ":
        out = ["accepted", "settled"]
    elif g2p_status == "rjct":
        if reason_code == DUPLICATE_REFERENCE:
            return []
        out = ["failed"] if "accepted" in published else ["rejected"]
    return [s for s in out if s not in published]
