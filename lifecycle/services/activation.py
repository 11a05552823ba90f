"""Activation, the landing page's back end: resolve the token, provision, activate, confirm.

    resolve    the token (URL-decoded by the API client) names the subscription
    record     a subscription new here is stored as the marketplace has it (history: activation)
    provision  the product is told `activated` before we activate, so it is ready when billing starts
    activate   POST .../activate
    confirm    get subscription until it says Subscribed (activation is eventually consistent),
               within a budget; confirmed -> the Activate transition is committed, otherwise the
               history says "activation sent, not yet confirmed" and reconciliation finishes it

A token of a subscription that is already active ("manage account" visits) provisions and
activates nothing: the answer is the subscription. The activation's operation id is fixed
per subscription (`activation:{id}`), so a repeated visit while pending tells the product
nothing new (its event id is the same) and a confirmed one is a duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from lifecycle.domain.events import Action, Activate, Source
from lifecycle.domain.history import ChangeKind, FieldChange, HistoryEntry, NotifyProduct, Outcome, RecordHistory, diff
from lifecycle.domain.lifecycle import Delivery, decide
from lifecycle.domain.model import OperationStatus, Status, Subscription
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus, Snapshot
from lifecycle.errors import ConcurrencyConflict, PermanentError
from lifecycle.logs import get_logger
from lifecycle.ports import Clock, MarketplaceApi, Product, SubscriptionStore

NOT_CONFIRMED = "activation sent, not yet confirmed by the marketplace: reconciliation finishes it"


class ActivationResult(StrEnum):
    ACTIVATED = "activated"  # activated and confirmed Subscribed
    PENDING = "pending"  # activation sent, the marketplace does not show it yet
    ALREADY_ACTIVE = "already_active"  # a returning customer: nothing provisioned or activated


class CannotActivate(PermanentError):
    """The subscription cannot be activated (it is Unsubscribed)."""


@dataclass(frozen=True, slots=True)
class Activation:
    result: ActivationResult
    subscription: Subscription


def activation_id(subscription_id: str) -> str:
    return f"activation:{subscription_id}"


class ActivationService:
    """Activates the purchase a landing-page token names; see the module docstring."""

    def __init__(self, store: SubscriptionStore, api: MarketplaceApi, product: Product, clock: Clock, *,
                 confirm_seconds: float = 8.0, first_wait: float = 0.25,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._api = api
        self._product = product
        self._clock = clock
        self._confirm_seconds = confirm_seconds
        self._first_wait = first_wait
        self._sleep = sleep
        self._monotonic = monotonic
        self._log = get_logger("lifecycle.activation")

    def activate(self, token: str) -> Activation:
        """Errors from the API client's tree: a bad or expired token is MarketplaceBadRequest/NotFound."""
        purchase = self._api.resolve(token)
        truth = purchase.subscription
        log = self._log.bind(subscription_id=truth.id, operation_id=activation_id(truth.id))
        snapshot = self._store.load(truth.id) or self._record(truth)
        ours = snapshot.subscription
        if Status.UNSUBSCRIBED in (ours.status, truth.status):
            raise CannotActivate(f"subscription {truth.id} is Unsubscribed: it cannot be activated")
        if ours.status in (Status.SUBSCRIBED, Status.SUSPENDED):
            log.info("activation.already_active", status=ours.status.value)
            return Activation(ActivationResult.ALREADY_ACTIVE, ours)
        provisioned = replace(ours, status=Status.SUBSCRIBED)
        self._product.notify(ChangeKind.ACTIVATED, provisioned, operation_id=activation_id(truth.id))
        if truth.status is not Status.SUBSCRIBED:  # activated already (an earlier visit): only confirm
            self._api.activate(truth.id, ours.plan_id or purchase.plan_id, purchase.quantity)
            log.info("activation.sent")
        confirmed = self._confirm(truth.id)
        if confirmed is None:
            self._commit_pending(truth.id)
            log.warning("activation.not_confirmed", budget_seconds=self._confirm_seconds)
            return Activation(ActivationResult.PENDING, ours)
        state = self._commit_activated(confirmed)
        log.info("activation.confirmed")
        return Activation(ActivationResult.ACTIVATED, state)

    def _record(self, truth: Subscription) -> Snapshot:
        """Store a purchase we learn of from its token; the history says where it came from."""
        entry = self._entry(Outcome.RESYNCED, truth.id, changes=diff(None, truth),
                            reason="recorded from the landing-page token")
        try:
            return self._store.commit(Commit(subscription=truth, expected=None, history=(entry,)))
        except ConcurrencyConflict:  # a second visit (or a webhook) recorded it first
            stored = self._store.load(truth.id)
            if stored is None:
                raise
            return stored

    def _confirm(self, subscription_id: str) -> Subscription | None:
        """The marketplace's subscription once it says Subscribed, waiting with backoff within the budget."""
        deadline = self._monotonic() + self._confirm_seconds
        wait = self._first_wait
        while True:
            truth = self._api.get_subscription(subscription_id)
            if truth.status is Status.SUBSCRIBED:
                return truth
            left = deadline - self._monotonic()
            if left <= 0:
                return None
            self._sleep(min(wait, left))
            wait *= 2

    def _commit_activated(self, truth: Subscription) -> Subscription:
        event = Activate(operation_id=activation_id(truth.id), subscription_id=truth.id)
        delivery = Delivery(event=event, operation=OperationStatus.NOT_FOUND, source=Source.ACTIVATION, truth=truth)
        for _ in range(3):
            snapshot = self._store.load(truth.id)
            assert snapshot is not None  # recorded at the start, and subscriptions are never deleted here
            decision = decide(snapshot.subscription, delivery, self._clock.now())
            if decision.state is None or decision.state == snapshot.subscription:
                return snapshot.subscription  # a duplicate: confirmed on an earlier visit
            history = tuple(e.entry for e in decision.effects if isinstance(e, RecordHistory))
            record = self._delivery(truth.id, DeliveryStatus.APPLIED, decision.outcome.value)
            try:
                self._store.commit(Commit(subscription=decision.state, expected=snapshot, history=history,
                                          delivery=record))
            except ConcurrencyConflict:
                continue
            for effect in decision.effects:
                if isinstance(effect, NotifyProduct):  # the same event id as at provisioning: written once
                    self._product.notify(effect.change, effect.subscription, operation_id=event.operation_id)
            return decision.state
        raise ConcurrencyConflict(f"subscription {truth.id} kept changing while its activation was recorded")

    def _commit_pending(self, subscription_id: str) -> None:
        entry = self._entry(Outcome.NOT_APPLIED, subscription_id, reason=NOT_CONFIRMED)
        for _ in range(3):
            snapshot = self._store.load(subscription_id)
            assert snapshot is not None
            try:
                self._store.commit(Commit(subscription=snapshot.subscription, expected=snapshot, history=(entry,),
                                          delivery=self._delivery(subscription_id, DeliveryStatus.RECEIVED, "pending",
                                                                  NOT_CONFIRMED)))
                return
            except ConcurrencyConflict:
                continue
        # Only the note is lost: the activation was sent, and reconciliation finishes it.
        self._log.warning("activation.pending_not_noted", subscription_id=subscription_id,
                          operation_id=activation_id(subscription_id), reason="the row kept changing")

    def _entry(self, outcome: Outcome, subscription_id: str, *, reason: str,
               changes: tuple[FieldChange, ...] = ()) -> HistoryEntry:
        return HistoryEntry(subscription_id=subscription_id, operation_id=activation_id(subscription_id),
                            action=Action.ACTIVATE, source=Source.ACTIVATION, outcome=outcome,
                            recorded_at=self._clock.now(), changes=changes, reason=reason)

    def _delivery(self, subscription_id: str, status: DeliveryStatus, outcome: str, reason: str = "") -> DeliveryRecord:
        """The activation's own delivery record, so ops find it next to the webhook deliveries."""
        now = self._clock.now()
        return DeliveryRecord(subscription_id=subscription_id, operation_id=activation_id(subscription_id),
                              action=Action.ACTIVATE.value, status=status, received_at=now, updated_at=now,
                              outcome=outcome, reason=reason)
