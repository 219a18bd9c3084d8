"""Topics eligibility consumes → handlers."""

from __future__ import annotations

from services.eligibility import handlers
from services.registry import events as registry_events
from shared.consumer import ConsumerSpec, Handler
from shared.runtime import Runtime


def consumer_specs(rt: Runtime) -> list[ConsumerSpec]:
    """Eligibility's consumer groups."""
    return [
        ConsumerSpec(
            name="registry", topics=[registry_events.TOPIC],
            handlers={
                registry_events.HOUSEHOLD_REGISTERED: Handler(
                    handlers.on_household_registered, registry_events.HouseholdRegisteredV1),
            },
        )
    ]
