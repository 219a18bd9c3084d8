"""Topics eligibility consumes → handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from services.eligibility.config import Settings
from services.eligibility.handlers import Service, inbound, reviews, service_of
from services.registry import events as registry_events
from services.supervision import events as supervision_events
from shared.consumer import BatchContext, ConsumerSpec, EventContext, Handler
from shared.runtime import Runtime

REGISTRY_TYPES = (registry_events.HOUSEHOLD_REGISTERED, registry_events.HOUSEHOLD_UPDATED,
                  registry_events.MEMBER_ADDED, registry_events.MEMBER_REMOVED,
                  registry_events.MEMBER_UPDATED, registry_events.HOUSEHOLD_SURVEYED,
                  registry_events.HOUSEHOLD_ARCHIVED, registry_events.VERIFICATION_REQUESTED,
                  registry_events.VERIFICATION_RESOLVED)


def _bind(rt: Runtime, fn: Callable[[Service, EventContext, Any], Awaitable[None]]
          ) -> Callable[[EventContext, Any], Awaitable[None]]:
    async def handle(ctx: EventContext, payload: Any) -> None:
        await fn(service_of(rt), ctx, payload)

    return handle


def consumer_specs(rt: Runtime) -> list[ConsumerSpec]:
    """Eligibility's consumer groups: household inputs (set-based), and posting approvals."""

    async def registry_batch(ctx: BatchContext) -> None:
        await inbound.on_registry_events(service_of(rt), ctx)

    settings = cast(Settings, rt.settings)
    return [
        ConsumerSpec(name="registry", topics=[registry_events.TOPIC], handlers={
            t: Handler(model=registry_events.EVENTS[t], batch=registry_batch)
            for t in REGISTRY_TYPES} | {
            registry_events.SHOCK_DECLARED: Handler(_bind(rt, reviews.on_shock_declared),
                                                    registry_events.ShockDeclaredV1)},
            fetch_max_wait_ms=settings.registry_fetch_max_wait_ms),
        ConsumerSpec(name="supervision", topics=[supervision_events.TOPIC], handlers={
            supervision_events.POSTING_APPROVED: Handler(
                _bind(rt, inbound.on_posting_approved), supervision_events.PostingApprovedV1)}),
    ]
