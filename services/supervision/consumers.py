"""Topics supervision consumes → handlers: every topic feeds the timeline and the projections."""

from __future__ import annotations

from services.disbursement import events as disbursement_events
from services.eligibility import events as eligibility_events
from services.registry import events as registry_events
from services.supervision import events
from services.supervision.handlers import inbound
from shared.consumer import ConsumerSpec, Handler
from shared.runtime import Runtime


def consumer_specs(rt: Runtime) -> list[ConsumerSpec]:
    """Supervision's consumer groups."""
    return [
        ConsumerSpec(
            name="timeline",
            topics=[registry_events.TOPIC, eligibility_events.TOPIC, events.TOPIC,
                    disbursement_events.TOPIC],
            handlers={"*": Handler(batch=inbound.on_events)},
        )
    ]
