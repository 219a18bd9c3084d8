"""Topics the registry consumes → handlers: verification requests from supervision."""

from __future__ import annotations

from services.registry.handlers import surveys
from services.supervision import events as supervision_events
from shared.consumer import ConsumerSpec, Handler
from shared.runtime import Runtime


def consumer_specs(rt: Runtime) -> list[ConsumerSpec]:
    """The registry's consumer groups."""
    return [
        ConsumerSpec(name="supervision", topics=[supervision_events.TOPIC], handlers={
            supervision_events.VERIFICATION_REQUESTED: Handler(
                surveys.on_verification_requested, supervision_events.VerificationRequestedV1),
        }),
    ]
