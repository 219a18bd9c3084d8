"""Eligibility use cases: inbound events, decisions, re-evaluation jobs, queries."""

from services.eligibility.handlers.common import Service, service_of

__all__ = ["Service", "service_of"]
