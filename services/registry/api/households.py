"""Household routes: register, read, list, change, members, surveys, history, archive."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.registry import schemas
from services.registry.api.common import IfMatch, IfMatchRequired, etag, reader, writer
from services.registry.handlers import households, members, surveys
from shared.auth import CurrentUser
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1/households", tags=["households"])
ReasonQ = Annotated[str, Query(min_length=3, max_length=1000, description="why (kept in history)")]
TAKEN = "a member's national ID or the external_ref is already registered"
ARCHIVED = "the household is archived, or a national ID is already registered"
# A change under If-Match: archived or taken (409), stale (412), without If-Match (428).
GUARDED = problem_responses(409, 412, 428, s409=ARCHIVED)


@router.post("", status_code=201, response_model=schemas.HouseholdRead, dependencies=[writer],
             responses=problem_responses(403, 409, s403="the commune is outside your scope",
                                         s409=TAKEN))
async def register_household(body: schemas.HouseholdCreate, rt: RuntimeDep, user: CurrentUser,
                             response: Response) -> schemas.HouseholdRead:
    """Register a household; publishes `registry.household.registered.v1`.

    409 when a member's national ID is already held by an active member (the household is named
    only if it is inside your scope) or the `external_ref` is taken."""
    async with rt.transaction() as session:
        read = await households.register(session=session, outbox=rt.outbox, body=body, user=user)
    etag(response, read.version)
    response.headers["Location"] = f"/v1/households/{read.household_id}"
    return read


@router.get("", response_model=schemas.HouseholdPage, dependencies=[reader])
async def list_households(
        rt: RuntimeDep, user: CurrentUser,
        commune_code: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
        village: Annotated[str | None, Query(max_length=200)] = None,
        area_type: Literal["rural", "urban"] | None = None,
        status: Literal["active", "archived"] | None = None,
        q: Annotated[str | None, Query(max_length=200, description=(
            "member names, diacritics optional: 'nguyen van a' finds 'Nguyễn Văn A'"))] = None,
        verification_requested: bool | None = None,
        possible_duplicate: bool | None = None,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50) -> schemas.HouseholdPage:
    """Households in your scope, in registration order; follow `next_cursor` for more. Items are
    in your view: `full` for officers, `masked` for commune chairs, supervisors and auditors."""
    async with rt.snapshot() as session:
        return await households.search(
            session=session, user=user, commune_code=commune_code, village=village,
            area_type=area_type, status=status, q=q,
            verification_requested=verification_requested,
            possible_duplicate=possible_duplicate, cursor=cursor, limit=limit)


@router.get("/{household_id}", response_model=schemas.HouseholdView, dependencies=[reader])
async def get_household(household_id: str, rt: RuntimeDep, user: CurrentUser, response: Response,
                        ) -> schemas.HouseholdRead | schemas.HouseholdReadMasked:
    """One household with its current survey (404 when unknown or outside your scope).

    Officers get the `full` view; commune chairs, supervisors and auditors the `masked` one
    (national IDs to their last 3 digits, birth years instead of dates, no phone)."""
    async with rt.snapshot() as session:
        read = await households.get(session=session, household_id=household_id, user=user)
    etag(response, read.version)
    return read


@router.patch("/{household_id}", response_model=schemas.HouseholdRead, dependencies=[writer],
              responses=GUARDED)
async def update_household(household_id: str, body: schemas.HouseholdUpdate, rt: RuntimeDep,
                           user: CurrentUser, response: Response,
                           if_match: IfMatchRequired) -> schemas.HouseholdRead:
    """Change fields (If-Match required, 412 when stale); publishes `household.updated`."""
    async with rt.transaction() as session:
        read = await households.update(session=session, outbox=rt.outbox,
                                       household_id=household_id, body=body, if_match=if_match,
                                       user=user)
    etag(response, read.version)
    return read


@router.post("/{household_id}/archive", response_model=schemas.HouseholdRead,
             dependencies=[writer], responses=problem_responses(
                 409, 412, s409="the household is already archived"))
async def archive_household(household_id: str, body: schemas.Archive, rt: RuntimeDep,
                            user: CurrentUser, response: Response,
                            if_match: IfMatch = None) -> schemas.HouseholdRead:
    """Archive (moved, dissolved, deceased head…); publishes `household.archived`."""
    async with rt.transaction() as session:
        read = await households.archive(session=session, outbox=rt.outbox,
                                        household_id=household_id, body=body, if_match=if_match,
                                        user=user)
    etag(response, read.version)
    return read


@router.get("/{household_id}/history", response_model=list[schemas.HistoryEntry],
            dependencies=[reader])
async def household_history(household_id: str, rt: RuntimeDep,
                            user: CurrentUser) -> list[schemas.HistoryEntry]:
    """Every version: field-level before/after, actor, reason, time, and the event it produced.
    For commune chairs, supervisors and auditors a change of a national ID, birth date or phone
    shows masked values (`redacted: true`)."""
    async with rt.snapshot() as session:
        return await households.history(session=session, household_id=household_id, user=user)


@router.post("/{household_id}/members", status_code=201, response_model=schemas.HouseholdRead,
             dependencies=[writer], responses=GUARDED)
async def add_member(household_id: str, body: schemas.MemberAdd, rt: RuntimeDep,
                     user: CurrentUser, response: Response,
                     if_match: IfMatchRequired) -> schemas.HouseholdRead:
    """Add a member (If-Match required); publishes `household.member_added`."""
    async with rt.transaction() as session:
        read = await members.add(session=session, outbox=rt.outbox, household_id=household_id,
                                 body=body, if_match=if_match, user=user)
    etag(response, read.version)
    return read


@router.patch("/{household_id}/members/{member_id}", response_model=schemas.HouseholdRead,
              dependencies=[writer], responses=GUARDED)
async def edit_member(household_id: str, member_id: str, body: schemas.MemberUpdate,
                      rt: RuntimeDep, user: CurrentUser, response: Response,
                      if_match: IfMatchRequired) -> schemas.HouseholdRead:
    """Change a member (If-Match required); publishes `household.member_updated`."""
    async with rt.transaction() as session:
        read = await members.edit(session=session, outbox=rt.outbox, household_id=household_id,
                                  member_id=member_id, body=body, if_match=if_match, user=user)
    etag(response, read.version)
    return read


@router.delete("/{household_id}/members/{member_id}", response_model=schemas.HouseholdRead,
               dependencies=[writer], responses=GUARDED)
async def remove_member(household_id: str, member_id: str, reason: ReasonQ, rt: RuntimeDep,
                        user: CurrentUser, response: Response,
                        if_match: IfMatchRequired) -> schemas.HouseholdRead:
    """Remove a member, not the head (If-Match and `reason` required); publishes
    `household.member_removed`."""
    async with rt.transaction() as session:
        read = await members.remove(session=session, outbox=rt.outbox, household_id=household_id,
                                    member_id=member_id, reason=reason, if_match=if_match,
                                    user=user)
    etag(response, read.version)
    return read


@router.post("/{household_id}/surveys", status_code=201, response_model=schemas.SurveyRead,
             dependencies=[writer], responses=problem_responses(
                 409, 412, s409="the household is archived"))
async def add_survey(household_id: str, body: schemas.SurveyCreate, rt: RuntimeDep,
                     user: CurrentUser, if_match: IfMatch = None) -> schemas.SurveyRead:
    """Record an immutable survey; the newest by `survey_date` is current. Publishes
    `household.surveyed` (and `verification_resolved` when a verification was pending)."""
    async with rt.transaction() as session:
        return await surveys.add(session=session, outbox=rt.outbox, household_id=household_id,
                                 body=body, if_match=if_match, user=user)


@router.get("/{household_id}/surveys", response_model=list[schemas.SurveyRead],
            dependencies=[reader])
async def list_surveys(household_id: str, rt: RuntimeDep,
                       user: CurrentUser) -> list[schemas.SurveyRead]:
    """Every survey, newest `survey_date` first."""
    async with rt.snapshot() as session:
        return await surveys.list_surveys(session=session, household_id=household_id, user=user)
