"""DCI social-registry search use cases: answer a search message in the caller's scope and view,
accept an asynchronous one, deliver its on-search callback (retried), report a transaction."""

from __future__ import annotations

import asyncio
import logging
import operator
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import dci_schemas as dci
from services.registry import schemas, tables
from services.registry.config import Settings
from services.registry.domain import dci as rules
from services.registry.handlers.common import (
    household_read,
    household_view,
    scope_clause,
)
from shared.auth import Principal
from shared.problems import Problem
from shared.runtime import Runtime

log = logging.getLogger("everydoor.registry.dci")

H, M = tables.household, tables.member
T, A = tables.dci_transaction, tables.dci_callback_attempt
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "gt": operator.gt, "lt": operator.lt, "ge": operator.ge,
    "le": operator.le}


def now_ts() -> str:
    """The current time as DCI timestamps are written."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- query: the checked criteria as SQLAlchemy (values bound, never spliced) -----------------

def _member_count() -> sa.ScalarSelect[Any]:
    return (sa.select(sa.func.count()).select_from(M)
            .where(M.c.household_id == H.c.id, M.c.removed_at.is_(None))
            .correlate(H).scalar_subquery())


def _column(attribute: str) -> Any:
    if attribute == "member_count":
        return _member_count()
    if attribute == "registration_date":
        return sa.cast(sa.func.timezone("UTC", H.c.created_at), sa.Date)
    return H.c[attribute]


def clause(node: rules.Node) -> sa.ColumnElement[bool]:
    """One node of the query tree as a WHERE clause."""
    if isinstance(node, rules.Bool):
        parts = [clause(p) for p in node.parts]
        if node.op == "not":
            return sa.not_(parts[0])
        return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
    column = _column(node.attribute)
    if node.operator == "in":
        return column.in_(list(node.value))
    return _COMPARE[node.operator](column, node.value)


def _filters(search: rules.Search, user: Principal) -> list[sa.ColumnElement[bool]]:
    where = [H.c.status == "active", scope_clause(user)]
    if search.id_type == "HOUSEHOLD_ID":
        where.append(H.c.id == search.id_value)
    elif search.id_type == "NATIONAL_ID" and search.entity == "Group":
        where.append(sa.exists().where(M.c.household_id == H.c.id, M.c.active,
                                       M.c.national_id == search.id_value))
    return where + [clause(n) for n in search.where]


def _order(search: rules.Search) -> list[Any]:
    keys = [(_column(a).desc() if desc else _column(a).asc()) for a, desc in search.sort]
    return [*keys, H.c.seq.asc()]


async def run_search(session: AsyncSession, *, search: rules.Search, user: Principal,
                     max_page_size: int) -> tuple[list[dict[str, Any]], dci.PageRead]:
    """The records of one search (Groups or Members) in the caller's scope and view, one page."""
    where = _filters(search, user)
    if search.entity == "Group":
        base = sa.select(H.c.id).where(*where)
        order = _order(search)
    else:
        base = (sa.select(H.c.id, M.c.id.label("member_id")).join(M, M.c.household_id == H.c.id)
                .where(*where, M.c.active))
        if search.id_type == "NATIONAL_ID":
            base = base.where(M.c.national_id == search.id_value)
        order = [*_order(search), M.c.position.asc()]
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
                or 0)
    size = search.page_size or max_page_size
    if search.page_size is None and total > max_page_size:
        raise rules.Rejected(rules.TOO_MANY, f"{total} records match; ask for pages "
                                             f"(pagination.page_size up to {max_page_size})")
    page = (await session.execute(base.order_by(*order).limit(size)
                                  .offset((search.page_number - 1) * size))).all()
    household_ids = list(dict.fromkeys(str(r[0]) for r in page))
    groups = await _groups(session, household_ids=household_ids, user=user)
    if search.entity == "Group":
        records = [groups[h] for h in household_ids]
    else:
        members = {m["@id"]: m for g in groups.values() for m in g["member_list"]}
        records = [members[member_urn(str(r.member_id))] for r in page]
    return records, dci.PageRead(page_size=size, page_number=search.page_number,
                                 total_count=total)


# --- records: a household as a DCI Group, a member as a Member (the REST API's views) --------

def member_urn(member_id: str) -> str:
    """A member's DCI @id."""
    return f"urn:everydoor:member:{member_id}"


def _identifier(kind: str, value: str) -> dict[str, str]:
    return {"@type": "Identifier", "identifier_type": kind, "identifier_value": value}


def _attributes(**values: Any) -> list[dict[str, Any]]:
    return [{"attribute_name": k, "attribute_value": v} for k, v in values.items()
            if v is not None]


def member_record(m: schemas.MemberRead | schemas.MemberReadMasked, *,
                  registered: str | None) -> dict[str, Any]:
    """A member as a DCI Member; readers get the masked national ID and the birth year only."""
    person: dict[str, Any] = {
        "@type": "SRPerson", "identifier": [_identifier("NATIONAL_ID", m.national_id)],
        "name": {"@type": "Name", **rules.split_name(m.full_name)}, "sex": m.sex}
    masked = isinstance(m, schemas.MemberReadMasked)
    if isinstance(m, schemas.MemberRead):
        person["birth_date"] = m.date_of_birth.isoformat()
    return {
        "@type": "spdci:Member", "@id": member_urn(m.member_id),
        "member_identifier": [_identifier("MEMBER_ID", m.member_id)],
        "demographic_info": person, "relationship_head": m.relation,
        "is_disabled": m.disability, "registration_date": registered,
        "additional_attributes": _attributes(
            full_name=m.full_name, ethnicity=m.ethnicity,
            birth_year=m.birth_year if isinstance(m, schemas.MemberReadMasked) else None,
            access="masked" if masked else "full"),
    }


def group_record(read: schemas.HouseholdRead | schemas.HouseholdReadMasked) -> dict[str, Any]:
    """A household (in the caller's view) as a DCI Group with its current members."""
    registered = read.created_at.isoformat() if read.created_at else None
    members = [member_record(m, registered=registered) for m in read.members]
    head = next((r for m, r in zip(read.members, members, strict=True) if m.relation == "head"),
                None)
    identifiers = [_identifier("HOUSEHOLD_ID", read.household_id)]
    if read.external_ref:
        identifiers.append(_identifier("EXTERNAL_REF", read.external_ref))
    loc = read.location
    return {
        "@type": "spdci:Group", "@id": f"urn:everydoor:household:{read.household_id}",
        "group_identifier": identifiers, "group_type": "household",
        "group_size": len(members),
        "place": {"@type": "Place", "address": read.address,
                  "contained_in_place": f"{loc.village}, {loc.commune_code}, "
                                        f"{loc.province_code}"},
        "group_head_info": head, "member_list": members,
        "registration_date": registered,
        "last_updated": read.updated_at.isoformat() if read.updated_at else None,
        "additional_attributes": _attributes(
            province_code=loc.province_code, commune_code=loc.commune_code,
            village=loc.village, area_type=read.area_type, status=read.status,
            version=read.version, access=read.access),
    }


async def _groups(session: AsyncSession, *, household_ids: Sequence[str],
                  user: Principal) -> dict[str, dict[str, Any]]:
    if not household_ids:
        return {}
    rows = (await session.execute(sa.select(H).where(H.c.id.in_(household_ids)))).mappings()
    members: dict[str, list[Any]] = {h: [] for h in household_ids}
    for m in (await session.execute(sa.select(M).where(M.c.household_id.in_(household_ids))
                                    .order_by(M.c.household_id, M.c.position))).mappings():
        members[str(m["household_id"])].append(m)
    return {str(r["id"]): group_record(household_view(household_read(r, members[str(r["id"])]),
                                                      user))
            for r in rows}


# --- messages --------------------------------------------------------------------------------

def _rejected(item: dict[str, Any], exc: rules.Rejected) -> dci.SearchResponseItem:
    return dci.SearchResponseItem(
        reference_id=str(item.get("reference_id") or ""), timestamp=now_ts(), status="rjct",
        status_reason_code=exc.code, status_reason_message=exc.message[:999],
        locale=item.get("locale"))


async def answer_item(session: AsyncSession, *, item: dict[str, Any], user: Principal,
                      settings: Settings, duplicate: bool) -> dci.SearchResponseItem:
    """One search request answered: its records (`succ`) or a reason code (`rjct`)."""
    try:
        if not item.get("reference_id"):
            raise rules.Rejected(rules.REFERENCE_ID_INVALID, "reference_id is required")
        if duplicate:
            raise rules.Rejected(rules.REFERENCE_ID_DUPLICATE,
                                 "reference_id occurs more than once in this message")
        if rules.parse_ts(item.get("timestamp")) is None:
            raise rules.Rejected(rules.TIMESTAMP_INVALID,
                                 "timestamp is an ISO 8601 time with its zone")
        search = rules.criteria(item.get("search_criteria"),
                                max_page_size=settings.dci_max_page_size)
        records, page = await run_search(session, search=search, user=user,
                                         max_page_size=settings.dci_max_page_size)
    except rules.Rejected as exc:
        return _rejected(item, exc)
    return dci.SearchResponseItem(
        reference_id=item["reference_id"], timestamp=now_ts(), status="succ",
        data=dci.SearchResult(reg_records=records), pagination=page, locale=item.get("locale"))


async def answer_message(session: AsyncSession, *, message: dict[str, Any], user: Principal,
                         settings: Settings, correlation_id: str) -> dci.SearchResponse:
    """Every search request of a message answered, in order."""
    items = list(message.get("search_request") or [])
    twice = rules.duplicates([i.get("reference_id") for i in items])
    return dci.SearchResponse(
        transaction_id=message["transaction_id"], correlation_id=correlation_id,
        search_response=[await answer_item(session, item=i, user=user, settings=settings,
                                           duplicate=i.get("reference_id") in twice)
                         for i in items])


def answer_header(*, settings: Settings, receiver_id: str | None, action: str,
                  response: dci.SearchResponse | None,
                  rejected: rules.Rejected | None = None) -> dci.CallbackHeader:
    """The callback header: `succ` when a search succeeded, `rjct` otherwise."""
    items = response.search_response if response else []
    ok = any(i.status == "succ" for i in items)
    return dci.CallbackHeader(
        message_id=str(uuid.uuid4()), message_ts=now_ts(), action=action,
        status="succ" if ok and rejected is None else "rjct",
        status_reason_code=rejected.code if rejected else None,
        status_reason_message=rejected.message if rejected else None,
        total_count=len(items), completed_count=sum(i.status != "pdng" for i in items),
        sender_id=settings.dci_registry_id, receiver_id=receiver_id)


async def sync_search(session: AsyncSession, *, envelope: dci.SearchEnvelope, user: Principal,
                      settings: Settings) -> dci.SearchAnswer:
    """POST /registry/sync/search: the answer in the response."""
    message = envelope.message.model_dump(mode="json", exclude_none=True)
    correlation_id = str(uuid.uuid4())
    problem = rules.header_problem(envelope.header.model_dump(), request_count=len(
        envelope.message.search_request), max_requests=settings.dci_max_requests)
    response = dci.SearchResponse(transaction_id=envelope.message.transaction_id,
                                  correlation_id=correlation_id, search_response=[])
    if problem is None:
        response = await answer_message(session, message=message, user=user, settings=settings,
                                        correlation_id=correlation_id)
    return dci.SearchAnswer(header=answer_header(
        settings=settings, receiver_id=envelope.header.sender_id, action="on-search",
        response=response, rejected=problem), message=response)


def _ack(correlation_id: str, *, error: tuple[str, str] | None = None) -> dci.AckAnswer:
    return dci.AckAnswer(message=dci.Ack(
        ack_status="ERR" if error else "ACK", timestamp=now_ts(), correlation_id=correlation_id,
        error=dci.AckError(code=error[0], message=error[1]) if error else None))


def callback_allowed(uri: str | None, settings: Settings) -> bool:
    """Whether the sender's callback URI starts with one of the configured prefixes."""
    return uri is not None and any(p and uri.startswith(p)
                                   for p in settings.dci_callback_prefixes)


async def accept(session: AsyncSession, *, envelope: dci.SearchEnvelope, user: Principal,
                 settings: Settings) -> tuple[int, dci.AckAnswer]:
    """POST /registry/search: record the transaction (the callback is owed) and ACK it; the same
    sender's same message_id again answers the first correlation_id."""
    header = envelope.header
    if not callback_allowed(header.sender_uri, settings):
        return 400, _ack("", error=("err.sender_uri.invalid",
                                    "sender_uri is missing or not an allowed callback address"))
    problem = rules.header_problem(header.model_dump(), request_count=len(
        envelope.message.search_request), max_requests=settings.dci_max_requests)
    if problem is not None:
        code = ("err.version.not_supported" if problem.code == rules.VERSION_INVALID
                else "err.request.bad")
        return 400, _ack("", error=(code, f"{problem.code}: {problem.message}"))
    new_id = str(uuid.uuid4())
    inserted = await session.scalar(insert(T).values(
        id=new_id, transaction_id=envelope.message.transaction_id, message_id=header.message_id,
        sender_id=header.sender_id, sender_uri=header.sender_uri, caller_sub=user.sub,
        caller_role=user.role, caller_scope=list(user.scope),
        request=envelope.message.model_dump(mode="json", exclude_none=True),
    ).on_conflict_do_nothing().returning(T.c.id))
    if inserted is None:
        inserted = await session.scalar(sa.select(T.c.id).where(
            T.c.sender_id == header.sender_id, T.c.message_id == header.message_id,
            T.c.caller_sub == user.sub))
        if inserted is None:
            return 400, _ack("", error=("err.request.bad",
                                        "rjct.message_id.duplicate: message_id already used"))
    return 202, _ack(str(inserted))


async def txn_status(session: AsyncSession, *, envelope: dci.TxnStatusEnvelope,
                     user: Principal, settings: Settings) -> dci.TxnStatusAnswer:
    """POST /registry/txn/status: an asynchronous search's answer (or `pdng` items) — only to
    the caller who sent it (404 otherwise, as for any record outside one's reach)."""
    query = envelope.message.txnstatus_request
    column = T.c.transaction_id if query.attribute_type == "transaction_id" else T.c.id
    if query.attribute_type == "correlation_id":
        try:
            uuid.UUID(query.attribute_value)
        except ValueError:
            raise Problem(404, f"no transaction {query.attribute_value}") from None
    row = (await session.execute(sa.select(T).where(
        column == query.attribute_value, T.c.caller_sub == user.sub)
        .order_by(T.c.created_at.desc()).limit(1))).mappings().first()
    if row is None:
        raise Problem(404, f"no transaction {query.attribute_value}")
    if row["response"] is not None:
        response = dci.SearchResponse.model_validate(row["response"])
    else:
        response = dci.SearchResponse(
            transaction_id=row["transaction_id"], correlation_id=str(row["id"]),
            search_response=[dci.SearchResponseItem(
                reference_id=i["reference_id"], timestamp=now_ts(), status="pdng")
                for i in row["request"]["search_request"]])
    header = answer_header(settings=settings, receiver_id=envelope.header.sender_id,
                           action="txn-on-status", response=response)
    if row["response"] is None:
        header.status = "pdng"
    return dci.TxnStatusAnswer(header=header, message=dci.TxnStatusResponse(
        transaction_id=envelope.message.transaction_id, correlation_id=str(row["id"]),
        txnstatus_response=dci.TxnStatusResult(txn_status=response)))


# --- the on-search callback (a supervised background task; state in dci_transaction) --------

async def _claim(rt: Runtime, *, lease_s: float, limit: int = 10) -> list[Any]:
    """Due transactions, leased so another replica (or a restart) takes them only later."""
    async with rt.transaction() as session:
        rows = list((await session.execute(
            sa.select(T).where(T.c.delivery == "pending", T.c.next_attempt_at <= sa.func.now())
            .order_by(T.c.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
        )).mappings().all())
        if rows:
            await session.execute(sa.update(T).where(T.c.id.in_([r["id"] for r in rows])).values(
                next_attempt_at=sa.func.now() + timedelta(seconds=lease_s)))
    return rows


async def _answer(rt: Runtime, row: Any, settings: Settings) -> dict[str, Any]:
    """The transaction's answer, computed once with the caller's role and scope of the time."""
    if row["response"] is not None:
        return dict(row["response"])
    user = Principal(sub=row["caller_sub"], role=row["caller_role"],
                     scope=tuple(row["caller_scope"]))
    async with rt.snapshot() as session:
        response = await answer_message(session, message=row["request"], user=user,
                                        settings=settings, correlation_id=str(row["id"]))
    body = response.model_dump(mode="json", exclude_none=True)
    status = "succ" if any(i.status == "succ" for i in response.search_response) else "rjct"
    async with rt.transaction() as session:
        await session.execute(sa.update(T).where(T.c.id == row["id"]).values(
            response=body, status=status, updated_at=sa.func.now()))
    return body


async def deliver(rt: Runtime, row: Any, *, client: httpx.AsyncClient) -> bool:
    """One on-search attempt, recorded; the next one scheduled with backoff, or given up."""
    settings = rt.settings
    assert isinstance(settings, Settings)
    response = dci.SearchResponse.model_validate(await _answer(rt, row, settings))
    body = dci.SearchAnswer(header=answer_header(
        settings=settings, receiver_id=row["sender_id"], action="on-search", response=response),
        message=response).model_dump(mode="json", exclude_none=True)
    url = row["sender_uri"].rstrip("/") + "/registry/on-search"
    status: int | None = None
    error: str | None = None
    try:
        answer = await client.post(url, json=body)
        status = answer.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {answer.text[:300]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    attempt = row["attempts"] + 1
    ok = error is None
    values: dict[str, Any] = {"attempts": attempt, "updated_at": sa.func.now()}
    if ok:
        values.update(delivery="delivered", delivered_at=sa.func.now())
    elif attempt >= settings.dci_callback_max_attempts:
        values["delivery"] = "failed"
        log.warning("DCI on-search to %s for %s given up after %d attempts: %s", url,
                    row["id"], attempt, error)
    else:
        wait = rules.backoff_s(attempt, base_s=settings.dci_callback_backoff_s,
                               max_s=settings.dci_callback_backoff_max_s)
        values["next_attempt_at"] = sa.func.now() + timedelta(seconds=wait)
    async with rt.transaction() as session:
        await session.execute(sa.insert(A).values(
            transaction_id=row["id"], attempt=attempt, url=url, http_status=status, error=error,
            delivered=ok))
        await session.execute(sa.update(T).where(T.c.id == row["id"]).values(**values))
    return ok


async def callbacks(rt: Runtime) -> None:
    """Deliver owed on-search callbacks forever (pending ones survive a restart)."""
    settings = rt.settings
    assert isinstance(settings, Settings)
    lease = settings.dci_callback_timeout_s * 2 + 30
    async with httpx.AsyncClient(timeout=settings.dci_callback_timeout_s,
                                 follow_redirects=False) as client:
        while True:
            rows = await _claim(rt, lease_s=lease)
            for row in rows:
                await deliver(rt, row, client=client)
            if not rows:
                await asyncio.sleep(settings.dci_poll_interval_s)
