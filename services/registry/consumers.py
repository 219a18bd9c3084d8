"""Topics the registry consumes → handlers (verification requests arrive with supervision)."""

from __future__ import annotations

from shared.consumer import ConsumerSpec
from shared.runtime import Runtime


def consumer_specs(rt: Runtime) -> list[ConsumerSpec]:
    """The registry's consumer groups."""
    return []
