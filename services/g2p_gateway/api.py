"""The gateway's HTTP side: the partner's G2P Connect callbacks, operator endpoints (transactions
the bank refused or left unanswered, their retry, the audit log), health and readiness."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from services.g2p_gateway.gateway import Answer, Gateway
from services.g2p_gateway.schemas import RetryRead, TransactionRead, TransactionState
from services.g2p_gateway.state import RETRYABLE
from shared import problems
from shared.audit import OperatorActionRead, ReasonQ
from shared.auth import Principal, require_role
from shared.outbox import CORRELATION_ID
from shared.problems import problem_response

router = APIRouter()
ops = APIRouter(prefix="/v1/ops", tags=["operations"])
Operator = Annotated[Principal, require_role("national_admin")]
Limit = Annotated[int, Query(ge=1, le=1000)]

ACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "ACK (statuses published) or NACK (nothing of ours in it)"},
    400: {"description": "ERR with the spec's error code (err.request.bad, "
                         "err.version.not_supported, err.sender_id.invalid, …); nothing applied"},
    401: {"description": "problem+json: no Signature, or one that does not verify with the "
                         "partner's registered keys (code err.signature.missing|invalid); "
                         "nothing applied",
          "content": {"application/problem+json": {}}},
}
SignatureHeader = Annotated[str | None, Header(alias="Signature", description=(
    "Detached compact JWS (RFC 7515 App. F, EdDSA, kid of a partner key) over the body bytes"))]


def _body(path: str) -> dict[str, Any]:
    """The request body as the spec defines it (a reference into the vendored spec)."""
    pointer = path.replace("/", "~1")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "$ref": "../../schemas/g2p-connect/disburse/disburse_core_api_v1.0.0.yaml#/paths/"
                f"{pointer}/post/requestBody/content/application~1json/schema"}}}}}


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _answer(request: Request, answer: Answer) -> JSONResponse:
    if answer.problem:
        return problem_response(request, answer.status, answer.body["detail"],
                                code=answer.body["code"])
    return JSONResponse(answer.body, status_code=answer.status)


@router.post("/on-disburse", responses=ACK_RESPONSES, summary="Disburse results (callback)",
             tags=["G2P Connect callbacks"], openapi_extra=_body("/on-disburse"))
async def on_disburse(request: Request, signature: SignatureHeader = None) -> JSONResponse:
    """The partner's `on-disburse` callback: item statuses (rcvd|pdng|succ|rjct) of a
    transaction, mapped to instruction statuses on `disbursement.status.<partner>`."""
    body = await request.body()
    return _answer(request, await _gateway(request).callback("/on-disburse", body, signature))


@router.post("/disburse/txn/on-status", responses=ACK_RESPONSES,
             summary="Transaction status (callback of a poll)", tags=["G2P Connect callbacks"],
             openapi_extra=_body("/disburse/txn/on-status"))
async def on_status(request: Request, signature: SignatureHeader = None) -> JSONResponse:
    """The answer to our `/disburse/txn/status` poll, applied like `on-disburse`."""
    body = await request.body()
    return _answer(request, await _gateway(request).callback("/disburse/txn/on-status", body,
                                                             signature))


@ops.get("/g2p/transactions", response_model=list[TransactionRead],
         dependencies=[require_role("national_admin", "auditor")])
async def list_transactions(
        request: Request,
        state: Annotated[list[TransactionState] | None, Query(
            description="states to list (default: refused and unanswered, the ones an "
                        "operator may retry)")] = None,
        limit: Limit = 100) -> list[TransactionRead]:
    """Transactions the bank refused (NACK/ERR on `/disburse`) or left unanswered (no
    callback after `G2P_GATEWAY_MAX_UNANSWERED_POLLS` polls), oldest first, with their
    instructions and the bank's answer."""
    gateway = _gateway(request)
    found = gateway.transactions(tuple(state or RETRYABLE))[:limit]
    return [TransactionRead.of(k, t, gateway.state) for k, t in found]


@ops.post("/g2p/transactions/{transaction_id}/retry", response_model=RetryRead)
async def retry_transaction(request: Request, transaction_id: Annotated[uuid.UUID, Path()],
                            user: Operator, reason: ReasonQ) -> RetryRead:
    """Send a refused or unanswered transaction's instructions that have no final status
    again, as a new transaction with a new message id. Never pays twice: the bank's
    idempotency key is the instruction id (`reference_id`), unchanged. 404 for an unknown
    transaction, 409 for one not refused or unanswered. Recorded in the operator audit log
    (`GET /v1/ops/audit`) with who and why, refusals too."""
    gateway = _gateway(request)
    txn_id = str(transaction_id)
    refused: problems.Problem | None = None
    try:
        new_id, new = await gateway.retry(txn_id)
    except LookupError:
        refused = problems.Problem(404, f"no transaction {txn_id}")
    except ValueError as exc:
        refused = problems.Problem(409, str(exc))
    result = None if refused else RetryRead(transaction_id=txn_id, retried_as=new_id,
                                            message_id=new.message_id,
                                            references=list(new.references))
    gateway.audit.record(
        actor=user.sub, role=user.role, action="g2p.transaction.retry",
        target=f"transaction {txn_id}", reason=reason,
        outcome={"refused": refused.detail} if refused else result.model_dump(),  # type: ignore[union-attr]
        correlation_id=getattr(request.state, "correlation_id", None) or CORRELATION_ID.get())
    if refused is not None:
        raise refused
    assert result is not None
    return result


@ops.get("/audit", response_model=list[OperatorActionRead],
         dependencies=[require_role("national_admin", "auditor")])
async def operator_audit(request: Request, action: str | None = None, actor: str | None = None,
                         before_id: int | None = None,
                         limit: Limit = 100) -> list[OperatorActionRead]:
    """The gateway's operator audit log, newest first: who (token `sub` and role), when, which
    action on what, why, and the outcome. Page with `before_id`."""
    entries = _gateway(request).audit.listing(action=action, actor=actor, before_id=before_id,
                                              limit=limit)
    return [OperatorActionRead.model_validate(e) for e in entries]


@router.get("/health", tags=["ops"])
async def health(request: Request) -> dict[str, Any]:
    """Counters: instructions, transactions, callbacks, statuses published."""
    return _gateway(request).health()


@router.get("/ready", tags=["ops"])
async def ready(request: Request) -> JSONResponse:
    """200 once consuming and producing."""
    ok = _gateway(request).started.is_set()
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)
