"""OpenTelemetry set-up (standard OTEL_* variables) and Prometheus metrics for one process."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import DEFAULT_OFF
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_configured = False


class JsonLinesSpanExporter(SpanExporter):
    """Writes each finished span as one JSON line, so operators can look without a collector.

    The file is capped: past `max_bytes` it is rotated to `<file>.1` … `<file>.<backups>` (the
    oldest dropped). Every process of an installation may share one file, so rotation and
    appends hold an exclusive lock on `<file>.lock`.
    """

    def __init__(self, path: Path, *, max_bytes: int = 100 * 1024 * 1024,
                 backups: int = 3) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = path.with_name(path.name + ".lock")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(json.dumps(span_to_dict(s), separators=(",", ":")) + "\n" for s in spans)
        with self._lock, self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._rotate_if_full(len(data.encode()))
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return SpanExportResult.SUCCESS

    def _rotate_if_full(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0 or size + incoming <= self.max_bytes:
            return
        if self.backups <= 0:
            self.path.unlink()
            return
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def shutdown(self) -> None:
        return None


def span_to_dict(span: ReadableSpan) -> dict:
    """A compact, stable JSON shape of a span (ids as hex)."""
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    return {
        "service": span.resource.attributes.get(SERVICE_NAME),
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "links": [
            {"trace_id": f"{lk.context.trace_id:032x}", "span_id": f"{lk.context.span_id:016x}"}
            | ({"attributes": dict(lk.attributes)} if lk.attributes else {})
            for lk in span.links
        ],
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {k: v if isinstance(v, str | int | float | bool) else str(v)
                       for k, v in (span.attributes or {}).items()},
    }


def setup_tracing(service_name: str, *, span_file: Path | None = None) -> TracerProvider:
    """Configure the global tracer provider once per process.

    OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces variant) is set; otherwise spans go
    to a JSON-lines file (EVERYDOOR_SPAN_FILE, or `span_file`); OTEL_TRACES_EXPORTER=none disables.
    """
    global _configured
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        return current
    os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
    # A batch's SQL can be long: keep attribute values (db.statement) short unless the operator
    # sets OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT / OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT.
    os.environ.setdefault("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "512")
    exporter_kind = os.environ.get("OTEL_TRACES_EXPORTER", "")
    # With nothing to export, a span is only worth its context: unless OTEL_TRACES_SAMPLER says
    # otherwise, new traces are not recorded (a caller's sampled context still is, so a trace
    # started upstream keeps its spans here). Context still propagates into every event.
    sampler = (DEFAULT_OFF if exporter_kind == "none" and not os.environ.get("OTEL_TRACES_SAMPLER")
               else None)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}),
                              sampler=sampler)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if exporter_kind != "none":
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            path = os.environ.get("EVERYDOOR_SPAN_FILE") or (str(span_file) if span_file else "")
            if path:
                exporter = JsonLinesSpanExporter(
                    Path(path),
                    max_bytes=int(float(os.environ.get("EVERYDOOR_SPAN_FILE_MAX_MB", "100"))
                                  * 1024 * 1024),
                    backups=int(os.environ.get("EVERYDOOR_SPAN_FILE_BACKUPS", "3")))
                # Batched off the event loop; a short delay so operators (and tests) see spans
                # on disk within a fraction of a second. OTEL_BSP_* variables still apply.
                provider.add_span_processor(BatchSpanProcessor(
                    exporter, schedule_delay_millis=float(
                        os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "200"))))
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def current_trace_headers() -> dict[str, str]:
    """W3C trace context of the current span (`traceparent`, `tracestate`)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """A context whose parent is the given W3C traceparent, or None."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return propagate.extract(carrier)


def trace_id_of(traceparent: str | None) -> str | None:
    """The 32-hex trace id inside a traceparent header."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) >= 4 else None


class Metrics:
    """The Prometheus metrics one service exposes on /metrics."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service}
        self.requests = Counter("http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox rows not yet published",
                                    registry=self.registry)
        self.outbox_published = Counter("outbox_published_total", "Events published by the relay",
                                        ["topic"], registry=self.registry)
        self.outbox_failed = Counter("outbox_publish_failures_total",
                                     "Outbox rows the broker refused (tried again with backoff)",
                                     ["topic"], registry=self.registry)
        self.outbox_parked = Gauge("outbox_parked", "Outbox rows parked after too many attempts "
                                   "(their key waits behind them)", registry=self.registry)
        self.relay_leader = Gauge("outbox_relay_leader", "1 while this replica is the service's "
                                  "active publisher", registry=self.registry)
        self.task_restarts = Counter("background_task_restarts_total",
                                     "Background tasks restarted after a failure", ["task"],
                                     registry=self.registry)
        self.retention_pruned = Counter("retention_pruned_rows_total",
                                        "Outbox, inbox and dead-letter rows removed past their "
                                        "retention horizon", ["table"], registry=self.registry)
        self.events_processed = Counter("consumer_events_processed_total",
                                        "Events handled by a consumer",
                                        ["consumer", "topic", "outcome"], registry=self.registry)
        self.dead_letters = Counter("consumer_dead_letters_total", "Events sent to a dead letter",
                                    ["consumer", "topic"], registry=self.registry)
        self.info = Gauge("everydoor_service_info", "Service identity", ["service"],
                          registry=self.registry)
        self.info.labels(**labels).set(1)
