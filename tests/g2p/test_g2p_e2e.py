"""Disbursement with one partner of each kind, as separate processes on the real broker and
PostgreSQL: the Kafka reference partner, and a G2P Connect sandbox bank behind the gateway."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.bank_partner.config import SANDBOX_KEY_FILE
from services.bank_partner.signing import SigningKey
from services.cli import bank_partner_process
from services.disbursement import events
from services.disbursement.config import PROGRAMMES_FILE
from services.g2p_gateway import protocol
from shared.envelope import Envelope
from shared.infra import free_port
from shared.processes import ServiceProcess
from tests.disbursement.conftest import Stack, new_commune
from tests.disbursement.test_restructuring import exposed, settled_loan, through_the_group
from tests.support.apps import auth
from tests.support.kafka import collect, header, produce_event
from tests.support.wait import eventually

G2P_PROGRAMME, KAFKA_PROGRAMME = "LIVELIHOOD-LIVESTOCK", "LIVELIHOOD-SEED"
G2P_LOAN = "VBSP-ESCAPED-LOAN"  # a loan on the G2P partner: restructuring it is refused


def programmes(kafka_partner: str, g2p_partner: str) -> Path:
    """The shipped programmes on the Kafka partner, livestock support on the G2P partner."""
    doc = yaml.safe_load(PROGRAMMES_FILE.read_text(encoding="utf-8"))
    doc["default_partner"] = kafka_partner
    for p in doc["programmes"]:
        if p["code"] in (G2P_PROGRAMME, G2P_LOAN):
            p["partner"] = g2p_partner
    path = Path(tempfile.mkdtemp(prefix="g2p-prog-")) / "programmes.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def g2p(servers) -> Iterator[SimpleNamespace]:
    """disbursement, the Kafka partner, the sandbox G2P bank and the gateway, by PID."""
    home = Path(tempfile.mkdtemp(prefix="everydoor-g2p-"))
    suffix = uuid.uuid4().hex[:6]
    kp, gp = f"vbsp{suffix}", f"g2pbank{suffix}"
    ports = {name: free_port() for name in ("disbursement", "bank", "gateway", "kafka_partner")}
    fast = {"CONSUMER_SESSION_TIMEOUT_MS": "2000", "CONSUMER_HEARTBEAT_INTERVAL_MS": "300",
            "RELAY_POLL_INTERVAL_S": "0.1", "DISPATCH_INTERVAL_S": "0.5"}
    disbursement = ServiceProcess(
        name="disbursement", module="services.disbursement", port=ports["disbursement"],
        env={"DISBURSEMENT_PORT": str(ports["disbursement"]),
             "DISBURSEMENT_PARTNERS": json.dumps([kp, gp]),
             "DISBURSEMENT_PROGRAMMES_FILE": str(programmes(kp, gp)),
             "DISBURSEMENT_CONSUMER_GROUP_PREFIX": f"g2p{suffix}-",
             **{f"DISBURSEMENT_{k}": v for k, v in fast.items()}},
        log_path=home / "logs" / "disbursement.log")
    kafka_partner = bank_partner_process(
        env={"BANK_PARTNER_NAME": kp, "BANK_PARTNER_SESSION_TIMEOUT_MS": "2000",
             "BANK_PARTNER_HEARTBEAT_INTERVAL_MS": "300", "BANK_PARTNER_SETTLE_DELAY_S": "0.2"},
        home=home, port=ports["kafka_partner"])
    bank = ServiceProcess(
        name="g2p_bank", module="services.bank_partner", port=ports["bank"],
        env={"BANK_PARTNER_KIND": "g2p-connect", "BANK_PARTNER_NAME": gp,
             "BANK_PARTNER_SANDBOX": "true", "BANK_PARTNER_G2P_PORT": str(ports["bank"]),
             "BANK_PARTNER_ACCEPT_DELAY_S": "0.1", "BANK_PARTNER_SETTLE_DELAY_S": "0.3"},
        log_path=home / "logs" / "g2p_bank.log")
    gateway = ServiceProcess(
        name="g2p_gateway", module="services.g2p_gateway", port=ports["gateway"],
        env={"G2P_GATEWAY_PARTNER": gp, "G2P_GATEWAY_PORT": str(ports["gateway"]),
             "G2P_GATEWAY_PARTNER_URL": f"http://127.0.0.1:{ports['bank']}",
             "G2P_GATEWAY_STATE_FILE": str(home / "g2p_gateway.json"),
             "G2P_GATEWAY_BATCH_SIZE": "3", "G2P_GATEWAY_BATCH_LINGER_S": "0.5",
             "G2P_GATEWAY_CALLBACK_TIMEOUT_S": "3", "G2P_GATEWAY_POLL_INTERVAL_S": "0.5"},
        log_path=home / "logs" / "g2p_gateway.log")
    procs = [disbursement, kafka_partner, bank, gateway]
    try:
        disbursement.start().wait_ready(timeout=120)  # it creates the partners' topics
        for p in procs[1:]:
            p.start()
        for p in procs[1:]:
            p.wait_ready(timeout=60)
        yield SimpleNamespace(disbursement=disbursement, gateway=gateway, bank=bank,
                              kafka_partner=kp, g2p_partner=gp, home=home,
                              bootstrap=servers.bootstrap_servers)
    finally:
        for p in procs:
            p.stop()


@pytest.fixture
async def stack(g2p) -> Stack:
    """The disbursement process behind the helpers of tests/disbursement."""
    async with httpx.AsyncClient(base_url=g2p.disbursement.url, timeout=20) as client:
        yield Stack(service=SimpleNamespace(client=client), partner=g2p.kafka_partner,
                    bootstrap=g2p.bootstrap)


async def support(stack: Stack, commune: str, programme: str, purpose: str,
                  amount: int = 4_000_000) -> str:
    """An approved livelihood application (maker ≠ checker); its id."""
    household = await stack.household(commune)
    officer = auth("commune_officer", commune)
    r = await stack.client.post("/v1/applications", headers=officer, json={
        "household_id": household, "programme_code": programme, "amount_vnd": amount,
        "purpose": purpose})
    assert r.status_code == 201, r.text
    application_id = r.json()["application_id"]
    r = await stack.client.post(f"/v1/applications/{application_id}/approve",
                                headers=auth("commune_officer", commune, sub="officer-checker"))
    assert r.status_code == 201, r.text
    return application_id


def bank_signer() -> protocol.Signer:
    """The sandbox bank's key (what a genuine callback is signed with)."""
    key = SigningKey.load(SANDBOX_KEY_FILE)
    return protocol.Signer(kid=key.kid, key=key.key)


def callback(g2p, instruction_id: str, status: str, *, sender: str | None = None,
             **header_changes: object) -> tuple[dict, dict]:
    """An on-disburse header and message about one instruction."""
    head = protocol.callback_header(action="on-disburse", status="succ",
                                    sender_id=sender or g2p.g2p_partner, receiver_id="everydoor",
                                    total_count=1, completed_count=1)
    head.update(header_changes)
    message = {"transaction_id": "t-forged", "disbursements_status": [
        {"reference_id": instruction_id, "timestamp": protocol.now_ts(), "status": status,
         "amount": "1.00", "currency_code": "VND"}]}
    return head, message


async def post(g2p, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Signature"] = signature
    async with httpx.AsyncClient(base_url=g2p.gateway.url) as client:
        return await client.post("/on-disburse", content=body, headers=headers)


async def test_one_partner_of_each_kind_same_lifecycle_one_settlement_each(g2p, stack):
    commune = new_commune()
    by_kafka = await support(stack, commune, KAFKA_PROGRAMME, "Hạt giống ngô")
    by_g2p = [await support(stack, commune, G2P_PROGRAMME, f"Giống lợn {n}", 12_000_000)
              for n in range(4)]  # batch size 3: two transactions
    apps = [await stack.instruction_status(a, commune, "settled")
            for a in [by_kafka, *by_g2p]]
    for app in apps:
        assert [s["status"] for s in app["instruction"]["history"]] == [
            "approved", "sent", "accepted", "settled"]
    assert apps[0]["instruction"]["history"][-1]["bank_reference"].startswith(g2p.kafka_partner.upper())
    officer = auth("commune_officer", commune)
    r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}", headers=officer)
    by_status = {s["status"]: s for s in r.json()["by_status"]}
    assert by_status["settled"]["count"] == 5
    assert by_status["settled"]["settled_amount_vnd"] == 4_000_000 + 4 * 12_000_000
    assert r.json()["mismatches"] == []

    # the G2P partner's statuses: source /partners/<partner>, signed, keyed by the instruction
    iid = apps[1]["instruction"]["instruction_id"]
    records = await collect(g2p.bootstrap, f"disbursement.status.{g2p.g2p_partner}",
                            until=lambda rs: sum(r.key == iid.encode() for r in rs) >= 2)
    mine = [r for r in records if r.key == iid.encode()]
    assert {header(r, "ce_source") for r in mine} == {f"/partners/{g2p.g2p_partner}"}
    assert all(header(r, "ev_signature") for r in mine)
    # the instruction went out with the keyed reference as payee address, never a national ID
    async with httpx.AsyncClient(base_url=g2p.gateway.url) as client:
        health = (await client.get("/health")).json()
    assert health["transactions"]["acked"] >= 2 and health["transactions"]["refused"] == 0

    # a duplicate callback (the bank calls again) is acknowledged and changes nothing
    head, message = callback(g2p, iid, "succ")
    body, sig = bank_signer().body(header=head, message=message)
    for _ in range(2):
        r = await post(g2p, body, sig)
        assert r.status_code == 200 and r.json()["message"]["ack_status"] == "ACK", r.text
    again = await stack.application(by_g2p[0], commune)
    assert again["instruction"]["history"] == apps[1]["instruction"]["history"]
    r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}", headers=officer)
    assert r.json()["mismatches"] == []


async def test_rejected_failed_and_silent_instructions_through_g2p(g2p, stack):
    commune = new_commune()
    ids = {kind: await support(stack, commune, G2P_PROGRAMME, f"Giống lợn #{kind}", 12_000_000)
           for kind in ("reject", "fail", "silent")}
    rejected = await stack.instruction_status(ids["reject"], commune, "rejected")
    assert rejected["instruction"]["history"][-1]["reason"] == "rjct.payee_fa.invalid"
    failed = await stack.instruction_status(ids["fail"], commune, "failed")
    assert [s["status"] for s in failed["instruction"]["history"]] == [
        "approved", "sent", "accepted", "failed"]
    # no callback at all for this one: the gateway polls /disburse/txn/status after its timeout

    async def settled() -> dict | None:
        app = await stack.application(ids["silent"], commune)
        return app if app["instruction"]["status"] == "settled" else None

    silent = await eventually(settled, timeout=30, message="silent instruction settled by a poll")
    assert [s["status"] for s in silent["instruction"]["history"]] == [
        "approved", "sent", "accepted", "settled"]
    async with httpx.AsyncClient(base_url=g2p.gateway.url) as client:
        assert (await client.get("/health")).json()["counts"].get("polls", 0) >= 1
    budgets = await stack.client.get(f"/v1/budgets?commune_code={commune}"
                                     f"&programme_code={G2P_PROGRAMME}",
                                     headers=auth("commune_officer", commune))
    assert budgets.json()[0]["committed_vnd"] == 12_000_000  # rejected and failed came back


async def test_unsigned_or_badly_signed_callbacks_are_refused_and_nothing_applied(g2p, stack):
    commune = new_commune()
    app_id = await support(stack, commune, G2P_PROGRAMME, "Giống lợn #silent", 12_000_000)
    app = await stack.instruction_status(app_id, commune, "sent")
    iid = app["instruction"]["instruction_id"]
    head, message = callback(g2p, iid, "rjct")
    forged = SigningKey(kid=bank_signer().kid, key=Ed25519PrivateKey.generate())
    body, bad_sig = protocol.Signer(kid=forged.kid, key=forged.key).body(header=head,
                                                                         message=message)
    for sig, code in ((None, "err.signature.missing"), (bad_sig, "err.signature.invalid"),
                      ("not-a-jws", "err.signature.invalid")):
        r = await post(g2p, body, sig)
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code
    # a genuine signature over another body does not carry over
    _, genuine = bank_signer().body(header=head, message={**message, "transaction_id": "x"})
    assert (await post(g2p, body, genuine)).status_code == 401
    # the silent instruction goes on to settle (by a poll), never rejected by the forgeries
    settled = await stack.instruction_status(app_id, commune, "settled")
    assert "rejected" not in [s["status"] for s in settled["instruction"]["history"]]


@pytest.mark.parametrize(("change", "code"), [
    ({"action": None}, "err.request.bad"),
    ({"version": "9.9.9"}, "err.version.not_supported"),
    ({"sender_id": "otherbank"}, "err.sender_id.invalid"),
    ({"status": "done"}, "err.request.bad"),
])
async def test_a_malformed_envelope_is_answered_err_with_the_spec_code(g2p, change, code):
    head, message = callback(g2p, str(uuid.uuid4()), "succ")
    head.update({k: v for k, v in change.items() if v is not None})
    for k in [k for k, v in change.items() if v is None]:
        del head[k]
    body, sig = bank_signer().body(header=head, message=message)
    r = await post(g2p, body, sig)
    assert r.status_code == 400, r.text
    ack = r.json()["message"]
    assert ack["ack_status"] == "ERR" and ack["error"]["code"] == code
    assert protocol.schema_errors(r.json(), protocol.ACK_SCHEMA_REF) == []


async def test_an_operator_retries_a_refused_transaction_and_the_bank_pays_once(g2p, stack):
    """The bank refuses a transaction (ERR); it is listed for operators, retried by one with a
    reason (audited), and the instruction is settled exactly once."""
    commune = new_commune()
    app_id = await support(stack, commune, G2P_PROGRAMME, "Giống lợn #refuse-once", 12_000_000)
    app = await stack.instruction_status(app_id, commune, "sent")
    iid = app["instruction"]["instruction_id"]
    admin, auditor = auth("national_admin", "VN", sub="ops-1"), auth("auditor", "VN")
    async with httpx.AsyncClient(base_url=g2p.gateway.url, timeout=20) as gw, \
            httpx.AsyncClient(base_url=g2p.bank.url, timeout=20) as bank:

        async def refused() -> dict | None:
            r = await gw.get("/v1/ops/g2p/transactions", headers=auditor)
            assert r.status_code == 200, r.text
            return next((t for t in r.json() if iid in
                         [i["reference_id"] for i in t["instructions"]]), None)

        txn = await eventually(refused, timeout=30, message="the refused transaction listed")
        assert txn["state"] == "refused"
        assert "err.request.forbidden" in txn["error"]
        assert (await bank.get(f"/sandbox/items/{iid}")).status_code == 404  # nothing taken
        retry = f"/v1/ops/g2p/transactions/{txn['transaction_id']}/retry"
        assert (await gw.post(retry)).status_code == 401
        assert (await gw.post(retry, headers=admin)).status_code == 422  # no reason
        r = await gw.post(retry, params={"reason": "the programme account is funded now"},
                          headers=auditor)
        assert r.status_code == 403
        r = await gw.post(retry, params={"reason": "the programme account is funded now"},
                          headers=admin)
        assert r.status_code == 200, r.text
        done = r.json()
        assert iid in done["references"] and done["retried_as"] != txn["transaction_id"]
        assert done["message_id"] != txn["message_id"]

        settled = await stack.instruction_status(app_id, commune, "settled")
        assert [s["status"] for s in settled["instruction"]["history"]] == [
            "approved", "sent", "accepted", "settled"]
        # a second retry of the same transaction is refused: it was retried already
        again = await gw.post(retry, params={"reason": "clicked twice by mistake"},
                              headers=admin)
        assert again.status_code == 409, again.text
        paid = (await bank.get(f"/sandbox/items/{iid}")).json()
        assert paid["status"] == "succ" and paid["settlements"] == 1
        assert paid["transaction_id"] == done["retried_as"]

        audit = (await gw.get("/v1/ops/audit", headers=auditor)).json()
        mine = [a for a in audit if a["target"] == f"transaction {txn['transaction_id']}"]
        assert [(a["actor"], a["action"], "refused" in a["outcome"]) for a in mine] == [
            ("ops-1", "g2p.transaction.retry", True),
            ("ops-1", "g2p.transaction.retry", False)]
        assert mine[1]["reason"] == "the programme account is funded now"
        r = await gw.get("/v1/ops/g2p/transactions", params={"state": "retried"},
                         headers=auditor)
        assert txn["transaction_id"] in [t["transaction_id"] for t in r.json()]
    officer = auth("commune_officer", commune)
    r = await stack.client.get(f"/v1/reconciliation?commune_code={commune}", headers=officer)
    by_status = {s["status"]: s for s in r.json()["by_status"]}
    assert by_status["settled"]["settled_amount_vnd"] == 12_000_000
    assert r.json()["mismatches"] == []


async def test_a_restructure_is_never_sent_over_g2p_but_rejected_with_the_reason(g2p, stack):
    commune = new_commune()
    members = [await stack.household(commune) for _ in range(3)]
    group_id = await stack.group(commune, members)
    loan_id = await settled_loan(stack, commune, members[0], group_id, programme=G2P_LOAN)
    shock_id = f"sh-{uuid.uuid4().hex[:8]}"
    await exposed(stack, commune, members[0], shock_id)
    restructuring_id = await through_the_group(stack, commune, loan_id, {
        "option": "extension", "months": 6, "shock_id": shock_id, "reason": "Lũ quét"})
    r = await stack.client.post(f"/v1/restructurings/{restructuring_id}/confirm",
                                headers=auth("commune_chair", commune))
    assert r.status_code == 201, r.text
    officer = auth("commune_officer", commune)

    async def answered() -> dict | None:
        r = await stack.client.get(f"/v1/restructurings/{restructuring_id}", headers=officer)
        return r.json() if r.json()["status"] == "not_applied" else None

    done = await eventually(answered, timeout=30, message="restructure rejected by the gateway")
    steps = done["instruction"]["history"]
    assert [s["status"] for s in steps] == ["approved", "sent", "rejected"]
    assert steps[-1]["reason"] == "restructure_not_supported"
    loan = (await stack.client.get(f"/v1/loans/{loan_id}", headers=officer)).json()
    assert loan["term_months"] == 36 and loan["restructured_at"] is None
    async with httpx.AsyncClient(base_url=g2p.gateway.url) as client:
        health = (await client.get("/health")).json()
    assert health["counts"]["restructure_refused"] == 1


async def test_a_forged_or_unreadable_instruction_is_dead_lettered_and_never_paid(g2p):
    """Only disbursement writes instructions: one with another source (a leaked credential, a
    wrong ACL) or one that cannot be read goes to the topic's dead letters with the reason, and
    the bank never sees it."""
    topic = events.instructions_topic(g2p.g2p_partner)
    forged_id = f"forged-{uuid.uuid4().hex[:8]}"
    forged = Envelope(type=events.INSTRUCTION_ISSUED, source="/services/evil", subject=forged_id,
                      data=events.InstructionIssuedV1(
                          instruction_id=forged_id, application_id="a-x", programme_code="X",
                          beneficiary_reference="BR-x", payee_name="Kẻ gian",
                          commune_code="01001", transaction_point="x", amount_vnd=99_000_000,
                          purpose="support", scheduled_date=date.today(),
                      ).model_dump(mode="json"))
    await produce_event(g2p.bootstrap, topic, forged)
    broken = Envelope(type=events.INSTRUCTION_ISSUED, source=events.SOURCE, subject="broken",
                      data={"instruction_id": "broken"})  # no amount, no reference
    await produce_event(g2p.bootstrap, topic, broken)

    dead = await collect(g2p.bootstrap, topic + ".dlq", until=lambda rs: {
        header(r, "ce_id") for r in rs} >= {forged.id, broken.id}, timeout=30)
    reasons = {header(r, "ce_id"): header(r, "dlq_reason") or "" for r in dead}
    assert "forged source" in reasons[forged.id] and "/services/evil" in reasons[forged.id]
    assert reasons[broken.id]
    async with httpx.AsyncClient(base_url=g2p.bank.url) as bank:
        assert (await bank.get(f"/sandbox/items/{forged_id}")).status_code == 404
