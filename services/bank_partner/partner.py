"""The reference partner: read instructions, decide, answer with statuses — idempotently.

Contract (services/disbursement/events.py, docs/bank-partner.md):
- read `disbursement.instruction.issued.v1` from `disbursement.instructions.<partner>`;
- answer `bank.instruction.status.v1` on `disbursement.status.<partner>`, key = the instruction's
  key (its instruction id), so every status of one instruction stays in order on one partition,
  each signed with the partner's key (`ev_signature`, a JWS; services/bank_partner/signing.py);
- accepted|rejected first, then settled|failed, then (loans) repayment_received;
- a `restructure` instruction (kind, with the loan's new schedule; amount 0) is answered accepted,
  then settled once the schedule is applied: no money moves, no repayment follows.

Idempotency: the instruction id is the key of the local state. An instruction seen again (a
redelivery, a republished outbox row) is not answered twice; the decision for an instruction is a
pure function of (seed, instruction id), so even a partner that lost its state answers the same —
with the same CloudEvents id per (instruction, status, bank reference), so that a status sent
again by a partner killed after publishing but before saving its state is dropped by the issuer's
inbox instead of counting as a second settlement or repayment. Offsets are committed only after
the statuses are acknowledged and the state is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.helpers import create_ssl_context

from services.bank_partner.config import PartnerConfig
from services.bank_partner.signing import SigningKey, sign_status
from services.disbursement import events
from shared.envelope import Envelope, EnvelopeError

log = logging.getLogger("everydoor.bank_partner")
STATUS_IDS = uuid.UUID("6f1d6a0e-5b7e-4c1e-9a51-3c0d2b8f7e41")  # uuid5 namespace of status ids


@dataclass
class Pending:
    """An accepted instruction waiting for its settlement (or failure)."""

    instruction_id: str
    key: str | None  # the instruction's record key (its instruction id): the statuses' key
    amount_vnd: int
    outcome: str  # "settled" | "failed"
    due_at: float
    term_months: int | None = None
    annual_rate_pct: float | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None


def _renamed(pending: dict[str, Any]) -> dict[str, Any]:
    """A state file saved before statuses were keyed by instruction: `household_id` → `key`."""
    if "household_id" in pending:
        pending = {k: v for k, v in pending.items() if k != "household_id"} | {
            "key": pending.get("instruction_id")}
    return pending


@dataclass
class State:
    """What the partner has answered: final instructions, and accepted ones still pending."""

    done: dict[str, str] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)

    def seen(self, instruction_id: str) -> bool:
        """Already answered (or being answered): a redelivery must not be answered again."""
        return instruction_id in self.done or instruction_id in self.pending

    def dump(self) -> dict[str, Any]:
        """JSON form for the state file."""
        return {"version": 1, "done": self.done,
                "pending": {k: vars(v) for k, v in self.pending.items()}}

    @classmethod
    def load(cls, raw: dict[str, Any]) -> State:
        """Back from the state file."""
        return cls(done=dict(raw.get("done", {})),
                   pending={k: Pending(**_renamed(v)) for k, v in raw.get("pending", {}).items()})


def decide(config: PartnerConfig, instruction: events.InstructionIssuedV1) -> str:
    """accepted→settled, accepted→failed or rejected: deterministic per (seed, instruction id).

    In sandbox mode a purpose containing `#reject` or `#fail` forces that outcome (like the test
    card numbers of a payment sandbox). A `restructure` instruction (a loan's new schedule) is
    accepted, then settled: applied."""
    if config.sandbox:
        if "#reject" in instruction.purpose:
            return "rejected"
        if "#fail" in instruction.purpose:
            return "failed"
    if instruction.kind == "restructure":
        return "settled"  # a new schedule for a loan it holds: applied, no money moves
    draw = random.Random(f"{config.seed}:{instruction.instruction_id}").random()
    if draw < config.reject_rate:
        return "rejected"
    if draw < config.reject_rate + config.fail_rate:
        return "failed"
    return "settled"


def client_security(config: PartnerConfig) -> dict[str, Any]:
    """The aiokafka keyword arguments that authenticate (SASL) and encrypt (TLS) its clients —
    what a bank sets for its own principal (Every Door's services: shared.broker)."""
    kwargs: dict[str, Any] = {"security_protocol": config.security_protocol}
    if config.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = create_ssl_context(
            cafile=config.ssl_cafile, certfile=config.ssl_certfile, keyfile=config.ssl_keyfile)
    if config.security_protocol.startswith("SASL_"):
        kwargs.update(sasl_mechanism=config.sasl_mechanism,
                      sasl_plain_username=config.sasl_username,
                      sasl_plain_password=config.sasl_password)
    return kwargs


def bank_reference(partner: str, instruction_id: str, suffix: str = "") -> str:
    """The bank's own stable reference for an instruction (or one of its repayments)."""
    digest = hashlib.sha256(f"{instruction_id}{suffix}".encode()).hexdigest()[:12].upper()
    return f"{partner.upper()}-{digest}"


class Partner:
    """Consumes one partner's instruction topic and answers on its status topic."""

    def __init__(self, config: PartnerConfig) -> None:
        self.config = config
        # Read at construction: a partner without a usable key never starts answering.
        self.signing_key = SigningKey.load(config.signing_key_file)
        self.state = State()
        self.counts: dict[str, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.started = asyncio.Event()

    # --- state file ------------------------------------------------------------------------
    def load_state(self) -> None:
        """Read the state file if there is one."""
        path = self.config.state_file
        if path is not None and path.exists():
            self.state = State.load(json.loads(path.read_text()))
            log.info("state: %d answered, %d pending", len(self.state.done),
                     len(self.state.pending))

    def save_state(self) -> None:
        """Write the state file atomically (temp file + rename)."""
        path = self.config.state_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.state.dump()))
        os.replace(tmp, path)

    # --- the loop --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume, answer, settle when due, until `stop` is set (SIGTERM)."""
        cfg = self.config
        self.load_state()
        self.consumer = AIOKafkaConsumer(
            events.instructions_topic(cfg.partner), bootstrap_servers=cfg.bootstrap_servers,
            group_id=cfg.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms, **client_security(cfg))
        self.producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap_servers, acks="all",
                                         linger_ms=5, **client_security(cfg))
        await self.producer.start()
        await self.consumer.start()
        self.started.set()
        log.info("partner %s consuming %s as group %s", cfg.partner,
                 events.instructions_topic(cfg.partner), cfg.group_id)
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=self._poll_ms(),
                                                    max_records=500)
                answers: list[Envelope] = []
                for records in batch.values():
                    for record in records:
                        answers.extend(self.answer(record))
                answers.extend(self.due_settlements())
                await self.publish(answers)
                if batch or answers:
                    self.save_state()
                if batch:
                    await self.consumer.commit({tp: recs[-1].offset + 1
                                                for tp, recs in batch.items()})
        finally:
            self.save_state()
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            with contextlib.suppress(Exception):
                await self.producer.stop()
            log.info("partner %s stopped: %s", cfg.partner, self.counts)

    def _poll_ms(self) -> int:
        if not self.state.pending:
            return 500
        wait = min(p.due_at for p in self.state.pending.values()) - time.time()
        return int(max(0.0, min(wait, 0.5)) * 1000)

    def answer(self, record: ConsumerRecord) -> list[Envelope]:
        """The immediate answer to one instruction record (none for a redelivery)."""
        try:
            env = Envelope.from_kafka(record.headers or (), record.value)
            if env.type != events.INSTRUCTION_ISSUED:
                return []
            instruction = events.InstructionIssuedV1.model_validate(env.data)
        except (EnvelopeError, ValueError) as exc:
            # A real bank would park this on its own error queue and call the issuer.
            log.error("unreadable instruction at %s@%d: %s", record.topic, record.offset, exc)
            return []
        if self.state.seen(instruction.instruction_id):
            self._count("redelivery_ignored")
            return []
        key = record.key.decode() if record.key else env.subject  # the instruction id
        outcome = decide(self.config, instruction)
        if outcome == "rejected":
            self.state.done[instruction.instruction_id] = "rejected"
            return [self.status(instruction.instruction_id, key, "rejected", cause=env,
                                reason_code="beneficiary_not_verified")]
        self.state.pending[instruction.instruction_id] = Pending(
            instruction_id=instruction.instruction_id, key=key,
            amount_vnd=instruction.amount_vnd, outcome=outcome,
            due_at=time.time() + self.config.accept_delay_s + self.config.settle_delay_s,
            term_months=instruction.term_months, annual_rate_pct=instruction.annual_rate_pct,
            correlation_id=env.correlation_id or env.id, causation_id=env.id,
            traceparent=env.traceparent)
        return [self.status(instruction.instruction_id, key, "accepted", cause=env,
                            bank_ref=bank_reference(self.config.partner,
                                                    instruction.instruction_id))]

    def due_settlements(self) -> list[Envelope]:
        """settled|failed (and loan repayments) for accepted instructions whose time has come."""
        now = time.time()
        out: list[Envelope] = []
        for p in [p for p in self.state.pending.values() if p.due_at <= now]:
            cause = Envelope(type=events.INSTRUCTION_ISSUED, source="", data={}, id=p.causation_id
                             or p.instruction_id, correlation_id=p.correlation_id,
                             traceparent=p.traceparent)
            ref = bank_reference(self.config.partner, p.instruction_id)
            if p.outcome == "failed":
                out.append(self.status(p.instruction_id, p.key, "failed", cause=cause,
                                       bank_ref=ref, reason_code="payee_absent_at_transaction_point"))
            else:
                out.append(self.status(p.instruction_id, p.key, "settled", cause=cause,
                                       bank_ref=ref, amount_vnd=p.amount_vnd))
                if p.term_months and p.annual_rate_pct:
                    interest = round(p.amount_vnd * p.annual_rate_pct / 100 / 12)
                    for n in range(1, min(self.config.repayments, p.term_months) + 1):
                        out.append(self.status(
                            p.instruction_id, p.key, "repayment_received", cause=cause,
                            bank_ref=bank_reference(self.config.partner, p.instruction_id,
                                                    f"/repayment/{n}"),
                            amount_vnd=interest))
            self.state.done[p.instruction_id] = p.outcome
            del self.state.pending[p.instruction_id]
        return out

    def status(self, instruction_id: str, key: str | None, status: str, *,
               cause: Envelope, bank_ref: str | None = None, amount_vnd: int | None = None,
               reason_code: str | None = None) -> Envelope:
        """One `bank.instruction.status.v1` CloudEvent, caused by the instruction."""
        self._count(status)
        payload = events.BankInstructionStatusV1(
            instruction_id=instruction_id, status=status,  # type: ignore[arg-type]
            reason_code=reason_code, bank_reference=bank_ref, amount_vnd=amount_vnd,
            occurred_at=datetime.now(UTC))
        # The same answer always has the same id: a repeat after a crash is a duplicate.
        event_id = str(uuid.uuid5(STATUS_IDS, f"{self.config.partner}/{instruction_id}/{status}/"
                                              f"{bank_ref or ''}"))
        return Envelope(type=events.BANK_STATUS, source=f"/partners/{self.config.partner}",
                        id=event_id, subject=key,
                        data=payload.model_dump(mode="json", exclude_none=True),
                        correlation_id=cause.correlation_id or cause.id, causation_id=cause.id,
                        # The instruction's trace context travels back: the issuer's trace goes on.
                        traceparent=cause.traceparent)

    async def publish(self, answers: list[Envelope]) -> None:
        """Send every answer and wait for all acknowledgements (acks=all)."""
        if not answers:
            return
        assert self.producer is not None
        topic = events.status_topic(self.config.partner)
        for _ in range(5):
            await self._topic_as_believed(topic)
            futures = []
            for e in answers:
                value, headers = sign_status(e, key=self.signing_key)
                futures.append(await self.producer.send(topic, value=value, key=e.key,
                                                        headers=headers))
            acked = await asyncio.gather(*futures)
            # A broker that restarted empty acknowledges partitions it no longer has: what
            # landed there is unreadable and goes again (disbursement drops repeats).
            cluster = await self.producer.client.fetch_all_metadata()
            readable = cluster.partitions_for_topic(topic) or set()
            answers = [e for e, md in zip(answers, acked, strict=True)
                       if md.partition not in readable]
            if not answers:
                return
            await self.producer.client.force_metadata_update()
        raise RuntimeError(f"{len(answers)} statuses could not be placed on {topic}")

    async def _topic_as_believed(self, topic: str, *, timeout: float = 60.0) -> None:
        """Wait until the status topic exists and the producer knows its partitions: a broker
        that restarted empty accepts records for partitions it no longer has, unreadable."""
        assert self.producer is not None
        client = self.producer.client
        deadline = time.monotonic() + timeout
        while True:
            cluster = await client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(topic)
            if partitions and client.cluster.partitions_for_topic(topic) in (None, partitions):
                return  # unknown to the producer yet: its first send fetches it
            if partitions:
                await client.force_metadata_update()
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic} does not exist (disbursement creates it)")
            await asyncio.sleep(0.5)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # --- optional health endpoint ----------------------------------------------------------
    async def serve_health(self, port: int) -> asyncio.AbstractServer:
        """A tiny HTTP responder on 127.0.0.1:port: any GET answers 200 with counters."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                body = json.dumps({"status": "ok", "partner": self.config.partner,
                                   "consuming": self.started.is_set(),
                                   "pending": len(self.state.pending),
                                   "answered": len(self.state.done),
                                   "statuses_sent": self.counts}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode()
                             + b"\r\nConnection: close\r\n\r\n" + body)
                await writer.drain()
            writer.close()

        return await asyncio.start_server(handle, "127.0.0.1", port)
