"""The reference partner as a G2P Connect sandbox bank (`python -m services.bank_partner --g2p`).

Serves `POST /disburse` and `POST /disburse/txn/status` (async: it acknowledges, then calls the
sender back at `/on-disburse` and `/disburse/txn/on-status`), every callback signed with its key
(a detached JWS over the body in the `Signature` header; the sandbox key by default). Outcomes
as the Kafka partner's: deterministic per (seed, reference id); in sandbox mode a purpose holding
`#reject`, `#fail` or `#silent` (no callbacks: only a status poll tells) forces that behaviour.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.bank_partner.config import PartnerConfig
from services.bank_partner.signing import SigningKey
from services.g2p_gateway import protocol

log = logging.getLogger("everydoor.bank_partner.g2p")
SANDBOX_CLIENT_KEYS = Path(__file__).parent.parent / "disbursement/sandbox-partner-keys.jwks.json"
AMOUNT = re.compile(r"^\d{1,13}\.\d{1,2}$")


@dataclass
class Item:
    """One disbursement the bank holds, and where it stands."""

    reference_id: str
    transaction_id: str
    amount: str
    currency_code: str
    outcome: str  # succ | rjct | fail
    silent: bool
    status: str = "rcvd"
    reason: str | None = None
    message: str | None = None
    timestamp: str = field(default_factory=protocol.now_ts)

    def as_status(self) -> dict[str, Any]:
        """Its entry of `disbursements_status`."""
        out: dict[str, Any] = {"reference_id": self.reference_id, "timestamp": self.timestamp,
                               "status": self.status}
        if self.reason:
            out["status_reason_code"] = self.reason
            out["status_reason_message"] = self.message or self.reason
        if self.status == "succ":
            out.update(amount=self.amount, currency_code=self.currency_code)
        return out


class SandboxBank:
    """What the sandbox bank knows and does."""

    def __init__(self, config: PartnerConfig, *, client_keys: Path) -> None:
        self.config = config
        key = SigningKey.load(config.signing_key_file)
        self.signer = protocol.Signer(kid=key.kid, key=key.key)
        self.client_keys = protocol.load_public_keys(client_keys)
        self.items: dict[str, Item] = {}
        self.transactions: dict[str, list[str]] = {}
        self.callback_url = os.environ.get("BANK_PARTNER_G2P_CALLBACK_URL", "")
        self.counts: dict[str, int] = {}
        self.refused_once: set[str] = set()
        # Money paid per reference id: a second settlement of one would be a double payment.
        self.settlements: dict[str, int] = {}
        self.tasks: set[asyncio.Task] = set()
        self.http = httpx.AsyncClient(timeout=10)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def outcome(self, reference_id: str, purpose: str) -> str:
        """succ, rjct (at once) or fail (pending, then rejected)."""
        cfg = self.config
        if cfg.sandbox and "#reject" in purpose:
            return "rjct"
        if cfg.sandbox and "#fail" in purpose:
            return "fail"
        draw = random.Random(f"{cfg.seed}:{reference_id}").random()
        if draw < cfg.reject_rate:
            return "rjct"
        return "fail" if draw < cfg.reject_rate + cfg.fail_rate else "succ"

    def check(self, path: str, body: bytes, signature: str | None,
              action: str) -> tuple[dict[str, Any] | None, JSONResponse | None]:
        """The parsed request, or the answer refusing it."""
        why = protocol.verify_detached(body, signature, keys=self.client_keys)
        corr = str(uuid.uuid4())
        if why:
            code = protocol.ERR_SIGNATURE_MISSING if not signature else protocol.ERR_SIGNATURE_INVALID
            return None, JSONResponse(protocol.ack("ERR", correlation_id=corr, code=code,
                                                   message=why), status_code=401)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        errors = protocol.schema_errors(doc, protocol.request_schema_ref(path))
        if not errors and doc["header"]["action"] != action:
            errors = [f"header/action: {doc['header']['action']!r} is not {action!r}"]
        if errors:
            return None, JSONResponse(protocol.ack("ERR", correlation_id=corr,
                                                   code=protocol.ERR_BAD_REQUEST,
                                                   message="; ".join(errors[:5])), status_code=400)
        return doc, None

    def refusal(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """Sandbox only: the ERR ack (err.request.forbidden) refusing a whole transaction the
        first time it carries a disbursement whose purpose contains `#refuse-once`, as a bank
        refuses a batch it cannot take yet; accepted when sent again (an operator's retry)."""
        if not self.config.sandbox:
            return None
        marked = {d["reference_id"] for d in doc["message"]["disbursements"]
                  if "#refuse-once" in d.get("purpose", "")}
        if not marked or marked <= self.refused_once:
            return None
        self.refused_once |= marked
        self._count("transactions_refused")
        return protocol.ack("ERR", correlation_id=str(uuid.uuid4()), code="err.request.forbidden",
                            message="the programme's account may not disburse yet (sandbox "
                                    "#refuse-once)")

    def disburse(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Take a transaction (again: same answer, nothing new) and start working on it."""
        message, header = doc["message"], doc["header"]
        txn_id = message["transaction_id"]
        corr = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.config.partner}/{txn_id}"))
        if txn_id in self.transactions:
            self._count("transaction_repeated")
            return protocol.ack("ACK", correlation_id=corr)
        fresh, duplicates = [], []
        for d in message["disbursements"]:
            ref = d["reference_id"]
            if ref in self.items:
                duplicates.append(Item(reference_id=ref, transaction_id=txn_id, amount=d["amount"],
                                       currency_code="", outcome="rjct", silent=False,
                                       status="rjct", reason=protocol.DUPLICATE_REFERENCE))
                continue
            item = Item(reference_id=ref, transaction_id=txn_id, amount=d["amount"],
                        currency_code=d.get("currency_code", "VND"),
                        outcome=self.outcome(ref, d.get("purpose", "")),
                        silent=self.config.sandbox and "#silent" in d.get("purpose", ""))
            if item.currency_code != "VND":
                item.outcome, item.reason = "rjct", "rjct.currency_code.invalid"
            elif not AMOUNT.match(item.amount):
                item.outcome, item.reason = "rjct", "rjct.amount.invalid"
            self.items[ref] = item
            fresh.append(item)
        self.transactions[txn_id] = [i.reference_id for i in fresh]
        self._count("transactions")
        self._spawn(self.work(txn_id, fresh, duplicates, receiver=header["sender_id"],
                              base=self.callback_url or header.get("sender_uri", "")))
        return protocol.ack("ACK", correlation_id=corr)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def work(self, txn_id: str, items: list[Item], duplicates: list[Item], *,
                   receiver: str, base: str) -> None:
        """pdng (or rjct) after the accept delay, then succ (or rjct) after the settle delay."""
        await asyncio.sleep(self.config.accept_delay_s)
        for item in items:
            item.timestamp = protocol.now_ts()
            if item.outcome == "rjct":
                item.status = "rjct"
                item.reason = item.reason or "rjct.payee_fa.invalid"
                item.message = "payee's financial address not verified"
            else:
                item.status = "pdng"
        await self.call_back(base, "/on-disburse", txn_id, [*items, *duplicates],
                             receiver=receiver)
        await asyncio.sleep(self.config.settle_delay_s)
        for item in items:
            if item.status != "pdng":
                continue
            item.timestamp = protocol.now_ts()
            if item.outcome == "fail":
                item.status, item.reason = "rjct", "rjct.payee_fa.invalid"
                item.message = "payee absent at the transaction point"
            else:
                item.status = "succ"
                self.settlements[item.reference_id] = self.settlements.get(item.reference_id, 0) + 1
        await self.call_back(base, "/on-disburse", txn_id, [i for i in items if i.status != "rjct"
                                                           or i.outcome == "fail"],
                             receiver=receiver)

    def callback_body(self, path: str, txn_id: str, items: list[Item], *,
                      receiver: str) -> tuple[bytes, str]:
        """A signed on-disburse (or on-status) callback about these items."""
        done = sum(1 for i in items if i.status in ("succ", "rjct"))
        status = "succ" if done == len(items) else "pdng"
        header = protocol.callback_header(action="on-disburse", status=status,
                                          sender_id=self.config.partner, receiver_id=receiver,
                                          total_count=len(items), completed_count=done)
        response = {"transaction_id": txn_id,
                    "disbursements_status": [i.as_status() for i in items]}
        if path == "/on-disburse":
            return self.signer.body(header=header, message=response)
        corr = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.config.partner}/{txn_id}"))
        return self.signer.body(header=header, message={
            "transaction_id": txn_id, "correlation_id": corr,
            "txnstatus_response": {"txn_type": "on-disburse", "txn_status": response}})

    async def call_back(self, base: str, path: str, txn_id: str, items: list[Item], *,
                        receiver: str, poll: bool = False) -> None:
        """POST a callback (a few tries); silent items are told only when polled."""
        items = items if poll else [i for i in items if not i.silent]
        if not items or not base:
            return
        body, sig = self.callback_body(path, txn_id, items, receiver=receiver)
        log.info("calling back %s: %s", path, ", ".join(f"{i.reference_id[:8]} {i.status}"
                                                        f"{' ' + i.reason if i.reason else ''}"
                                                        for i in items))
        for attempt in range(5):
            try:
                r = await self.http.post(base.rstrip("/") + path, content=body, headers={
                    "Content-Type": "application/json", protocol.SIGNATURE_HEADER: sig})
                self._count(f"callback_{r.status_code}")
                if r.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                log.warning("callback %s failed: %s", path, exc)
            await asyncio.sleep(0.2 * 2 ** attempt)

    def txn_status(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Acknowledge a status request; answer it on /disburse/txn/on-status."""
        req = doc["message"]["txnstatus_request"]
        value = req["attribute_value"]
        refs = value if isinstance(value, list) else self.transactions.get(str(value), [])
        items = [self.items[r] for r in refs if r in self.items]
        self._count("status_requests")
        by_txn: dict[str, list[Item]] = {}
        for i in items:
            by_txn.setdefault(i.transaction_id, []).append(i)
        header = doc["header"]
        for txn_id, its in by_txn.items():
            self._spawn(self.call_back(self.callback_url or header.get("sender_uri", ""),
                                       "/disburse/txn/on-status", txn_id, its,
                                       receiver=header["sender_id"], poll=True))
        return protocol.ack("ACK" if items else "NACK", correlation_id=str(uuid.uuid4()))


def create_app(config: PartnerConfig, *, client_keys: Path = SANDBOX_CLIENT_KEYS) -> FastAPI:
    """The sandbox bank's HTTP API."""
    app = FastAPI(title=f"Sandbox bank {config.partner} (G2P Connect)")
    bank = SandboxBank(config, client_keys=client_keys)
    app.state.bank = bank

    log_bodies = os.environ.get("BANK_PARTNER_G2P_LOG_BODIES", "").lower() in ("1", "true")

    @app.post("/disburse")
    async def disburse(request: Request) -> JSONResponse:
        body = await request.body()
        doc, refused = bank.check("/disburse", body,
                                  request.headers.get(protocol.SIGNATURE_HEADER), "disburse")
        if log_bodies:  # sandbox only: what a G2P Connect request looks like
            log.info("received /disburse: %s", body.decode())
        if refused is not None:
            return refused
        refusal = bank.refusal(doc or {})
        if refusal is not None:
            return JSONResponse(refusal, status_code=403)
        return JSONResponse(bank.disburse(doc or {}))

    @app.post("/disburse/txn/status")
    async def txn_status(request: Request) -> JSONResponse:
        doc, refused = bank.check("/disburse/txn/status", await request.body(),
                                  request.headers.get(protocol.SIGNATURE_HEADER), "on-disburse")
        return refused or JSONResponse(bank.txn_status(doc or {}))

    @app.get("/health")
    @app.get("/ready")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "partner": config.partner, "kind": "g2p-connect",
                "items": len(bank.items), "counts": bank.counts,
                "settlements": sum(bank.settlements.values())}

    @app.get("/sandbox/items/{reference_id}")
    async def item(reference_id: str) -> JSONResponse:
        """What the sandbox bank holds for one reference id, and how often it paid it."""
        found = bank.items.get(reference_id)
        if found is None:
            return JSONResponse({"detail": "unknown reference_id"}, status_code=404)
        return JSONResponse({"reference_id": reference_id, "status": found.status,
                             "transaction_id": found.transaction_id,
                             "settlements": bank.settlements.get(reference_id, 0)})

    return app


def serve(config: PartnerConfig) -> None:
    """Run the sandbox bank on BANK_PARTNER_G2P_HOST:BANK_PARTNER_G2P_PORT (default
    127.0.0.1:8007; 0.0.0.0 in a container, where the gateway calls it) until SIGTERM."""
    import uvicorn

    port = int(os.environ.get("BANK_PARTNER_G2P_PORT", "8007"))
    host = os.environ.get("BANK_PARTNER_G2P_HOST", "127.0.0.1")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
