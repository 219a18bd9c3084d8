"""Supervision use cases: command or event → domain → tables + outbox, one transaction."""

from services.supervision.handlers import complaints, inbound, postings, projects, timeline
from services.supervision.handlers.common import Service, service_of

__all__ = ["Service", "complaints", "inbound", "postings", "projects", "service_of", "timeline"]
