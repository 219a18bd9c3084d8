"""Integration events supervision publishes on `supervision.events` (its public contract).

Household-level events have the household id as subject/key; posting-level events have none.
Complaint events never carry the filer's contact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

TOPIC = "supervision.events"
SOURCE = "/services/supervision"

POSTING_OPENED = "supervision.posting.opened.v1"
POSTING_CLOSED = "supervision.posting.closed.v1"
POSTING_APPROVED = "supervision.posting.approved.v1"
COMPLAINT_RECEIVED = "supervision.complaint.received.v1"
COMPLAINT_RESOLVED = "supervision.complaint.resolved.v1"
VERIFICATION_REQUESTED = "supervision.verification_requested.v1"
HOLD_REQUESTED = "supervision.hold_requested.v1"
HOLD_RELEASED = "supervision.hold_released.v1"

ComplaintCategory = Literal["wrongly_included", "wrongly_excluded", "wrong_category",
                            "payment_not_received", "misconduct", "other"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class PostingItem(_Event):
    """One household on a posting."""

    household_id: str
    classification_id: str
    category: str


class PostingOpenedV1(_Event):
    """`supervision.posting.opened.v1`."""

    posting_id: str
    commune_code: str
    review_round: str
    opens_at: datetime
    closes_at: datetime
    items: list[PostingItem]
    actor: str | None = None
    part: int = 1  # a large list opens in several events (part n of parts)
    parts: int = 1


class PostingClosedV1(_Event):
    """`supervision.posting.closed.v1`."""

    posting_id: str
    commune_code: str
    closed_at: datetime
    actor: str | None = None
    items: list[PostingItem] = []
    part: int = 1  # a large list closes in several events (part n of parts)
    parts: int = 1
    reason: str | None = None  # why a national admin closed it before its window ended


class ExcludedItem(PostingItem):
    """A posted household left out of the approval, with why (it waits for the next review)."""

    reason: str


class PostingApprovedV1(_Event):
    """`supervision.posting.approved.v1`: eligibility turns these classifications `recognized`."""

    posting_id: str
    commune_code: str
    review_round: str
    approved_at: datetime
    items: list[PostingItem]
    carried_over_complaints: list[str] = []
    actor: str | None = None
    excluded: list[ExcludedItem] = []
    # A large list is approved in several events (each under the broker's message limit):
    # part n of parts, each with its own items; carried-over complaints are in part 1.
    part: int = 1
    parts: int = 1


class ComplaintReceivedV1(_Event):
    """`supervision.complaint.received.v1` (no contact details, ever)."""

    complaint_id: str
    commune_code: str
    posting_id: str | None = None
    household_id: str | None = None
    category: ComplaintCategory
    channel: str
    due_at: datetime
    status: str | None = None


class ComplaintResolvedV1(_Event):
    """`supervision.complaint.resolved.v1`."""

    complaint_id: str
    commune_code: str
    household_id: str | None = None
    category: ComplaintCategory
    outcome: Literal["upheld", "not_upheld"]
    note: str
    actor: str | None = None
    posting_id: str | None = None
    overdue: bool | None = None
    status: Literal["resolved", "rejected"] | None = None


class VerificationRequestedV1(_Event):
    """`supervision.verification_requested.v1`: the registry flags the household."""

    complaint_id: str
    household_id: str
    commune_code: str
    reason: str
    actor: str | None = None
    category: ComplaintCategory | None = None


class HoldRequestedV1(_Event):
    """`supervision.hold_requested.v1`: disbursement holds unsent instructions."""

    complaint_id: str
    household_id: str
    reason: str
    actor: str | None = None
    # The complaint's commune: disbursement refuses a hold on a household it knows elsewhere.
    commune_code: str | None = None


class HoldReleasedV1(_Event):
    """`supervision.hold_released.v1`: disbursement resumes held instructions."""

    complaint_id: str
    household_id: str
    actor: str | None = None
    reason: str | None = None
    commune_code: str | None = None


EVENTS: dict[str, type[BaseModel]] = {
    POSTING_OPENED: PostingOpenedV1,
    POSTING_CLOSED: PostingClosedV1,
    POSTING_APPROVED: PostingApprovedV1,
    COMPLAINT_RECEIVED: ComplaintReceivedV1,
    COMPLAINT_RESOLVED: ComplaintResolvedV1,
    VERIFICATION_REQUESTED: VerificationRequestedV1,
    HOLD_REQUESTED: HoldRequestedV1,
    HOLD_RELEASED: HoldReleasedV1,
}
