"""The gateway: Kafka instructions → batched G2P Connect `/disburse`; signed callbacks (or polled
`/disburse/txn/status` answers) → signed `bank.instruction.status.v1` on the partner's topic.

It speaks for the partner on `disbursement.status.<partner>`: a status is published only from a
callback whose `Signature` verified with the bank's registered key, with source
`/partners/<partner>`, signed (`ev_signature`) with the gateway's key registered for that partner,
and with a stable CloudEvents id per (instruction, status), so a repeated callback is dropped by
disbursement's inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from services.bank_partner.signing import SigningKey, sign_status
from services.disbursement import events
from services.g2p_gateway import protocol
from services.g2p_gateway.config import Settings
from services.g2p_gateway.state import RETRYABLE, AuditLog, Instruction, State, Transaction
from shared.broker import client_security
from shared.consumer import DLQ_SUFFIX
from shared.envelope import Envelope, EnvelopeError

log = logging.getLogger("everydoor.g2p_gateway")
STATUS_IDS = uuid.UUID("0c7f1f0e-8a0b-4d8e-9a0e-6b1d2f3a4c5d")  # uuid5 namespace of status ids
TXN_IDS = uuid.UUID("5d3e0a52-7b61-4f0e-8f8e-2f4a9d1c7b30")


@dataclass
class Answer:
    """What a callback gets: an HTTP status and a body (ack, or problem+json when `problem`)."""

    status: int
    body: dict[str, Any]
    problem: bool = False


class Gateway:
    """One partner's G2P Connect channel: consume, batch, send, verify, map, publish, poll."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Read at construction: a gateway without usable keys never starts.
        self.key = SigningKey.load(settings.signing_key_file)
        self.signer = protocol.Signer(kid=self.key.kid, key=self.key.key)
        self.partner_keys = protocol.load_public_keys(settings.partner_keys_file)
        self.state = State.load(settings.state_file)
        self.audit = AuditLog(settings.audit_file)
        self.lock = asyncio.Lock()
        self.counts: dict[str, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.http: httpx.AsyncClient | None = None
        self.started = asyncio.Event()
        self._polled_at = 0.0
        # Refusals of instructions G2P Connect cannot carry, published before the offsets commit.
        self.refused: list[Envelope] = []
        self.dead: list[tuple[ConsumerRecord, str]] = []

    @property
    def source(self) -> str:
        """CloudEvents source of the statuses: the partner's (disbursement checks it)."""
        return f"/partners/{self.settings.partner}"

    def task_ended(self, task: asyncio.Task) -> None:
        """A consumer or pump that stopped on an error makes the gateway not ready (/ready 503)."""
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway task failed: %r", task.exception())
            self.started.clear()

    def _count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect the producer, consumer and HTTP client."""
        s = self.settings
        self.producer = AIOKafkaProducer(bootstrap_servers=s.platform.kafka_bootstrap_servers,
                                         acks="all", linger_ms=5,
                                         **client_security(s.platform))
        self.consumer = AIOKafkaConsumer(
            events.instructions_topic(s.partner),
            bootstrap_servers=s.platform.kafka_bootstrap_servers, group_id=s.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=6000,
            heartbeat_interval_ms=500, **client_security(s.platform))
        self.http = httpx.AsyncClient(timeout=s.request_timeout_s)
        await self.producer.start()
        await self.consumer.start()
        self.started.set()
        log.info("gateway for %s: %s → %s, callbacks at %s", s.partner,
                 events.instructions_topic(s.partner), s.partner_url, s.callback_url)

    async def stop(self) -> None:
        """Save state and disconnect."""
        self.state.save()
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
        if self.http is not None:
            await self.http.aclose()
        log.info("gateway for %s stopped: %s", self.settings.partner, self.counts)

    async def consume(self, stop: asyncio.Event) -> None:
        """Record new instructions in the state; commit offsets only after it is saved."""
        assert self.consumer is not None
        while not stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
            if not batch:
                continue
            async with self.lock:
                for records in batch.values():
                    for record in records:
                        self.record(record)
                refused, self.refused = self.refused, []
                await self.publish(refused)
                dead, self.dead = self.dead, []
                await self.dead_letter(dead)
                self.state.save()
            await self.consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batch.items()})

    async def pump(self, stop: asyncio.Event) -> None:
        """Batch queued instructions into transactions, send them, poll the silent ones."""
        while not stop.is_set():
            try:
                await self.flush()
                await self.send_due()
                await self.poll_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway pump failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)

    async def prune_loop(self, stop: asyncio.Event) -> None:
        """Prune now and every `prune_interval_s` (an error is logged and tried next time)."""
        while not stop.is_set():
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway pruning failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.prune_interval_s)

    async def prune(self, *, now: float | None = None) -> tuple[int, int]:
        """Forget transactions finished more than `retention_days` ago, with their
        instructions; (transactions, instructions) removed."""
        before = (now or time.time()) - self.settings.retention_days * 86400
        async with self.lock:
            txns, insts = self.state.prune(before=before)
            if txns:
                self.state.save()
        if txns:
            self._count("pruned_transactions", txns)
            self._count("pruned_instructions", insts)
            log.info("pruned %d finished transactions (%d instructions) older than %s days",
                     txns, insts, self.settings.retention_days)
        return txns, insts

    # --- instructions → /disburse ----------------------------------------------------------------
    def record(self, record: ConsumerRecord) -> None:
        """Remember one instruction (once: a redelivery or a republished one is ignored)."""
        try:
            env = Envelope.from_kafka(record.headers or (), record.value)
            if env.type != events.INSTRUCTION_ISSUED:
                return
            if env.source != events.SOURCE:
                # Only disbursement writes instructions (the broker's ACLs say so too): anything
                # else on the topic is never paid.
                raise ValueError(f"forged source: {env.source!r} may not write {record.topic} "
                                 f"(only {events.SOURCE})")
            inst = events.InstructionIssuedV1.model_validate(env.data)
        except (EnvelopeError, ValueError) as exc:
            log.error("instruction at %s@%d refused: %s", record.topic, record.offset, exc)
            self._count("unreadable")
            self.dead.append((record, str(exc)))
            return
        if inst.instruction_id in self.state.instructions:
            self._count("redelivery_ignored")
            return
        if inst.kind != "disbursement":
            # G2P Connect's /disburse moves money and has no loan-schedule operation: a
            # `restructure` instruction sent as a disbursement would pay its amount out. It is
            # answered `rejected` (reason `restructure_not_supported`), never sent to the bank.
            log.warning("instruction %s is a %s: not supported over G2P Connect, rejected",
                        inst.instruction_id, inst.kind)
            self._count(f"{inst.kind}_refused")
            self.refused.append(self.refusal(inst, env, key=record.key.decode() if record.key
                                             else inst.instruction_id))
            return
        self.state.instructions[inst.instruction_id] = Instruction(
            key=record.key.decode() if record.key else inst.instruction_id,
            amount_vnd=inst.amount_vnd, item=self.item(inst),
            correlation_id=env.correlation_id or env.id, causation_id=env.id,
            traceparent=env.traceparent, queued_at=time.time(), updated_at=time.time())
        self._count("instructions")

    def refusal(self, inst: events.InstructionIssuedV1, cause: Envelope, *,
                key: str) -> Envelope:
        """The signed `rejected` answer to an instruction G2P Connect cannot carry (stable id:
        a redelivered instruction yields a duplicate the issuer's inbox drops)."""
        payload = events.BankInstructionStatusV1(
            instruction_id=inst.instruction_id, status="rejected",
            reason_code=f"{inst.kind}_not_supported", occurred_at=datetime.now(UTC))
        return Envelope(
            type=events.BANK_STATUS, source=self.source, subject=key,
            id=str(uuid.uuid5(STATUS_IDS, f"{self.settings.partner}/{inst.instruction_id}/"
                                          "rejected")),
            data=payload.model_dump(mode="json", exclude_none=True),
            correlation_id=cause.correlation_id or cause.id, causation_id=cause.id,
            traceparent=cause.traceparent)

    def item(self, inst: events.InstructionIssuedV1) -> dict[str, Any]:
        """The G2P Connect disbursement for one instruction: the keyed beneficiary reference as
        the payee's financial address, never an identity number."""
        s = self.settings
        return {
            "reference_id": inst.instruction_id,
            "payer_fa": s.payer_fa,
            "payee_fa": s.payee_fa_format.format(beneficiary_reference=inst.beneficiary_reference,
                                                 partner=s.partner),
            "amount": protocol.amount(inst.amount_vnd),
            "scheduled_timestamp": f"{inst.scheduled_date.isoformat()}T00:00:00+07:00",
            "payer_name": inst.programme_code[:99],
            "payee_name": inst.payee_name[:99],
            "note": f"{inst.programme_code} {inst.transaction_point}"[:99],
            "purpose": inst.purpose[:99],
            "currency_code": inst.currency,
        }

    async def flush(self, *, force: bool = False) -> None:
        """Place queued instructions into transactions of at most `batch_size` once the batch is
        full or the oldest waited `batch_linger_s`."""
        s = self.settings
        async with self.lock:
            queued = self.state.queued()
            if not queued:
                return
            oldest = self.state.instructions[queued[0]].queued_at
            if not force and len(queued) < s.batch_size and time.time() - oldest < s.batch_linger_s:
                return
            for start in range(0, len(queued), s.batch_size):
                refs = queued[start:start + s.batch_size]
                txn_id = str(uuid.uuid5(TXN_IDS, "/".join(refs)))
                self.state.transactions[txn_id] = Transaction(message_id=str(uuid.uuid4()),
                                                              references=refs,
                                                              created_at=time.time())
                for ref in refs:
                    self.state.instructions[ref].transaction_id = txn_id
            self.state.save()

    def disburse_request(self, txn_id: str, txn: Transaction) -> tuple[bytes, str]:
        """The signed `/disburse` body and its `Signature` header."""
        s = self.settings
        items = [self.state.instructions[r].item for r in txn.references]
        header = protocol.request_header(
            action="disburse", sender_id=s.sender_id, sender_uri=s.callback_url,
            receiver_id=s.partner_id, total_count=len(items), message_id=txn.message_id)
        return self.signer.body(header=header,
                                message={"transaction_id": txn_id, "disbursements": items})

    async def send_due(self) -> None:
        """POST every transaction not yet acknowledged (the same transaction id and message id
        on a retry: the bank deduplicates by reference id)."""
        due = [(k, t) for k, t in self.state.transactions.items()
               if t.state == "new" and t.next_try <= time.time()]
        for txn_id, txn in due:
            body, sig = self.disburse_request(txn_id, txn)
            ack = await self._post("/disburse", body, sig)
            async with self.lock:
                txn.attempts += 1
                if ack is None:
                    txn.next_try = time.time() + min(30.0, 0.5 * 2 ** min(txn.attempts, 6))
                elif ack.get("ack_status") == "ACK":
                    txn.state, txn.correlation_id = "acked", ack.get("correlation_id")
                    now = time.time()
                    for ref in txn.references:
                        self.state.instructions[ref].updated_at = now
                    self._count("transactions_sent")
                else:
                    # ERR/NACK: the bank will not process it; an operator must look (/health).
                    txn.state, txn.error = "refused", json.dumps(ack)
                    self._count("transactions_refused")
                    log.error("partner refused transaction %s: %s", txn_id, ack)
                self.state.save()

    async def _post(self, path: str, body: bytes, signature: str) -> dict[str, Any] | None:
        """POST a signed body; the ack's `message`, or None when it should be tried again."""
        assert self.http is not None
        try:
            r = await self.http.post(
                self.settings.partner_url + path, content=body,
                headers={"Content-Type": "application/json",
                         protocol.SIGNATURE_HEADER: signature})
        except httpx.HTTPError as exc:
            log.warning("POST %s failed: %s", path, exc)
            return None
        if r.status_code >= 500 or r.status_code == 429:
            log.warning("POST %s → %d", path, r.status_code)
            return None
        try:
            ack = r.json()["message"]
        except (ValueError, KeyError, TypeError):
            return {"ack_status": "ERR", "error": {"code": f"http {r.status_code}",
                                                   "message": r.text[:200]}}
        return ack if isinstance(ack, dict) else None

    # --- polling ---------------------------------------------------------------------------------
    async def poll_due(self) -> None:
        """Ask `/disburse/txn/status` about instructions with no final status and no news for
        `callback_timeout_s` (answered on `/disburse/txn/on-status`)."""
        s, now = self.settings, time.time()
        if now - self._polled_at < s.poll_interval_s:
            return
        self._polled_at = now
        for txn_id, txn in list(self.state.transactions.items()):
            if txn.state != "acked" or now - txn.last_poll < s.callback_timeout_s:
                continue
            silent = [r for r in txn.references
                      if not set(self.state.instructions[r].published) & protocol.FINAL
                      and now - self.state.instructions[r].updated_at >= s.callback_timeout_s]
            if not silent:
                continue
            if txn.unanswered_polls >= s.max_unanswered_polls:
                # The bank answered none of our polls: stop, and leave it to an operator.
                async with self.lock:
                    txn.state = "unanswered"
                    self.state.save()
                self._count("transactions_unanswered")
                log.error("transaction %s: %d polls unanswered for %d instructions; an operator "
                          "may retry it (POST /v1/ops/g2p/transactions/%s/retry)", txn_id,
                          txn.unanswered_polls, len(silent), txn_id)
                continue
            header = protocol.request_header(
                action="on-disburse", sender_id=s.sender_id, sender_uri=s.callback_url,
                receiver_id=s.partner_id, total_count=len(silent))
            message = {"transaction_id": txn_id, "txnstatus_request": {
                "reference_id": str(uuid.uuid4()), "txn_type": "disburse",
                "attribute_type": "reference_id_list", "attribute_value": silent}}
            body, sig = self.signer.body(header=header, message=message)
            txn.last_poll = now
            txn.unanswered_polls += 1  # reset by any callback about it
            ack = await self._post("/disburse/txn/status", body, sig)
            self._count("polls")
            log.info("polled %s for %d silent instructions: %s", txn_id, len(silent),
                     ack and ack.get("ack_status"))

    # --- callbacks → statuses --------------------------------------------------------------------
    async def callback(self, path: str, body: bytes, signature: str | None) -> Answer:
        """Verify, validate, map and publish one callback; the answer to give the bank."""
        why = protocol.verify_detached(body, signature, keys=self.partner_keys)
        if why is not None:
            self._count("callbacks_unauthenticated")
            code = (protocol.ERR_SIGNATURE_MISSING if not signature
                    else protocol.ERR_SIGNATURE_INVALID)
            return Answer(401, {"detail": f"callback signature refused: {why}", "code": code},
                          problem=True)
        correlation = str(uuid.uuid4())
        try:
            doc = json.loads(body)
        except ValueError as exc:
            return self._err(correlation, protocol.ERR_BAD_REQUEST, f"body is not JSON: {exc}")
        errors = protocol.schema_errors(doc, protocol.request_schema_ref(path))
        if errors:
            return self._err(correlation, protocol.ERR_BAD_REQUEST, "; ".join(errors[:5]))
        header = doc["header"]
        if header.get("version", protocol.VERSION) != protocol.VERSION:
            return self._err(correlation, protocol.ERR_VERSION,
                             f"version {header.get('version')} (1.0.0 is supported)")
        if header.get("sender_id") != self.settings.partner_id:
            return self._err(correlation, protocol.ERR_SENDER,
                             f"sender_id {header.get('sender_id')!r} is not "
                             f"{self.settings.partner_id!r}")
        if header.get("receiver_id", self.settings.sender_id) != self.settings.sender_id:
            return self._err(correlation, protocol.ERR_RECEIVER,
                             f"receiver_id {header.get('receiver_id')!r}")
        message = doc.get("message") or {}
        if header.get("is_msg_encrypted") or "ciphertext" in message:
            return self._err(correlation, protocol.ERR_ENCRYPTION, "encrypted messages are not "
                             "supported on this channel (TLS protects it)")
        if path == "/disburse/txn/on-status":
            message = (message.get("txnstatus_response") or {}).get("txn_status") or {}
        items = message.get("disbursements_status") or []
        known = await self.apply(message.get("transaction_id"), items)
        self._count("callbacks")
        # NACK: well-formed and authentic, but about nothing we sent (nothing will follow).
        return Answer(200, protocol.ack("ACK" if known else "NACK", correlation_id=correlation))

    def _err(self, correlation: str, code: str, message: str) -> Answer:
        self._count("callbacks_err")
        log.warning("callback refused with %s: %s", code, message)
        return Answer(400, protocol.ack("ERR", correlation_id=correlation, code=code,
                                        message=message))

    async def apply(self, txn_id: str | None, items: list[dict[str, Any]]) -> int:
        """Publish our statuses for these item statuses (before the ack: a crash makes the bank
        call again, and the repeat is a duplicate); how many items were ours."""
        known = 0
        async with self.lock:
            out: list[tuple[Instruction, Envelope]] = []
            for item in items:
                inst = self.state.instructions.get(str(item.get("reference_id")))
                if inst is None or inst.transaction_id is None:
                    continue
                known += 1
                inst.g2p_status, inst.updated_at = item.get("status"), time.time()
                txn = self.state.transactions.get(inst.transaction_id)
                if txn is not None:
                    txn.unanswered_polls = 0
                    if txn.state == "unanswered":  # the bank spoke after all
                        txn.state = "acked"
                for status in protocol.lifecycle(item["status"], item.get("status_reason_code"),
                                                 published=set(inst.published)):
                    out.append((inst, self.status(inst, status, item)))
            await self.publish([e for _, e in out])
            for inst, env in out:
                inst.published.append(env.data["status"])
            self.state.save()
        return known

    def status(self, inst: Instruction, status: str, item: dict[str, Any]) -> Envelope:
        """One `bank.instruction.status.v1` for the partner, caused by the instruction."""
        reference = inst.item["reference_id"]
        txn = self.state.transactions.get(inst.transaction_id or "")
        try:
            occurred = datetime.fromisoformat(str(item.get("timestamp")).replace("Z", "+00:00"))
        except ValueError:
            occurred = datetime.now(UTC)
        amount = inst.amount_vnd
        if status == "settled" and item.get("amount"):
            amount = protocol.amount_vnd(item["amount"])
        payload = events.BankInstructionStatusV1(
            instruction_id=reference, status=status,  # type: ignore[arg-type]
            reason_code=(item.get("status_reason_code") or "rjct")
            if status in ("rejected", "failed") else None,
            bank_reference=f"{(txn and txn.correlation_id) or inst.transaction_id}/{reference}",
            amount_vnd=amount if status == "settled" else None, occurred_at=occurred)
        return Envelope(
            type=events.BANK_STATUS, source=self.source, subject=inst.key,
            # Stable per (instruction, status): a repeated callback is a duplicate downstream.
            id=str(uuid.uuid5(STATUS_IDS, f"{self.settings.partner}/{reference}/{status}")),
            data=payload.model_dump(mode="json", exclude_none=True),
            correlation_id=inst.correlation_id, causation_id=inst.causation_id,
            traceparent=inst.traceparent)

    async def dead_letter(self, dead: list[tuple[ConsumerRecord, str]]) -> None:
        """Unreadable or forged instructions to `<topic>.dlq`, as they came, with the reason
        (the same headers as the services' dead letters), before their offsets are committed."""
        assert self.producer is not None
        for record, reason in dead:
            headers = [*(record.headers or ()), ("dlq_reason", reason[:1000].encode()),
                       ("dlq_original_topic", record.topic.encode()),
                       ("dlq_original_partition", str(record.partition).encode()),
                       ("dlq_original_offset", str(record.offset).encode()),
                       ("dlq_attempts", b"1"), ("dlq_consumer", b"g2p-gateway")]
            await self.producer.send_and_wait(record.topic + DLQ_SUFFIX, value=record.value,
                                              key=record.key, headers=headers)
            self._count("dead_lettered")

    async def publish(self, statuses: list[Envelope]) -> None:
        """Send signed statuses in order and wait for every acknowledgement (acks=all)."""
        if not statuses:
            return
        assert self.producer is not None
        topic = events.status_topic(self.settings.partner)
        for env in statuses:
            value, headers = sign_status(env, key=self.key)
            await self.producer.send_and_wait(topic, value=value, key=env.key, headers=headers)
            self._count(f"status_{env.data['status']}")

    # --- operators ---------------------------------------------------------------------------------
    def transactions(self, states: tuple[str, ...]) -> list[tuple[str, Transaction]]:
        """Transactions in these states, oldest first."""
        return sorted(((k, t) for k, t in self.state.transactions.items() if t.state in states),
                      key=lambda kt: kt[1].created_at)

    async def retry(self, txn_id: str) -> tuple[str, Transaction]:
        """Send a refused or unanswered transaction's open instructions again, as a new
        transaction with a new transaction id and message id (the old one is kept, `retried`).
        The reference ids stay the instruction ids, so the bank pays each at most once: an
        instruction it already holds comes back `rjct.reference_id.duplicate`, which changes
        nothing, and its real status follows from the bank or a poll. LookupError when unknown,
        ValueError when not retryable."""
        async with self.lock:
            txn = self.state.transactions.get(txn_id)
            if txn is None:
                raise LookupError(txn_id)
            if txn.state not in RETRYABLE:
                raise ValueError(f"transaction {txn_id} is {txn.state}: only "
                                 f"{' or '.join(RETRYABLE)} transactions are retried")
            refs = [r for r in txn.references
                    if not set(self.state.instructions[r].published) & protocol.FINAL]
            if not refs:
                raise ValueError(f"every instruction of transaction {txn_id} already has a final "
                                 "status: nothing to send")
            now = time.time()
            new_id = str(uuid.uuid4())
            new = Transaction(message_id=str(uuid.uuid4()), references=refs, created_at=now,
                              retry_of=txn_id)
            self.state.transactions[new_id] = new
            txn.state, txn.retried_as = "retried", new_id
            for ref in refs:
                self.state.instructions[ref].transaction_id = new_id
                self.state.instructions[ref].updated_at = now
            self.state.save()
        self._count("transactions_retried")
        log.warning("transaction %s retried as %s (%d instructions)", txn_id, new_id, len(refs))
        return new_id, new

    def health(self) -> dict[str, Any]:
        """Counters and what is in flight."""
        txns = self.state.transactions.values()
        return {"status": "ok", "partner": self.settings.partner,
                "consuming": self.started.is_set(), "counts": self.counts,
                "queued": len(self.state.queued()),
                "transactions": {s: sum(1 for t in txns if t.state == s)
                                 for s in ("new", "acked", "refused", "unanswered", "retried")}}
