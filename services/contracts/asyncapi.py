"""The AsyncAPI 3.0 document of every topic: channels, messages (CloudEvents headers, Kafka key),
who sends and which consumer groups receive; dead-letter topics with their error headers."""

from __future__ import annotations

import copy
from typing import Any

from services.contracts.catalog import Channel, EventType, Subscription
from services.disbursement import events as disbursement_events
from services.disbursement.contract import _headers as cloudevents_headers
from services.disbursement.contract import signed_headers

DLQ_MESSAGE = "everydoor.dead_letter"
# Written by shared/consumer.py on every record it dead-letters (besides the original headers).
DLQ_HEADERS = {
    "dlq_reason": "why the record could not be handled (exception or validation error)",
    "dlq_original_topic": "the topic the record was read from",
    "dlq_original_partition": "its partition (decimal)",
    "dlq_original_offset": "its offset (decimal)",
    "dlq_attempts": "how many times the handler was tried (decimal)",
    "dlq_consumer": "the consumer group that gave up, `<service>.<consumer>`",
}
KEY = {"type": "string", "description": "Kafka key: the household id (= ce_subject), so every "
                                        "event of one household stays in order on one partition; "
                                        "absent for events about no household (e.g. postings)"}


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


def message_headers(event: EventType) -> dict[str, Any]:
    """CloudEvents binary-mode headers of one event type (`ce_type` fixed, `ce_source` known)."""
    signed = event.ce_type == disbursement_events.BANK_STATUS  # a partner's: it signs them
    headers = copy.deepcopy(signed_headers() if signed else cloudevents_headers())
    props = headers["properties"]
    props["ce_type"] = {"type": "string", "const": event.ce_type}
    if "{" in event.source:
        props["ce_source"] = {"type": "string", "pattern": "^/partners/[a-z0-9_-]+$",
                              "description": f"`{event.source}`"}
    else:
        props["ce_source"] = {"type": "string", "const": event.source}
    props["ce_correlationid"]["description"] = ("id of the originating request or import job, "
                                                "copied down the chain")
    props["ce_causationid"]["description"] = "ce_id of the event that caused this one (empty for "\
                                             "API-originated events)"
    props["tracestate"] = {"type": "string", "description": "W3C trace context (vendor part)"}
    return headers


def dead_letter_headers() -> dict[str, Any]:
    """Headers of a dead letter: the original record's headers, plus the dlq_* error headers."""
    original = cloudevents_headers()["properties"]
    props = {name: {"type": "string", "description": desc} for name, desc in DLQ_HEADERS.items()}
    props.update({k: {**v, "description": "copied from the original record"}
                  for k, v in original.items()})
    return {"type": "object", "required": list(DLQ_HEADERS), "properties": props}


def _message(event: EventType) -> dict[str, Any]:
    doc = (event.model.__doc__ or "").strip().splitlines()
    return {"name": event.ce_type, "title": event.model.__name__,
            "summary": doc[0] if doc else event.ce_type, "contentType": "application/json",
            "headers": message_headers(event),
            "payload": {"$ref": f"./schemas/{event.ce_type}.json"},
            "bindings": {"kafka": {"key": KEY, "bindingVersion": "0.5.0"}}}


def _group_binding(group: str) -> dict[str, Any]:
    return {"kafka": {"groupId": {"type": "string", "enum": [group]}, "bindingVersion": "0.5.0"}}


def document(*, types: dict[str, EventType], chans: list[Channel],
             subs: list[Subscription]) -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for chan in chans:
        readers = [s for s in subs if s.channel == chan.id]
        consumers = ", ".join(f"`{s.group}`" for s in readers) or "none inside the platform"
        channels[chan.id] = {
            "address": chan.address, "title": chan.id,
            "description": f"{chan.description} Produced by {chan.producer}; consumer groups: "
                           f"{consumers}.",
            "messages": {t: _ref("components", "messages", t) for t in chan.types}}
        if chan.parameters:
            channels[chan.id]["parameters"] = chan.parameters
        operations[f"{chan.producer}.send.{chan.id}"] = {
            "action": "send", "channel": _ref("channels", chan.id),
            "summary": f"{chan.producer} publishes (through its outbox: at least once, dedup by "
                       "ce_id)" if chan.producer != "bank_partner" else
                       "the bank partner publishes its statuses, keyed like the instruction",
            "messages": [_ref("channels", chan.id, "messages", t) for t in chan.types]}
        for sub in readers:
            handled = chan.types if "*" in sub.types else [t for t in chan.types if t in sub.types]
            operations[f"{sub.group}.receive.{chan.id}"] = {
                "action": "receive", "channel": _ref("channels", chan.id),
                "summary": f"consumer group `{sub.group}`"
                           + (" (every type)" if "*" in sub.types else ""),
                "bindings": _group_binding(sub.group),
                "messages": [_ref("channels", chan.id, "messages", t) for t in handled]}
    for chan in chans:
        dlq = f"{chan.id}.dlq"
        channels[dlq] = {
            "address": f"{chan.address}.dlq", "title": dlq,
            "description": f"Dead letters of `{chan.address}`: records a consumer could not "
                           "handle after its retries (or could not parse), unchanged, with "
                           "dlq_* headers. Operators list and replay them over "
                           "`/v1/ops/dead-letters`.",
            "messages": {"deadLetter": _ref("components", "messages", "deadLetter")}}
        if chan.parameters:
            channels[dlq]["parameters"] = chan.parameters
        for sub in (s for s in subs if s.channel == chan.id and s.service != "bank_partner"):
            operations[f"{sub.group}.send.{dlq}"] = {
                "action": "send", "channel": _ref("channels", dlq),
                "summary": f"`{sub.group}` dead-letters what it cannot handle",
                "messages": [_ref("channels", dlq, "messages", "deadLetter")]}
    messages = {t: _message(e) for t, e in types.items()}
    messages["deadLetter"] = {
        "name": DLQ_MESSAGE, "title": "Dead letter", "contentType": "application/octet-stream",
        "summary": "the original record's key, value and headers, plus why it failed",
        "headers": dead_letter_headers(),
        "payload": {"description": "the original record value, byte for byte (may not be JSON)"},
        "bindings": {"kafka": {"key": {**KEY, "description": "the original record's key"},
                               "bindingVersion": "0.5.0"}}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Every Door events", "version": "1.0.0",
            "description": (
                "Every topic of the platform. CloudEvents 1.0 in Kafka binary mode: the value is "
                "the JSON payload (schemas in ./schemas/), attributes are `ce_*` headers; the key "
                "is the household id. Delivery is at least once: consumers deduplicate by "
                "`ce_id`. Within a `.vN` type only optional fields are added (a breaking change "
                "is a new type), so consumers must ignore unknown fields and tolerate new enum "
                "values. Generated by `python -m services.contracts` — do not edit by hand.")},
        "defaultContentType": "application/json",
        "servers": {
            "compose": {"host": "kafka:9092", "protocol": "kafka",
                        "description": "`docker compose up`, inside the compose network "
                                       "(from the host: localhost:9094)"},
            "local": {"host": "127.0.0.1:9092", "protocol": "kafka",
                      "description": "`make run` (embedded broker)"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
