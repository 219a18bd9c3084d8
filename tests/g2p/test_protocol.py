"""The G2P Connect channel without I/O: status mapping, detached signatures, the gateway's
idempotency and batching, and the contract — our requests and the sandbox bank's callbacks
validate against the spec's vendored JSON Schemas."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import jwt
import pytest
import yaml
from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.bank_partner.config import SANDBOX_KEY_FILE, PartnerConfig
from services.bank_partner.g2p import Item, SandboxBank
from services.bank_partner.signing import SigningKey
from services.disbursement import events
from services.g2p_gateway import protocol
from services.g2p_gateway.config import SANDBOX_PUBLIC_KEYS_FILE, Settings
from services.g2p_gateway.gateway import Gateway
from shared.envelope import Envelope
from shared.settings import PROJECT_ROOT

PARTNER = "g2pbank"


def instruction(n: int, **kw: object) -> events.InstructionIssuedV1:
    """An instruction as disbursement issues it."""
    return events.InstructionIssuedV1(**{
        "instruction_id": f"00000000-0000-0000-0000-{n:012d}", "application_id": "a",
        "programme_code": "LIVELIHOOD-LIVESTOCK", "beneficiary_reference": f"BR-{n:08X}",
        "payee_name": "Lò Thị Mai", "commune_code": "08001",
        "transaction_point": "Điểm giao dịch xã 08001", "amount_vnd": 50_000_000,
        "purpose": "Giống lợn", "scheduled_date": date(2026, 12, 3), "partner": PARTNER, **kw})


def record(inst: events.InstructionIssuedV1, offset: int = 0) -> ConsumerRecord:
    """The Kafka record disbursement writes for it."""
    env = Envelope(type=events.INSTRUCTION_ISSUED, source=events.SOURCE,
                   subject=inst.instruction_id, data=inst.model_dump(mode="json"))
    return ConsumerRecord(topic=events.instructions_topic(PARTNER), partition=0, offset=offset,
                          timestamp=0, timestamp_type=0, key=env.key, value=env.value(),
                          checksum=None, serialized_key_size=0, serialized_value_size=0,
                          headers=env.headers())


def gateway(tmp_path: Path | None = None, **kw: object) -> Gateway:
    state = {"state_file": tmp_path / "state.json"} if tmp_path else {}
    return Gateway(Settings(partner=PARTNER, **state, **kw))  # type: ignore[arg-type]


def bank_signer() -> protocol.Signer:
    key = SigningKey.load(SANDBOX_KEY_FILE)
    return protocol.Signer(kid=key.kid, key=key.key)


# --- mapping ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("g2p", "reason", "published", "expected"), [
    ("rcvd", None, set(), []),
    ("pdng", None, set(), ["accepted"]),
    ("pdng", None, {"accepted"}, []),
    ("succ", None, set(), ["accepted", "settled"]),  # never settled straight after sent
    ("succ", None, {"accepted"}, ["settled"]),
    ("succ", None, {"accepted", "settled"}, []),  # a duplicate callback: nothing
    ("rjct", "rjct.payee_fa.invalid", set(), ["rejected"]),
    ("rjct", "rjct.payee_fa.invalid", {"accepted"}, ["failed"]),
    ("rjct", "rjct.reference_id.duplicate", set(), []),  # about a repeat, not this payment
    ("rjct", None, {"accepted", "settled"}, []),  # nothing after a final status
    ("succ", None, {"rejected"}, []),
])
def test_g2p_statuses_map_monotonically_onto_the_instruction_lifecycle(g2p, reason, published,
                                                                       expected):
    assert protocol.lifecycle(g2p, reason, published=published) == expected


# --- signatures -------------------------------------------------------------------------------

def test_a_detached_signature_verifies_only_for_that_body_and_a_registered_key():
    keys = protocol.load_public_keys(SANDBOX_PUBLIC_KEYS_FILE)
    signer = bank_signer()
    body, sig = signer.body(header={"a": 1}, message={"b": "Lò"})
    assert sig.split(".")[1] == ""  # detached: no payload in the token
    assert protocol.verify_detached(body, sig, keys=keys) is None
    assert "does not verify" in protocol.verify_detached(body + b" ", sig, keys=keys)
    assert protocol.verify_detached(body, None, keys=keys) == "no Signature header"
    other = protocol.sign_detached(body, key=Ed25519PrivateKey.generate(), kid=signer.kid)
    assert "does not verify" in protocol.verify_detached(body, other, keys=keys)
    unknown = protocol.sign_detached(body, key=Ed25519PrivateKey.generate(), kid="bank-2099")
    assert "unknown key 'bank-2099'" in protocol.verify_detached(body, unknown, keys=keys)
    hs = jwt.api_jws.encode(body, "secret" * 8, algorithm="HS256", headers={"kid": signer.kid})
    head, _, tail = hs.split(".")
    assert "EdDSA is required" in protocol.verify_detached(body, f"{head}..{tail}", keys=keys)
    # the body's own `signature` covers {header}+{message} (the spec's MsgSignature)
    doc = json.loads(body)
    inner = protocol.compact({"header": doc["header"], "message": doc["message"]})
    assert protocol.verify_detached(inner, doc["signature"], keys=keys) is None


# --- the gateway without Kafka ----------------------------------------------------------------

def test_an_instruction_seen_again_is_not_sent_twice_and_batches_respect_the_size(tmp_path):
    gw = gateway(tmp_path, batch_size=2)
    for n in range(5):
        gw.record(record(instruction(n), offset=n))
    gw.record(record(instruction(0), offset=9))  # redelivered
    assert len(gw.state.instructions) == 5 and gw.counts["redelivery_ignored"] == 1
    asyncio.run(gw.flush(force=True))
    sizes = sorted(len(t.references) for t in gw.state.transactions.values())
    assert sizes == [1, 2, 2]
    # restart-safe: a new gateway on the same state neither queues nor sends anything again
    again = gateway(tmp_path, batch_size=2)
    again.record(record(instruction(3), offset=3))
    assert again.state.queued() == [] and len(again.state.transactions) == 3


def test_a_restructure_instruction_is_never_sent_as_a_disbursement_but_rejected(tmp_path):
    gw = gateway(tmp_path)
    restructure = instruction(7, amount_vnd=0, kind="restructure", purpose="restructure",
                              restructure={"loan_instruction_id": "l-1", "option": "extension",
                                           "months": 6, "new_term_months": 42,
                                           "new_maturity_date": "2029-12-03"})
    gw.record(record(restructure))
    asyncio.run(gw.flush(force=True))
    assert gw.state.instructions == {} and gw.state.transactions == {}  # nothing to the bank
    [refusal] = gw.refused
    assert refusal.data == {"instruction_id": restructure.instruction_id, "status": "rejected",
                            "reason_code": "restructure_not_supported",
                            "occurred_at": refusal.data["occurred_at"]}
    assert refusal.source == f"/partners/{PARTNER}" and gw.counts["restructure_refused"] == 1


def test_our_disburse_request_validates_against_the_spec_and_carries_no_identity(tmp_path):
    gw = gateway()
    gw.record(record(instruction(1)))
    gw.record(record(instruction(2, purpose="x" * 300)))
    asyncio.run(gw.flush(force=True))
    (txn_id, txn), = gw.state.transactions.items()
    body, sig = gw.disburse_request(txn_id, txn)
    doc = json.loads(body)
    assert protocol.schema_errors(doc, protocol.request_schema_ref("/disburse")) == []
    head, message = doc["header"], doc["message"]
    assert head["version"] == "1.0.0" and head["action"] == "disburse"
    assert head["total_count"] == 2 and head["receiver_id"] == PARTNER
    assert head["sender_uri"] == "http://127.0.0.1:8006"
    first = message["disbursements"][0]
    assert first["reference_id"] == instruction(1).instruction_id
    assert first["amount"] == "50000000.00" and first["currency_code"] == "VND"
    assert first["payee_fa"] == f"token:BR-00000001@{PARTNER}"
    assert first["scheduled_timestamp"] == "2026-12-03T00:00:00+07:00"
    assert len(message["disbursements"][1]["purpose"]) == 99
    assert protocol.verify_detached(body, sig, keys=gw.partner_keys) is None


def test_the_sandbox_banks_callbacks_validate_against_the_spec():
    bank = SandboxBank(PartnerConfig(partner=PARTNER, sandbox=True),
                       client_keys=SANDBOX_PUBLIC_KEYS_FILE)
    items = [Item(reference_id="r1", transaction_id="t1", amount="50000000.00",
                  currency_code="VND", outcome="succ", silent=False, status="succ"),
             Item(reference_id="r2", transaction_id="t1", amount="1.00", currency_code="VND",
                  outcome="rjct", silent=False, status="rjct", reason="rjct.payee_fa.invalid")]
    for path in ("/on-disburse", "/disburse/txn/on-status"):
        body, _ = bank.callback_body(path, "t1", items, receiver="everydoor")
        assert protocol.schema_errors(json.loads(body), protocol.request_schema_ref(path)) == []
    ack = protocol.ack("ERR", correlation_id="c", code=protocol.ERR_BAD_REQUEST, message="bad")
    assert protocol.schema_errors(ack, protocol.ACK_SCHEMA_REF) == []


def test_our_status_poll_validates_against_the_spec():
    header = protocol.request_header(action="on-disburse", sender_id="everydoor",
                                     sender_uri="http://127.0.0.1:8006", receiver_id=PARTNER,
                                     total_count=1)
    message = {"transaction_id": "t1", "txnstatus_request": {
        "reference_id": "q1", "txn_type": "disburse", "attribute_type": "reference_id_list",
        "attribute_value": ["r1"]}}
    doc = {"header": header, "message": message}
    assert protocol.schema_errors(doc, protocol.request_schema_ref("/disburse/txn/status")) == []


def test_the_vendored_spec_is_upstreams_with_its_known_typo_patched_at_load():
    raw = yaml.safe_load((protocol.SCHEMA_DIR / "disburse/schema/DisburseRequest.yaml")
                         .read_text(encoding="utf-8"))
    assert raw["required"] == ["transaction_id", "disburemsents"]  # upstream, unchanged
    body = {"header": protocol.request_header(action="disburse", sender_id="e", sender_uri=None,
                                              receiver_id="b", total_count=0),
            "message": {"transaction_id": "t"}}
    errors = protocol.schema_errors(body, protocol.request_schema_ref("/disburse"))
    assert any("'disbursements' is a required property" in e for e in errors)
    provenance = (protocol.SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    assert "f8dd3d5e3c6637c1eb2230cf9403ba324f6d2ee0" in provenance


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, list]] = []

    async def send_and_wait(self, topic: str, *, value: bytes, key: bytes | None,
                            headers: list) -> None:
        self.sent.append((topic, value, headers))


def test_callbacks_map_to_signed_partner_statuses_with_stable_ids_and_forgeries_apply_nothing():
    gw = gateway()
    gw.producer = _Producer()  # type: ignore[assignment]
    inst = instruction(7)
    gw.record(record(inst))
    asyncio.run(gw.flush(force=True))
    head = protocol.callback_header(action="on-disburse", status="succ", sender_id=PARTNER,
                                    receiver_id="everydoor", total_count=1, completed_count=1)
    message = {"transaction_id": "t", "disbursements_status": [{
        "reference_id": inst.instruction_id, "timestamp": "2026-12-03T09:00:00+07:00",
        "status": "succ", "amount": "50000000.00"}]}
    body, sig = bank_signer().body(header=head, message=message)
    forged = protocol.Signer(kid="sandbox-2026-01", key=Ed25519PrivateKey.generate())
    _, bad = forged.body(header=head, message=message)
    for signature in (None, bad):
        answer = asyncio.run(gw.callback("/on-disburse", body, signature))
        assert answer.status == 401 and answer.problem
    assert gw.producer.sent == []  # type: ignore[attr-defined]
    answer = asyncio.run(gw.callback("/on-disburse", body, sig))
    assert answer.status == 200 and answer.body["message"]["ack_status"] == "ACK"
    sent = gw.producer.sent  # type: ignore[attr-defined]
    statuses = [json.loads(v)["status"] for _, v, _ in sent]
    assert statuses == ["accepted", "settled"]
    headers = [dict(h) for _, _, h in sent]
    assert {h["ce_source"] for h in headers} == {f"/partners/{PARTNER}".encode()}
    assert all(h[events.SIGNATURE_HEADER] for h in headers)
    assert json.loads(sent[1][1])["amount_vnd"] == 50_000_000
    # the same callback again: ACK, nothing more published
    assert asyncio.run(gw.callback("/on-disburse", body, sig)).status == 200
    assert len(sent) == 2
    # and a gateway that lost its state publishes the same ids (dropped by the inbox)
    fresh = gateway()
    fresh.producer = _Producer()  # type: ignore[assignment]
    fresh.record(record(inst))
    asyncio.run(fresh.flush(force=True))
    asyncio.run(fresh.callback("/on-disburse", body, sig))
    assert ([dict(h)["ce_id"] for _, _, h in fresh.producer.sent]  # type: ignore[attr-defined]
            == [h["ce_id"] for h in headers])


def test_the_sandbox_bank_refuses_to_start_outside_sandbox_mode():
    env = {**os.environ, "BANK_PARTNER_SANDBOX": "false", "BANK_PARTNER_KIND": "g2p-connect"}
    done = subprocess.run([sys.executable, "-m", "services.bank_partner", "--g2p"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode != 0 and "BANK_PARTNER_SANDBOX=true" in done.stderr


def test_outside_dev_mode_the_gateway_refuses_the_public_sandbox_keys(monkeypatch):
    monkeypatch.setenv("EVERYDOOR_DEV_MODE", "false")
    with pytest.raises(ValueError, match="sandbox keys"):
        Settings(partner=PARTNER)
    monkeypatch.setenv("G2P_GATEWAY_ALLOW_SANDBOX_KEYS", "true")
    assert Settings(partner=PARTNER).allow_sandbox_keys
