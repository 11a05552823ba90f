"""Processing one delivery: verify it, decide, acknowledge, commit, tell the product.

Crash safety comes from the order of the steps, not from locks. The acknowledgement
(PATCH) comes before the commit: if we die between the two, the redelivery finds the
operation already final (Succeeded) and applies it without a second PATCH. The commit
writes state, history and the delivery record in one transaction guarded by the ETag
read at the start; a concurrent writer makes it fail whole, and we start over from a
fresh read (the second pass sees the operation final and does not PATCH again).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lifecycle.domain.events import Action, ChangePlan, ChangeQuantity, Event, Source, UnknownAction
from lifecycle.domain.history import Acknowledge, ChangeKind, NotifyProduct, Outcome, RecordHistory
from lifecycle.domain.lifecycle import ACKNOWLEDGED, OUTCOME_OF, Decision, Delivery, decide
from lifecycle.domain.model import OperationStatus, Subscription
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus, Snapshot
from lifecycle.errors import (
    ConcurrencyConflict,
    MarketplaceBadRequest,
    MarketplaceConflict,
    MarketplaceNotFound,
    PermanentError,
    UnverifiedEvent,
)
from lifecycle.logs import get_logger
from lifecycle.ports import Clock, MarketplaceApi, Product, SubscriptionStore

_DELIVERY_STATUS = {
    Outcome.APPLIED: DeliveryStatus.APPLIED,
    Outcome.RESYNCED: DeliveryStatus.APPLIED,
    Outcome.DUPLICATE: DeliveryStatus.APPLIED,
    Outcome.SUPERSEDED: DeliveryStatus.APPLIED,
}


@dataclass(frozen=True, slots=True)
class Processed:
    outcome: Outcome
    subscription: Subscription | None
    reason: str = ""


class ProcessingService:
    """Turns one verified event into durable state; idempotent under redelivery."""

    def __init__(
        self,
        store: SubscriptionStore,
        api: MarketplaceApi,
        product: Product,
        clock: Clock,
        *,
        max_conflicts: int = 5,
    ) -> None:
        self._store = store
        self._api = api
        self._product = product
        self._clock = clock
        self._max_conflicts = max_conflicts
        self._log = get_logger("lifecycle.processing")

    def process(self, event: Event, *, source: Source = Source.WEBHOOK, payload: str = "") -> Processed:
        """Apply `event`. Transient errors raise (redeliver); permanent ones are recorded, then raise."""
        log = self._log.bind(
            subscription_id=event.subscription_id,
            operation_id=event.operation_id,
            activity_id=event.activity_id,
            action=event.action.value,
            source=source.value,
        )
        for attempt in range(1, self._max_conflicts + 1):
            try:
                result = self._process_once(event, source, payload, log)
            except ConcurrencyConflict:
                if attempt == self._max_conflicts:
                    raise
                log.info("processing.conflict_retry", attempt=attempt)
                continue
            except PermanentError as error:
                self.record_failure(event, str(error), payload=payload)
                log.warning("processing.failed", reason=str(error), error_type=type(error).__name__)
                raise
            log.info("processing.done", outcome=result.outcome.value, reason=result.reason)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _process_once(self, event: Event, source: Source, payload: str, log: Any) -> Processed:
        record = self._store.delivery(event.subscription_id, event.operation_id)
        if record is not None and record.status.is_final:
            if record.status is DeliveryStatus.APPLIED:
                self._notify_again(event, log)
            return Processed(Outcome.DUPLICATE, None, "delivery already processed")
        if record is not None and record.status is DeliveryStatus.FAILED and self._applied(event):
            # Committed, then given up on while the product's outbox could not be written: a replay
            # tells the product now. Processing it again would find nothing to change, and tell nothing.
            self._notify_again(event, log)
            self._store.update_delivery(replace(record, status=DeliveryStatus.APPLIED, outcome=Outcome.APPLIED.value,
                                                reason="", updated_at=self._clock.now(), attempts=record.attempts + 1))
            return Processed(Outcome.DUPLICATE, None, "applied before; the product is told now")
        snapshot = self._store.load(event.subscription_id)
        state = snapshot.subscription if snapshot else None
        now = self._clock.now()
        delivery = self._verify(_not_after(event, now), source)
        decision = decide(state, delivery, now)
        if decision.outcome is Outcome.NEEDS_TRUTH:
            truth = delivery.truth or self._api.get_subscription(event.subscription_id)
            delivery = replace(delivery, truth=truth)
            decision = decide(state, delivery, now)
        decision = self._acknowledge(decision, delivery, state, log)
        self._commit(decision, snapshot, record, delivery, payload)
        for effect in decision.effects:
            if isinstance(effect, NotifyProduct):
                self._notify(effect, event, log)
        return Processed(decision.outcome, decision.state, decision.reason)

    def _verify(self, event: Event, source: Source) -> Delivery:
        """Confirm the event with the operations API (get subscription when there is none)."""
        if isinstance(event, UnknownAction):
            return Delivery(event=event, operation=OperationStatus.NOT_FOUND, source=source)
        try:
            operation = self._api.get_operation(event.subscription_id, event.operation_id)
        except MarketplaceNotFound:
            # A pending change must have its operation; Reinstate, notify-only by the current
            # docs, may come without one and is confirmed by the subscription like the others.
            if event.action in ACKNOWLEDGED and event.action is not Action.REINSTATE:
                raise UnverifiedEvent("the operations API does not know this operation") from None
            try:
                truth = self._api.get_subscription(event.subscription_id)
            except MarketplaceNotFound:
                raise UnverifiedEvent("neither the operation nor the subscription exists") from None
            return Delivery(event=event, operation=OperationStatus.NOT_FOUND, source=source, truth=truth)
        if operation.subscription_id and operation.subscription_id != event.subscription_id:
            raise UnverifiedEvent("the operation belongs to another subscription")
        if operation.action and operation.action.lower() != event.action.value.lower():
            raise UnverifiedEvent(f"the operation is a {operation.action}, not a {event.action.value}")
        # The operation is the authority on what was asked and when; the webhook only pointed at it
        # (in `api` mode nothing vouches for the body's own timeStamp, which stamps our aspects).
        if operation.timestamp is not None:
            event = replace(event, timestamp=operation.timestamp)
        if isinstance(event, ChangePlan) and operation.plan_id:
            event = replace(event, plan_id=operation.plan_id)
        if isinstance(event, ChangePlan) and not event.plan_id:
            raise UnverifiedEvent("neither the webhook nor its operation names the target plan")
        if isinstance(event, ChangeQuantity) and operation.quantity is not None:
            event = replace(event, quantity=operation.quantity)
        if isinstance(event, ChangeQuantity) and event.quantity is None:
            raise UnverifiedEvent("neither the webhook nor its operation names the target quantity")
        return Delivery(event=event, operation=operation.status, source=source)

    def _acknowledge(self, decision: Decision, delivery: Delivery, state: Subscription | None, log: Any) -> Decision:
        """Carry out the Acknowledge effect; if the operation went final meanwhile, decide on that."""
        ack = next((e for e in decision.effects if isinstance(e, Acknowledge)), None)
        if ack is None:
            return decision
        event = delivery.event
        try:
            self._api.update_operation(event.subscription_id, event.operation_id, success=ack.success)
            log.info("operation.acknowledged", success=ack.success)
            return decision
        except MarketplaceConflict:
            final = self._api.get_operation(event.subscription_id, event.operation_id).status
            log.info("operation.already_final", status=final.value)
        except MarketplaceBadRequest:
            if event.action is not Action.REINSTATE:
                raise
            # Current docs make Reinstate notify-only; the truth tells whether it took effect.
            final = OperationStatus.NOT_FOUND
            log.info("operation.ack_not_needed")
        refreshed = replace(delivery, operation=final, truth=None)
        again = decide(state, refreshed, self._clock.now())
        if again.outcome is Outcome.NEEDS_TRUTH:
            truth = self._api.get_subscription(event.subscription_id)
            again = decide(state, replace(refreshed, truth=truth), self._clock.now())
        return again

    def _commit(
        self,
        decision: Decision,
        snapshot: Snapshot | None,
        record: DeliveryRecord | None,
        delivery: Delivery,
        payload: str,
    ) -> None:
        event = delivery.event
        now = self._clock.now()
        status = _DELIVERY_STATUS.get(decision.outcome, DeliveryStatus.IGNORED)
        done = _delivery(record, event, payload, now, status, decision.outcome.value, decision.reason)
        history = tuple(e.entry for e in decision.effects if isinstance(e, RecordHistory))
        if decision.state is None:
            self._store.update_delivery(done)  # nothing to keep a state row for
            return
        if snapshot is not None and decision.state == snapshot.subscription and not history:
            self._store.update_delivery(done)
            return
        self._store.commit(Commit(subscription=decision.state, expected=snapshot, history=history, delivery=done))

    def _applied(self, event: Event) -> bool:
        """Whether this operation's change is in the history (committed before its delivery failed)."""
        return any(e.operation_id == event.operation_id and e.outcome in (Outcome.APPLIED, Outcome.RESYNCED)
                   for e in self._store.history(event.subscription_id))

    def _notify_again(self, event: Event, log: Any) -> None:
        """Tell the product again what this applied delivery changed: a crash may have come
        between our commit and the notification (the message was not completed, so it came
        back). The product port is idempotent per operation and change, so nothing is told twice.
        """
        snapshot = self._store.load(event.subscription_id)
        if snapshot is None or snapshot.subscription.last_operation_id != event.operation_id:
            return  # a later change was applied since: this one was told before it
        entries = [e for e in reversed(self._store.history(event.subscription_id))
                   if e.operation_id == event.operation_id and e.changes
                   and e.outcome in (Outcome.APPLIED, Outcome.RESYNCED)]
        for entry in entries:
            kind = ChangeKind.RESYNCED if entry.outcome is Outcome.RESYNCED else OUTCOME_OF[entry.action].change
            self._notify(NotifyProduct(kind, snapshot.subscription), event, log)

    def _notify(self, effect: NotifyProduct, event: Event, log: Any) -> None:
        # After the ack and the commit, so the marketplace path is done whatever happens here. A
        # failure raises: the message comes back and `_notify_again` tells the product then (an
        # event swallowed here would be lost with only a warning to show for it).
        self._product.notify(effect.change, effect.subscription, operation_id=event.operation_id)

    def record_failure(self, event: Event, reason: str, *, payload: str = "") -> None:
        """Mark the delivery FAILED with `reason` (our dead-letter view, replayable by ops)."""
        record = self._store.delivery(event.subscription_id, event.operation_id)
        now = self._clock.now()
        self._store.update_delivery(
            _delivery(record, event, payload, now, DeliveryStatus.FAILED, "failed", reason)
        )


def _delivery(
    record: DeliveryRecord | None,
    event: Event,
    payload: str,
    now: Any,
    status: DeliveryStatus,
    outcome: str,
    reason: str,
) -> DeliveryRecord:
    if record is None:
        return DeliveryRecord(
            subscription_id=event.subscription_id,
            operation_id=event.operation_id,
            action=event.action.value,
            activity_id=event.activity_id,
            status=status,
            received_at=now,
            updated_at=now,
            attempts=1,
            outcome=outcome,
            reason=reason,
            payload=payload,
        )
    return replace(record, status=status, updated_at=now, attempts=record.attempts + 1, outcome=outcome, reason=reason)


def _not_after(event: Event, now: datetime) -> Event:
    """The event with a body's timeStamp later than now brought back to now. The operation's own
    time replaces it when there is one; without one (a notify-only action with no operation) the
    body's stamps our aspects, and in `api` mode a forged time far ahead would make every later
    genuine change of them look older (superseded) until reconciliation."""
    if event.timestamp is None or event.timestamp <= now:
        return event
    return replace(event, timestamp=now)
