"""What the code publishes and consumes: event types → models, topics, producers, consumer groups."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from pydantic import BaseModel

from services.disbursement import events as disbursement_events
from shared.processes import SERVICES

SERVICES_DIR = Path(__file__).resolve().parents[1]
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[0-9]+$")
PARTNER = "{partner}"
PARTNER_EXAMPLE = "vbsp"
PARTNER_SOURCE = "/partners/{partner}"
PARTNER_GROUP = "bank-partner.{partner}"


class CatalogError(RuntimeError):
    """The code's contracts cannot be enumerated (say, an events module without EVENTS)."""


@dataclass(frozen=True)
class EventType:
    """One `ce_type`: its payload model, the service that owns it and the `ce_source` it carries."""

    ce_type: str
    model: type[BaseModel]
    service: str
    source: str


@dataclass
class Channel:
    """One topic (or topic family, `{partner}`) and the event types that travel on it."""

    id: str
    address: str
    producer: str
    description: str
    types: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)

    def topic(self) -> str:
        """The concrete topic name (the example partner for a family)."""
        return self.address.replace(PARTNER, PARTNER_EXAMPLE)


@dataclass(frozen=True)
class Subscription:
    """A consumer group reading a channel: which types it handles (`*`: every type)."""

    service: str
    group: str
    channel: str
    types: tuple[str, ...]


def event_services() -> list[str]:
    """Services that publish events (have an events.py), the four core ones in chain order."""
    found = {p.parent.name for p in SERVICES_DIR.glob("*/events.py")}
    return [s for s in SERVICES if s in found] + sorted(found - set(SERVICES))


def events_module(service: str) -> ModuleType:
    """`services.<service>.events`."""
    return importlib.import_module(f"services.{service}.events")


def unmapped_types(module: ModuleType) -> list[str]:
    """Event-type constants (`x.y.vN` strings) of an events module that EVENTS has no model for."""
    mapped = getattr(module, "EVENTS", {})
    return sorted({v for k, v in vars(module).items()
                   if k.isupper() and isinstance(v, str) and TYPE_PATTERN.match(v)} - set(mapped))


def event_types() -> dict[str, EventType]:
    """Every event type of every events.py, in declaration order."""
    out: dict[str, EventType] = {}
    for service in event_services():
        module = events_module(service)
        mapping = getattr(module, "EVENTS", None)
        if not isinstance(mapping, dict):
            raise CatalogError(f"{module.__name__} has no EVENTS dict (ce_type → payload model)")
        missing = unmapped_types(module)
        if missing:
            raise CatalogError(f"{module.__name__}.EVENTS lacks a model for {', '.join(missing)}")
        for type_, model in mapping.items():
            source = (PARTNER_SOURCE if type_ == disbursement_events.BANK_STATUS
                      else getattr(module, "SOURCE", f"/services/{service}"))
            out[type_] = EventType(ce_type=type_, model=model, service=service, source=source)
    return out


def channels(types: dict[str, EventType]) -> list[Channel]:
    """Every topic: each service's own topic, then the bank-partner pair (per partner)."""
    partner_only = {disbursement_events.BANK_STATUS}
    out = []
    for service in event_services():
        module = events_module(service)
        out.append(Channel(
            id=module.TOPIC, address=module.TOPIC, producer=service,
            description=(module.__doc__ or "").strip().splitlines()[0],
            types=[t for t, e in types.items() if e.service == service and t not in partner_only]))
    parameters = {"partner": {"description": "the bank partner's code, e.g. `vbsp` (Bank for "
                                             "Social Policies)", "default": PARTNER_EXAMPLE}}
    out.append(Channel(
        id="disbursement.instructions", parameters=parameters, producer="disbursement",
        address=disbursement_events.instructions_topic(PARTNER),
        description="What a bank partner is to pay or deliver; read by that partner only.",
        types=[disbursement_events.INSTRUCTION_ISSUED]))
    out.append(Channel(
        id="disbursement.status", parameters=parameters, producer="bank_partner",
        address=disbursement_events.status_topic(PARTNER),
        description="A bank partner's answers to its instructions; written by that partner only.",
        types=[disbursement_events.BANK_STATUS]))
    return out


def subscriptions(chans: list[Channel]) -> list[Subscription]:
    """Consumer groups as each service's `consumer_specs` declares them, plus the bank partner."""
    by_topic = {c.topic(): c for c in chans}
    out = []
    for service in SERVICES:
        consumers = importlib.import_module(f"services.{service}.consumers")
        settings_cls = importlib.import_module(f"services.{service}.config").Settings
        # The documented partner only, whatever DISBURSEMENT_PARTNERS says on this machine.
        settings = settings_cls(**({"partners": [PARTNER_EXAMPLE]}
                                   if "partners" in settings_cls.model_fields else {}))
        # consumer_specs only reads settings when it builds its specs (handlers bind the runtime
        # lazily), so a stand-in runtime lists the groups without connecting anywhere.
        for cs in consumers.consumer_specs(SimpleNamespace(settings=settings)):
            for topic in cs.topics:
                chan = by_topic.get(topic)
                if chan is None:
                    raise CatalogError(f"{service}.{cs.name} consumes {topic}, which no events.py "
                                       "declares")
                handled = tuple(sorted(cs.handlers))
                out.append(Subscription(service=service, group=f"{service}.{cs.name}",
                                        channel=chan.id, types=handled))
    out.append(Subscription(service="bank_partner", group=PARTNER_GROUP,
                            channel="disbursement.instructions",
                            types=(disbursement_events.INSTRUCTION_ISSUED,)))
    return out


def json_schema(event: EventType) -> dict[str, Any]:
    """JSON Schema (2020-12) of one event type's payload, as it goes on the wire."""
    body = event.model.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://everydoor.example/contracts/schemas/{event.ce_type}.json",
            "x-ce-type": event.ce_type, "x-ce-source": event.source, **body}
