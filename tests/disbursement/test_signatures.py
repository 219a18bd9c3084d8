"""Signed statuses (no I/O): the partner's signature verifies against its registered keys only
and only for the record it was made for; outside dev mode the sandbox key is never trusted."""

from __future__ import annotations

import json

import jwt
import pytest
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.bank_partner.signing import SigningKey, sandbox_key, sign_status
from services.disbursement import events
from services.disbursement.config import SANDBOX_PARTNER_KEYS_FILE, Settings
from services.disbursement.signatures import KeySetError, PartnerKeys, parse_key_set
from shared.envelope import Envelope
from shared.settings import PlatformSettings
from tests.disbursement.conftest import new_signing_key, partner_keys_file

PRODUCTION = PlatformSettings(everydoor_dev_mode=False,
                              everydoor_jwks_url="https://idp.example/realms/everydoor/certs")
REAL_KEY = "b" * 32  # a beneficiary reference key that passes the production check


def status(partner: str = "vbsp", **data: object) -> Envelope:
    """A `settled` status of the partner."""
    return Envelope(type=events.BANK_STATUS, source=f"/partners/{partner}", subject="h-1",
                    data={"instruction_id": "i-1", "status": "settled", "amount_vnd": 8_000_000,
                          "occurred_at": "2026-07-01T00:00:00Z", **data})


def record(value: bytes, headers: list[tuple[str, bytes]], partner: str = "vbsp") -> ConsumerRecord:
    """The record as disbursement's consumer reads it."""
    return ConsumerRecord(topic=events.status_topic(partner), partition=0, offset=0, timestamp=0,
                          timestamp_type=0, key=b"h-1", value=value, checksum=None,
                          serialized_key_size=-1, serialized_value_size=-1, headers=headers)


def verify(keys: PartnerKeys, value: bytes, headers: list[tuple[str, bytes]],
           partner: str = "vbsp") -> str | None:
    """What the consumer decides about one record."""
    rec = record(value, headers, partner)
    return keys.verify(rec, Envelope.from_kafka(headers, value))


@pytest.fixture(scope="module")
def keys() -> PartnerKeys:
    """vbsp trusts the sandbox key; another partner trusts its own."""
    return PartnerKeys.load({"vbsp": SANDBOX_PARTNER_KEYS_FILE,
                             "other": partner_keys_file(new_signing_key("other-2026-01"),
                                                        sandbox=False)},
                            allow_sandbox=True)


def with_header(headers: list[tuple[str, bytes]], token: str) -> list[tuple[str, bytes]]:
    """`headers` with their signature replaced by `token`."""
    return [(k, v) for k, v in headers if k != events.SIGNATURE_HEADER] + [
        (events.SIGNATURE_HEADER, token.encode())]


def test_a_status_signed_by_the_partners_key_verifies(keys: PartnerKeys):
    value, headers = sign_status(status(), key=sandbox_key())
    assert verify(keys, value, headers) is None
    token = dict(headers)[events.SIGNATURE_HEADER].decode()
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "sandbox-2026-01"}


def test_an_unsigned_status_is_refused(keys: PartnerKeys):
    env = status()
    assert verify(keys, env.value(), env.headers()) == \
        "unsigned bank status (no ev_signature header)"


def test_a_signature_over_another_body_or_identity_is_refused(keys: PartnerKeys):
    value, headers = sign_status(status(), key=sandbox_key())
    more = value.replace(b"8000000", b"9000000")
    assert verify(keys, more, headers) == (
        "signature of key sandbox-2026-01 was made for another record (value_sha256 differ)")
    # a genuine signature copied onto a record claiming another id (the inbox key)
    other_id = [(k, b"another-id" if k == "ce_id" else v) for k, v in headers]
    assert "(ce_id differ)" in (verify(keys, value, other_id) or "")
    # ... or another source
    other_source = [(k, b"/partners/x" if k == "ce_source" else v) for k, v in headers]
    assert "(ce_source differ)" in (verify(keys, value, other_source) or "")


def test_a_wrong_key_an_unknown_key_or_another_partners_key_is_refused(keys: PartnerKeys):
    impostor = new_signing_key("sandbox-2026-01")
    value, headers = sign_status(status(), key=impostor)
    assert (verify(keys, value, headers) or "").startswith(
        "signature does not verify for key sandbox-2026-01")
    value, headers = sign_status(status(), key=new_signing_key("vbsp-2099-01"))
    assert verify(keys, value, headers) == (
        "bank status signed with unknown key 'vbsp-2099-01' (partner vbsp has sandbox-2026-01)")
    # vbsp's key does not speak for another partner
    value, headers = sign_status(status("other"), key=sandbox_key())
    assert (verify(keys, value, headers, partner="other") or "").startswith(
        "bank status signed with unknown key 'sandbox-2026-01' (partner other has other-2026-01)")


def test_other_algorithms_and_garbage_are_refused(keys: PartnerKeys):
    env = status()
    value, headers = sign_status(env, key=sandbox_key())
    claims = json.loads(jwt.api_jws.decode_complete(
        dict(headers)[events.SIGNATURE_HEADER], options={"verify_signature": False})["payload"])
    for alg, key in (("HS256", "x" * 32), ("none", None)):
        token = jwt.api_jws.encode(json.dumps(claims).encode(), key, algorithm=alg,
                                   headers={"kid": "sandbox-2026-01"})
        assert verify(keys, value, with_header(headers, token)) == (
            f"bank status signed with alg '{alg}'; EdDSA is required")
    assert (verify(keys, value, with_header(headers, "not-a-jws")) or "").startswith(
        "bank status signature is not a compact JWS")


def test_a_key_set_holds_ed25519_public_keys_with_ids_only():
    public = json.loads(SANDBOX_PARTNER_KEYS_FILE.read_text())["keys"][0]
    assert set(parse_key_set({"keys": [public]}, where="t")) == {"sandbox-2026-01"}
    with pytest.raises(KeySetError, match="private key"):
        parse_key_set({"keys": [{**public, "d": "x"}]}, where="t")
    with pytest.raises(KeySetError, match="needs a `kid`"):
        parse_key_set({"keys": [{k: v for k, v in public.items() if k != "kid"}]}, where="t")
    with pytest.raises(KeySetError, match="not an Ed25519 key"):
        parse_key_set({"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}, where="t")
    with pytest.raises(KeySetError, match="no key"):
        parse_key_set({"keys": []}, where="t")


def test_outside_dev_mode_each_partner_needs_its_own_keys_and_never_the_sandbox_key():
    with pytest.raises(ValidationError, match="DISBURSEMENT_PARTNER_KEYS has no key set for "
                                              "partner.s. vbsp"):
        Settings(platform=PRODUCTION, beneficiary_reference_key=REAL_KEY)
    assert Settings().partner_key_files() == {"vbsp": SANDBOX_PARTNER_KEYS_FILE}  # dev mode
    key = new_signing_key("vbsp-2026-01")
    own, with_sandbox = partner_keys_file(key, sandbox=False), partner_keys_file(key)
    settings = Settings(platform=PRODUCTION, beneficiary_reference_key=REAL_KEY,
                        partner_keys={"vbsp": own})
    assert not settings.sandbox_partner_key_trusted
    keys = PartnerKeys.load(settings.partner_key_files(), allow_sandbox=False)
    assert set(keys.keys["vbsp"]) == {"vbsp-2026-01"}
    # the sandbox key registered by mistake: refused at start-up
    with pytest.raises(KeySetError, match="key sandbox-2026-01 of partner vbsp is the public "
                                          "sandbox key"):
        PartnerKeys.load({"vbsp": with_sandbox}, allow_sandbox=False)
    # said on purpose (the compose demo with the reference partner): the sandbox key is trusted
    demo = Settings(platform=PRODUCTION, beneficiary_reference_key=REAL_KEY,
                    allow_sandbox_partner_key=True)
    assert demo.sandbox_partner_key_trusted
    assert PartnerKeys.load(demo.partner_key_files(), allow_sandbox=True).keys["vbsp"]


def test_the_shipped_sandbox_key_pair_matches():
    private = sandbox_key()
    assert isinstance(private, SigningKey)
    public = parse_key_set(json.loads(SANDBOX_PARTNER_KEYS_FILE.read_text()), where="sandbox")
    assert public[private.kid].public_bytes_raw() == private.key.public_key().public_bytes_raw()
