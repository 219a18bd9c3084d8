"""The gateway's idempotency state: instructions seen, transactions sent, statuses published.

A JSON file written atomically (temp file + rename) after every change and before an offset is
committed or a callback acknowledged, so a restart neither sends an instruction twice nor
forgets one; in memory when no file is configured (tests)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.g2p_gateway.protocol import FINAL


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
    state: str = "new"  # new → acked | refused
    correlation_id: str | None = None
    attempts: int = 0
    next_try: float = 0.0
    last_poll: float = 0.0
    error: str | None = None


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
