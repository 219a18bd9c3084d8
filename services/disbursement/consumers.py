"""Topics disbursement consumes → handlers."""

from __future__ import annotations

from services.disbursement import events
from services.eligibility import events as eligibility_events
from services.supervision import events as supervision_events
from shared.consumer import ConsumerSpec
from shared.runtime import Runtime


def consumer_specs(rt: Runtime) -> list[ConsumerSpec]:
    """Disbursement's consumer groups."""
    partners = rt.settings.partners  # type: ignore[attr-defined]
    return [
        ConsumerSpec(name="upstream", topics=[eligibility_events.TOPIC, supervision_events.TOPIC]),
        ConsumerSpec(name="bank-status", topics=[events.status_topic(p) for p in partners]),
    ]
