"""The gateway's operator API models: transactions the bank refused or left unanswered, and
the outcome of a retry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.g2p_gateway.state import State, Transaction

TransactionState = Literal["new", "acked", "refused", "unanswered", "retried"]


class InstructionRead(BaseModel):
    """One instruction of a transaction, as the gateway knows it."""

    reference_id: str = Field(description="the instruction id (the bank's idempotency key)")
    amount_vnd: int
    g2p_status: str | None = Field(description="the bank's last item status (rcvd|pdng|succ|rjct)")
    published: list[str] = Field(description="our statuses published for it, in order")


class TransactionRead(BaseModel):
    """One G2P Connect transaction (one POST /disburse)."""

    transaction_id: str
    state: TransactionState
    message_id: str
    created_at: datetime | None
    attempts: int = Field(description="POSTs of /disburse")
    unanswered_polls: int = Field(description="status polls the bank has not answered")
    error: str | None = Field(description="the bank's NACK/ERR acknowledgement, as received")
    retry_of: str | None = None
    retried_as: str | None = None
    instructions: list[InstructionRead]

    @classmethod
    def of(cls, txn_id: str, txn: Transaction, state: State) -> TransactionRead:
        """From the gateway's state."""
        insts = [(r, state.instructions.get(r)) for r in txn.references]
        return cls(
            transaction_id=txn_id, state=txn.state,  # type: ignore[arg-type]
            message_id=txn.message_id,
            created_at=datetime.fromtimestamp(txn.created_at, UTC) if txn.created_at else None,
            attempts=txn.attempts, unanswered_polls=txn.unanswered_polls, error=txn.error,
            retry_of=txn.retry_of, retried_as=txn.retried_as,
            instructions=[InstructionRead(reference_id=r, amount_vnd=i.amount_vnd,
                                          g2p_status=i.g2p_status, published=list(i.published))
                          for r, i in insts if i is not None])


class RetryRead(BaseModel):
    """What a retry did."""

    transaction_id: str = Field(description="the refused or unanswered transaction")
    retried_as: str = Field(description="the new transaction carrying its open instructions")
    message_id: str = Field(description="the new request's header.message_id")
    references: list[str] = Field(description="the instructions sent again (their ids)")
    outcome: Literal["retrying"] = "retrying"
