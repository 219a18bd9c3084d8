"""DCI social-registry API models (spdci/standards social_api v1.0.0, the subset in docs/dci.md).

Structure only: a field of the wrong JSON type answers 422; what the registry cannot do with a
well-formed request (an unknown attribute, a bad page…) is a per-request `rjct` reason code."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Text99 = Field(min_length=1, max_length=99)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MsgHeader(_Open):
    """MsgHeader_V1.0.0: who sends what, when; `total_count` is the number of search requests."""

    version: str = "1.0.0"
    message_id: str = Text99
    message_ts: str = Field(description="ISO 8601 with its zone", examples=["2026-01-05T10:00:00Z"])
    action: str = Field(examples=["search"])
    sender_id: str = Field(min_length=1, max_length=200)
    sender_uri: str | None = Field(default=None, max_length=2000,
                                   description="async: where POST {sender_uri}/registry/on-search "
                                               "goes (must match an allowed prefix)")
    receiver_id: str | None = Field(default=None, max_length=200)
    total_count: int
    is_msg_encrypted: bool = False
    meta: dict[str, Any] | None = None


class SearchCriteria(_Open):
    """What to find; checked by the registry (an unsupported part is `rjct.search_criteria.invalid`,
    `rjct.sort.invalid` or `rjct.pagination.invalid`)."""

    version: str | None = None
    reg_event_type: str | None = None
    query_type: str | None = Field(default=None, description="idtype-value or predicate")
    response_entity: str | None = Field(default=None, description="Group (default) or Member")
    query: Any = None
    sort: Any = None
    pagination: Any = None
    consent: dict[str, Any] | None = None
    authorize: dict[str, Any] | None = None


class SearchRequestItem(_Open):
    """One search of a batch."""

    reference_id: str = Field(max_length=99)
    timestamp: str
    search_criteria: SearchCriteria
    locale: str | None = None


class SearchRequest(_Open):
    """SearchRequest: a transaction of one or more searches."""

    transaction_id: str = Text99
    search_request: list[SearchRequestItem] = Field(min_length=1, max_length=100)


class SearchEnvelope(BaseModel):
    """POST /registry/search and /registry/sync/search body."""

    signature: str | None = None
    header: MsgHeader
    message: SearchRequest


class TxnStatusQuery(_Open):
    """txnstatus_request: which transaction to report on."""

    reference_id: str = Field(max_length=99)
    txn_type: Literal["search"]
    attribute_type: Literal["transaction_id", "correlation_id"]
    attribute_value: str = Text99
    locale: str | None = None


class TxnStatusRequest(_Open):
    """TxnStatusRequest."""

    transaction_id: str = Text99
    txnstatus_request: TxnStatusQuery


class TxnStatusEnvelope(BaseModel):
    """POST /registry/txn/status body."""

    signature: str | None = None
    header: MsgHeader
    message: TxnStatusRequest


class CallbackHeader(_Open):
    """MsgCallbackHeader_V1.0.0 of an answer."""

    version: str = "1.0.0"
    message_id: str
    message_ts: str
    action: str
    status: Literal["rcvd", "pdng", "succ", "rjct"]
    status_reason_code: str | None = None
    status_reason_message: str | None = None
    total_count: int | None = None
    completed_count: int | None = None
    sender_id: str | None = None
    receiver_id: str | None = None
    is_msg_encrypted: bool = False


class PageRead(BaseModel):
    """The page answered and how many records match in all."""

    page_size: int
    page_number: int
    total_count: int


class SearchResult(BaseModel):
    """data of one answered search: `reg_records` are Groups (households) or Members."""

    version: str = "1.0.0"
    reg_records: list[dict[str, Any]]


class SearchResponseItem(BaseModel):
    """The answer to one search request (`succ`, or `rjct` with a reason code)."""

    reference_id: str
    timestamp: str
    status: Literal["pdng", "succ", "rjct"]
    status_reason_code: str | None = None
    status_reason_message: str | None = None
    data: SearchResult | None = None
    pagination: PageRead | None = None
    locale: str | None = None


class SearchResponse(BaseModel):
    """SearchResponse; `correlation_id` is this registry's id of the transaction."""

    transaction_id: str
    correlation_id: str
    search_response: list[SearchResponseItem]


class SearchAnswer(BaseModel):
    """The sync answer (and the on-search callback body)."""

    signature: str | None = None
    header: CallbackHeader
    message: SearchResponse


class AckError(BaseModel):
    """Why a message was not accepted (DCI Error)."""

    code: str
    message: str


class Ack(BaseModel):
    """ACK (the on-search callback will follow) or ERR."""

    ack_status: Literal["ACK", "NACK", "ERR"]
    timestamp: str
    correlation_id: str
    error: AckError | None = None


class AckAnswer(BaseModel):
    """The answer to POST /registry/search."""

    message: Ack


class TxnStatusResult(BaseModel):
    """txnstatus_response: the transaction's search answer so far."""

    txn_type: Literal["search"] = "search"
    txn_status: SearchResponse


class TxnStatusResponse(BaseModel):
    """TxnStatusResponse."""

    transaction_id: str
    correlation_id: str
    txnstatus_response: TxnStatusResult


class TxnStatusAnswer(BaseModel):
    """The answer to POST /registry/txn/status."""

    signature: str | None = None
    header: CallbackHeader
    message: TxnStatusResponse
