"""Topics disbursement consumes → handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.disbursement import events
from services.disbursement.handlers import Service, bank_batch, inbound, service_of
from services.disbursement.signatures import PartnerKeys
from services.eligibility import events as eligibility_events
from services.supervision import events as supervision_events
from shared.consumer import BatchContext, ConsumerSpec, EventContext, Handler
from shared.runtime import Runtime


def _bind(rt: Runtime, fn: Callable[[Service, EventContext, Any], Awaitable[None]]
          ) -> Callable[[EventContext, Any], Awaitable[None]]:
    async def handle(ctx: EventContext, payload: Any) -> None:
        await fn(service_of(rt), ctx, payload)

    return handle


def _bind_batch(rt: Runtime, fn: Callable[[Service, BatchContext], Awaitable[None]]
                ) -> Callable[[BatchContext], Awaitable[None]]:
    async def handle(ctx: BatchContext) -> None:
        await fn(service_of(rt), ctx)

    return handle


def consumer_specs(rt: Runtime) -> list[ConsumerSpec]:
    """Disbursement's consumer groups: upstream facts (the projection set-based), and the
    partners' statuses (each verified against its partner's keys first)."""
    settings = rt.settings
    partners = settings.partners  # type: ignore[attr-defined]
    # Parsed once here, at start-up: a key set that cannot be used stops the service.
    keys = PartnerKeys.load(settings.partner_key_files(),  # type: ignore[attr-defined]
                            allow_sandbox=settings.sandbox_partner_key_trusted)  # type: ignore[attr-defined]
    eligibility = _bind_batch(rt, inbound.on_eligibility)  # one function: one run per batch
    return [
        ConsumerSpec(name="upstream", topics=[eligibility_events.TOPIC, supervision_events.TOPIC],
                     handlers={
                         eligibility_events.PROGRAM_ELIGIBILITY_CHANGED: Handler(
                             model=eligibility_events.ProgramEligibilityChangedV1,
                             batch=eligibility),
                         eligibility_events.CLASSIFICATION_DECIDED: Handler(
                             model=eligibility_events.ClassificationDecidedV1,
                             batch=eligibility),
                         eligibility_events.REVIEW_OPENED: Handler(
                             model=eligibility_events.ReviewOpenedV1, batch=eligibility),
                         supervision_events.HOLD_REQUESTED: Handler(
                             _bind(rt, inbound.on_hold_requested),
                             supervision_events.HoldRequestedV1),
                         supervision_events.HOLD_RELEASED: Handler(
                             _bind(rt, inbound.on_hold_released),
                             supervision_events.HoldReleasedV1),
                     }),
        # Nothing from a partner is applied unless signed by one of its keys.
        ConsumerSpec(name="bank-status", topics=[events.status_topic(p) for p in partners],
                     authenticate=keys.verify,
                     handlers={events.BANK_STATUS: Handler(
                         model=events.BankInstructionStatusV1,
                         batch=_bind_batch(rt, bank_batch.on_bank_statuses))}),
    ]
