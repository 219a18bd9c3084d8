"""Posting routes: create (snapshot), read, list, close, approve."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from services.supervision import schemas
from services.supervision.api.common import HANDLERS, OFFICERS, CommuneQ, read_role
from services.supervision.handlers import postings, service_of
from services.supervision.schemas import PostingApprove, PostingClose, PostingCreate
from shared.auth import CurrentUser, require_role
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1/postings", tags=["postings"])


@router.post("", status_code=201, dependencies=[require_role(*OFFICERS)],
             response_model=schemas.PostingRead, responses=problem_responses(
                 404, 409, s404="the commune is outside your scope",
                 s409="the commune already has an open posting for the round"))
async def create_posting(body: PostingCreate, rt: RuntimeDep, user: CurrentUser,
                         response: Response) -> dict:
    """Snapshot the commune's provisional classifications of the round into a public posting
    (3 working days by default; `closes_at` overrides)."""
    async with rt.transaction() as session:
        posting_id = await postings.create(session, service_of(rt), user=user, body=body)
    response.headers["Location"] = f"/v1/postings/{posting_id}"
    async with rt.sessions() as session:
        out = await postings.read(session, user=user, posting_id=posting_id)
    out["public_url"] = f"/public/postings/{posting_id}"
    return out


@router.get("", dependencies=[read_role], response_model=list[schemas.PostingSummary])
async def list_postings(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                        status: Literal["open", "closed", "approved"] | None = None) -> list[dict]:
    """Postings in your scope, newest first."""
    async with rt.snapshot() as session:
        return await postings.listing(session, user=user, commune_code=commune_code,
                                      status=status)


@router.get("/{posting_id}", dependencies=[read_role], response_model=schemas.PostingRead)
async def read_posting(posting_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """A posting with its households and complaint counts."""
    async with rt.snapshot() as session:
        return await postings.read(session, user=user, posting_id=posting_id)


@router.post("/{posting_id}/close", dependencies=[require_role(*HANDLERS)],
             response_model=schemas.PostingRead, responses=problem_responses(
                 403, 409, s403="your role may not do this, or the window is still open "
                                "(`window_open`: only a national admin, with a reason)",
                 s409="the posting is already closed or approved"))
async def close_posting(posting_id: str, rt: RuntimeDep, user: CurrentUser,
                        body: PostingClose | None = None) -> dict:
    """End the public window: once it is over (before the closing job does), or earlier by a
    national admin with a reason (403 `window_open` for anyone else)."""
    async with rt.transaction() as session:
        await postings.close(session, service_of(rt), user=user, posting_id=posting_id,
                             reason=body.reason if body else None)
    async with rt.sessions() as session:
        return await postings.read(session, user=user, posting_id=posting_id, with_items=False)


@router.post("/{posting_id}/approve", dependencies=[require_role("commune_chair")],
             response_model=schemas.PostingRead, responses=problem_responses(
                 409, s409="already approved, still open, or complaints are neither resolved "
                           "nor carried over"))
async def approve_posting(posting_id: str, rt: RuntimeDep, user: CurrentUser,
                          body: PostingApprove | None = None) -> dict:
    """The commune chair approves the list (every complaint resolved or carried over):
    `supervision.posting.approved` lets eligibility recognise the classifications."""
    async with rt.transaction() as session:
        await postings.approve(session, service_of(rt), user=user, posting_id=posting_id,
                               body=body or PostingApprove())
    async with rt.sessions() as session:
        return await postings.read(session, user=user, posting_id=posting_id, with_items=False)
