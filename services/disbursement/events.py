"""Integration events disbursement publishes (its public contract, bank partners included)."""

from __future__ import annotations

from pydantic import BaseModel

TOPIC = "disbursement.events"
SOURCE = "/services/disbursement"


def instructions_topic(partner: str) -> str:
    """Topic a bank partner consumes its instructions from."""
    return f"disbursement.instructions.{partner}"


def status_topic(partner: str) -> str:
    """Topic a bank partner publishes instruction statuses on."""
    return f"disbursement.status.{partner}"


EVENTS: dict[str, type[BaseModel]] = {}
