"""The gateway's HTTP side: the partner's G2P Connect callbacks, health and readiness."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.g2p_gateway.gateway import Answer, Gateway
from shared.problems import problem_response

router = APIRouter()

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


@router.get("/health", tags=["ops"])
async def health(request: Request) -> dict[str, Any]:
    """Counters: instructions, transactions, callbacks, statuses published."""
    return _gateway(request).health()


@router.get("/ready", tags=["ops"])
async def ready(request: Request) -> JSONResponse:
    """200 once consuming and producing."""
    ok = _gateway(request).started.is_set()
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)
