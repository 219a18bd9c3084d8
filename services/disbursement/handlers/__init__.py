"""Disbursement use cases: command or event → domain → tables + outbox, one transaction."""

from services.disbursement.handlers import (
    applications,
    groups,
    inbound,
    instructions,
    ledger,
    restructurings,
)
from services.disbursement.handlers.common import Service, load_programmes, service_of

__all__ = ["Service", "applications", "groups", "inbound", "instructions", "ledger",
           "load_programmes", "restructurings", "service_of"]
