"""Application and instruction lifecycles; the verdict on a bank partner's status message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

INSTRUCTION_STATUSES = ("approved", "sent", "accepted", "rejected", "settled", "failed",
                        "reversed", "on_hold", "cancelled")
BANK_STATUSES = ("accepted", "rejected", "settled", "failed", "reversed", "repayment_received")

# Application statuses still "open": a household may have one open application per programme.
APPLICATION_OPEN = ("submitted", "reviewed", "confirmed", "approved")
# Instruction statuses after which the reserved budget is given back.
RELEASES_BUDGET = ("rejected", "failed", "cancelled", "reversed")
# Statuses from which the bank message may be issued.
SENDABLE = ("approved",)

# What the partner may move an instruction to, from each status.
BANK_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "sent": ("accepted", "rejected"),
    "accepted": ("settled", "failed"),
    "settled": ("reversed",),
}
# The order of the happy path, to tell a stale status (duplicate) from an impossible one.
_RANK = {"approved": 0, "on_hold": 0, "sent": 1, "accepted": 2, "rejected": 3, "settled": 3,
         "failed": 3, "reversed": 4, "cancelled": 9}


@dataclass(frozen=True)
class BankVerdict:
    """What to do with one status message: apply, ignore as duplicate, record a repayment, refuse."""

    action: str  # "apply" | "duplicate" | "repayment" | "refuse"
    reason: str = ""


def judge_bank_status(*, current: str, incoming: str, history: Iterable[str],
                      is_loan: bool) -> BankVerdict:
    """Monotonic, idempotent status handling: a repeat is a no-op, a skip or a step back refused."""
    seen = set(history)
    if incoming == "repayment_received":
        if not is_loan:
            return BankVerdict("refuse", "repayment_received for an instruction that is not a loan")
        if current != "settled":
            return BankVerdict("refuse", f"repayment_received while the instruction is {current}, "
                                         "not settled")
        return BankVerdict("repayment")
    if incoming == current or incoming in seen:
        return BankVerdict("duplicate", f"{incoming} already recorded")
    if incoming in BANK_TRANSITIONS.get(current, ()):
        return BankVerdict("apply")
    if current in ("approved", "on_hold", "cancelled"):
        return BankVerdict("refuse", f"{incoming} for an instruction that was never sent "
                                     f"(status {current})")
    kind = "out of order" if _RANK.get(incoming, 0) > _RANK.get(current, 0) else "illegal transition"
    return BankVerdict("refuse", f"{kind}: {current} → {incoming}")


def may_cancel(status: str) -> bool:
    """Cancellation is possible only before the bank message is issued."""
    return status in ("approved", "on_hold")
