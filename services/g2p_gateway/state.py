"""The gateway's idempotency state: instructions seen, transactions sent, statuses published.

A JSON file written atomically (temp file + rename) after every change and before an offset is
committed or a callback acknowledged, so a restart neither sends an instruction twice nor
forgets one; in memory when no file is configured (tests)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.g2p_gateway.protocol import FINAL

# States an operator may retry: the bank refused the transaction (NACK/ERR), or never answered it.
RETRYABLE = ("refused", "unanswered")


@dataclass
class Instruction:
    """One instruction: its G2P Connect item, the Kafka context to answer in, what was published."""

    key: str
    amount_vnd: int
    item: dict[str, Any]
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    queued_at: float = 0.0
    transaction_id: str | None = None
    published: list[str] = field(default_factory=list)
    g2p_status: str | None = None
    updated_at: float = 0.0


@dataclass
class Transaction:
    """One POST /disburse: its instructions (reference ids), and what the bank answered."""

    message_id: str
    references: list[str]
    # new → acked | refused; acked → unanswered (polls got no answer); an operator's retry
    # makes a refused or unanswered one `retried` and its open instructions a new transaction.
    state: str = "new"
    correlation_id: str | None = None
    attempts: int = 0
    next_try: float = 0.0
    last_poll: float = 0.0
    error: str | None = None
    unanswered_polls: int = 0
    created_at: float = 0.0
    retry_of: str | None = None
    retried_as: str | None = None


@dataclass
class State:
    """Everything the gateway must remember across restarts."""

    instructions: dict[str, Instruction] = field(default_factory=dict)
    transactions: dict[str, Transaction] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None) -> State:
        """Read the state file (a fresh state if there is none)."""
        state = cls(path=path)
        if path is not None and path.exists():
            raw = json.loads(path.read_text(encoding="utf-8"))
            state.instructions = {k: Instruction(**v) for k, v in raw["instructions"].items()}
            state.transactions = {k: Transaction(**v) for k, v in raw["transactions"].items()}
        return state

    def save(self) -> None:
        """Write the state file atomically."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({
            "instructions": {k: asdict(v) for k, v in self.instructions.items()},
            "transactions": {k: asdict(v) for k, v in self.transactions.items()}}),
            encoding="utf-8")
        os.replace(tmp, self.path)

    def finished_at(self, txn: Transaction) -> float | None:
        """When a transaction finished (the last status of its instructions, once every one is
        settled, rejected or failed); None while one is still open."""
        insts = [self.instructions.get(r) for r in txn.references]
        if not insts or any(i is None or not set(i.published) & FINAL for i in insts):
            return None
        return max(i.updated_at for i in insts if i is not None)

    def prune(self, *, before: float) -> tuple[int, int]:
        """Forget transactions that finished before `before`, and their instructions (never an
        open, refused-and-unanswered or queued one); (transactions, instructions) removed."""
        done = [k for k, t in self.transactions.items()
                if (at := self.finished_at(t)) is not None and at < before]
        removed = 0
        for txn_id in done:
            for ref in self.transactions.pop(txn_id).references:
                removed += self.instructions.pop(ref, None) is not None
        return len(done), removed

    def queued(self) -> list[str]:
        """Instructions not yet placed in a transaction, oldest first."""
        return sorted((k for k, v in self.instructions.items() if v.transaction_id is None),
                      key=lambda k: self.instructions[k].queued_at)


class AuditLog:
    """The operator audit log: one JSON object per line, appended and flushed to disk before the
    action's answer (in memory when no file is configured)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        if path is not None and path.exists():
            with path.open(encoding="utf-8") as f:
                self.entries = [json.loads(line) for line in f if line.strip()]

    def record(self, *, actor: str, role: str, action: str, target: str, reason: str,
               outcome: dict[str, Any], correlation_id: str | None) -> dict[str, Any]:
        """Append one operator action; the entry as kept."""
        entry = {"id": len(self.entries) + 1,
                 "at": datetime.now(UTC).isoformat(), "actor": actor, "role": role,
                 "action": action, "target": target, "reason": reason, "outcome": outcome,
                 "correlation_id": correlation_id}
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
        self.entries.append(entry)
        return entry

    def listing(self, *, action: str | None, actor: str | None, before_id: int | None,
                limit: int) -> list[dict[str, Any]]:
        """Newest first, optionally one action or actor, paged by `before_id`."""
        out = [e for e in reversed(self.entries)
               if (action is None or e["action"] == action)
               and (actor is None or e["actor"] == actor)
               and (before_id is None or e["id"] < before_id)]
        return out[:limit]
