"""CloudEvents 1.0 in Kafka binary mode: the value is the JSON payload, attributes are headers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

SPECVERSION = "1.0"
HEADER_PREFIX = "ce_"


class EnvelopeError(ValueError):
    """A message that is not a valid CloudEvent (missing header, bad JSON)."""


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(UTC)


def rfc3339(ts: datetime) -> str:
    """RFC 3339 UTC timestamp with a Z suffix."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Envelope:
    """One event: CloudEvents attributes plus the JSON payload (`data`)."""

    type: str
    source: str
    data: dict[str, Any]
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=utcnow)
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers for binary mode (DESIGN.md §4)."""
        return [(k, v.encode()) for k, v in self.header_pairs()]

    def header_pairs(self) -> list[tuple[str, str]]:
        """The Kafka headers as text (the outbox stores them so)."""
        pairs = [
            ("ce_specversion", SPECVERSION),
            ("ce_id", self.id),
            ("ce_type", self.type),
            ("ce_source", self.source),
            ("ce_time", rfc3339(self.time)),
            ("ce_subject", self.subject or ""),
            ("ce_correlationid", self.correlation_id or ""),
            ("ce_causationid", self.causation_id or ""),
            ("content-type", "application/json"),
        ]
        if self.traceparent:
            pairs.append(("traceparent", self.traceparent))
        if self.tracestate:
            pairs.append(("tracestate", self.tracestate))
        return pairs

    def value(self) -> bytes:
        """The JSON payload bytes."""
        return orjson.dumps(self.data, default=str,
                            option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME)

    @property
    def key(self) -> bytes | None:
        """Kafka key: the household id, so one beneficiary's events stay in one partition."""
        return self.subject.encode() if self.subject else None

    def caused(self, *, type: str, source: str, data: dict[str, Any], subject: str | None = None,
               traceparent: str | None = None) -> Envelope:
        """A new event caused by this one: same correlation id, causation id = this id."""
        return Envelope(
            type=type, source=source, data=data, subject=subject or self.subject,
            correlation_id=self.correlation_id or self.id, causation_id=self.id,
            traceparent=traceparent,
        )

    @classmethod
    def from_kafka(cls, headers: list[tuple[str, bytes]] | tuple, value: bytes | None) -> Envelope:
        """Parse a binary-mode record; raise EnvelopeError on anything malformed."""
        h = decode_headers(headers)
        for name in ("ce_id", "ce_type", "ce_source", "ce_specversion"):
            if not h.get(name):
                raise EnvelopeError(f"missing header {name}")
        for name in ("ce_id", "ce_type", "ce_source", "ce_subject", "ce_correlationid",
                     "ce_causationid", "traceparent", "tracestate"):
            if "\x00" in h.get(name, ""):  # PostgreSQL text refuses it: reject at the door
                raise EnvelopeError(f"header {name} holds a NUL byte")
        if h["ce_specversion"] != SPECVERSION:
            raise EnvelopeError(f"unsupported ce_specversion {h['ce_specversion']}")
        try:
            data = orjson.loads(value or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"payload is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise EnvelopeError("payload is not a JSON object")
        try:
            ts = datetime.fromisoformat(h["ce_time"].replace("Z", "+00:00")) if h.get("ce_time") else utcnow()
        except ValueError as exc:
            raise EnvelopeError(f"bad ce_time: {exc}") from exc
        return cls(
            id=h["ce_id"], type=h["ce_type"], source=h["ce_source"], data=data,
            subject=h.get("ce_subject") or None, time=ts,
            correlation_id=h.get("ce_correlationid") or None,
            causation_id=h.get("ce_causationid") or None,
            traceparent=h.get("traceparent") or None, tracestate=h.get("tracestate") or None,
        )


SERVICES_PRODUCING = ("registry", "eligibility", "supervision", "disbursement")


def producer_of(topic: str) -> str | None:
    """The one `ce_source` allowed on `topic`: a service's own topics (`<service>.…`) carry its
    events, `disbursement.status.<partner>` the partner's (`/partners/<partner>`); None for a
    topic that is not Every Door's (no check)."""
    head, _, rest = topic.partition(".")
    if head == "disbursement" and rest.startswith("status."):
        return f"/partners/{rest.removeprefix('status.')}"
    return f"/services/{head}" if head in SERVICES_PRODUCING and rest else None


def decode_headers(headers: list[tuple[str, bytes]] | tuple) -> dict[str, str]:
    """Kafka headers as a str → str dict (undecodable values become empty)."""
    out: dict[str, str] = {}
    for key, raw in headers or ():
        try:
            out[key] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError:
            out[key] = ""
    return out
