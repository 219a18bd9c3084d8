"""DCI social-registry search routes (spdci social_api v1.0.0 subset, docs/dci.md)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.registry import dci_schemas as dci
from services.registry.api.common import reader
from services.registry.config import Settings
from services.registry.handlers import dci as handlers
from shared.auth import CurrentUser
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/registry", tags=["dci"])


def _settings(rt: RuntimeDep) -> Settings:
    settings = rt.settings
    assert isinstance(settings, Settings)
    return settings


@router.post("/sync/search", response_model=dci.SearchAnswer, response_model_exclude_none=True,
             dependencies=[reader])
async def sync_search(body: dci.SearchEnvelope, rt: RuntimeDep,
                      user: CurrentUser) -> dci.SearchAnswer:
    """Search households (Groups) or members by NATIONAL_ID / HOUSEHOLD_ID or by predicates on
    location, area type, member count and registration date; the answer in the response, each
    search `succ` with `reg_records` and `pagination`, or `rjct` with a reason code. Only
    households inside your scope; commune chairs, supervisors and auditors get masked national
    IDs and birth years."""
    async with rt.snapshot() as session:
        return await handlers.sync_search(session, envelope=body, user=user,
                                          settings=_settings(rt))


@router.post("/search", status_code=202, response_model=dci.AckAnswer,
             response_model_exclude_none=True, dependencies=[reader],
             responses={400: {"model": dci.AckAnswer, "description": (
                 "ERR: not accepted (a DCI acknowledgement); a body that cannot be read at all "
                 "is a problem+json"), "content": problem_responses(400)[400]["content"]}})
async def search(body: dci.SearchEnvelope, rt: RuntimeDep, user: CurrentUser,
                 response: Response) -> dci.AckAnswer:
    """Accept a search (ACK with a `correlation_id`); the answer goes to
    `POST {header.sender_uri}/registry/on-search`, retried with backoff. `sender_uri` must start
    with a configured prefix (`REGISTRY_DCI_CALLBACK_PREFIXES`), else ERR
    `err.sender_uri.invalid`. Resending the same `message_id` answers the same `correlation_id`."""
    async with rt.transaction() as session:
        status, ack = await handlers.accept(session, envelope=body, user=user,
                                            settings=_settings(rt))
    response.status_code = status
    return ack


@router.post("/txn/status", response_model=dci.TxnStatusAnswer,
             response_model_exclude_none=True, dependencies=[reader],
             responses=problem_responses(404, s404="no such transaction of yours"))
async def txn_status(body: dci.TxnStatusEnvelope, rt: RuntimeDep,
                     user: CurrentUser) -> dci.TxnStatusAnswer:
    """An asynchronous search's status by `transaction_id` or `correlation_id`, answered here
    (not via `/registry/txn/on-status`): its search responses once computed, `pdng` before.
    Only the caller who sent it sees it (404 otherwise)."""
    async with rt.snapshot() as session:
        return await handlers.txn_status(session, envelope=body, user=user,
                                         settings=_settings(rt))
