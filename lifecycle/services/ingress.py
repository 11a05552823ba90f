"""The webhook's fast path, inside the marketplace's 10-second window.

authenticate -> parse -> (ChangePlan/ChangeQuantity) recognise a redelivery, else decide ->
record the delivery -> enqueue -> answer. The answer codes are the contract with the marketplace:

    200  accepted (or a redelivery of something already recorded)
    400  malformed body, or a change we refuse: on ChangePlan/ChangeQuantity a 4xx IS the
         rejection, so nothing transient may ever answer 4xx
    401  the bearer token does not prove the marketplace sent it
    413  body larger than we accept
    503  anything transient (keys, storage, API, queue): the marketplace retries

The message is scheduled `enqueue_delay` ahead so the processor's PATCH cannot reach the
marketplace before this answer has gone out.

A refusal is not given for an operation the marketplace already decided (the policy reads
it first: a redelivery after an earlier answer was a 5xx), nor when it is reached after
`decision_seconds` (8 s of the marketplace's 10; the API was slow): by then the marketplace
has auto-accepted the change or will have, so a 400 would refuse nothing and a REJECTED
record would hide a change that happened. The change is accepted instead, and processing
follows its operation to whatever it became.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from lifecycle.domain.events import ChangePlan, ChangeQuantity, Event, Source
from lifecycle.domain.history import HistoryEntry, Outcome
from lifecycle.domain.model import Subscription
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus
from lifecycle.errors import (
    ConcurrencyConflict,
    InvalidPayload,
    MarketplaceNotFound,
    MarketplaceUnavailable,
    PermanentError,
    TransientError,
    Unauthenticated,
)
from lifecycle.logs import get_logger
from lifecycle.parsing import json_text, load_json, parse_webhook
from lifecycle.ports import Authenticator, Clock, Queue, QueueMessage, SubscriptionStore
from lifecycle.services.policy import ChangePolicy, Verdict

KEPT_PAYLOAD_CHARS = 30_000  # a Table string property holds 64 KiB of UTF-16: about 32K characters
# Real deliveries are a few KB. No larger than what the delivery record keeps (UTF-8 has at
# most one character per byte), so a stored payload is always whole and a replay sends it all.
MAX_BODY_BYTES = KEPT_PAYLOAD_CHARS
DECISION_SECONDS = 8.0  # of the marketplace's 10 s, counted from our first byte: later, a refusal refuses nothing


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


ACCEPTED = "accepted"
"""A RECEIVED delivery record's outcome once the webhook accepted its change."""


class WebhookService:
    """Receives one webhook delivery and answers it; see the module docstring for the codes."""

    def __init__(
        self,
        store: SubscriptionStore,
        queue: Queue,
        policy: ChangePolicy,
        clock: Clock,
        *,
        authenticator: Authenticator | None,
        enqueue_delay: timedelta = timedelta(seconds=2),
        max_body_bytes: int = MAX_BODY_BYTES,
        decision_seconds: float = DECISION_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._queue = queue
        self._policy = policy
        self._clock = clock
        self._authenticator = authenticator  # None: `api` mode, verification through the API only
        self._delay = enqueue_delay
        self._max_body = max_body_bytes
        self._decision_seconds = decision_seconds
        self._monotonic = monotonic
        self._log = get_logger("lifecycle.webhook")

    def receive(self, authorization: str | None, body: bytes) -> WebhookAnswer:
        started = self._monotonic()
        if len(body) > self._max_body:
            self._log.warning("webhook.too_large", size_bytes=len(body))
            return WebhookAnswer(413, {"error": f"body larger than {self._max_body} bytes"})
        try:
            if self._authenticator is not None:
                self._authenticator.authenticate(authorization)
            text = json_text(body)
            event = parse_webhook(load_json(text))
        except Unauthenticated as error:
            self._log.warning("webhook.unauthenticated", reason=str(error))
            return WebhookAnswer(401, {"error": "unauthenticated"})
        except InvalidPayload as error:
            self._log.warning("webhook.invalid", reason=str(error), size_bytes=len(body))
            return WebhookAnswer(400, {"error": str(error)})
        except TransientError as error:
            self._log.error("webhook.unavailable", error_type=type(error).__name__, reason=str(error))
            return WebhookAnswer(503, {"error": "temporarily unavailable, retry"})
        log = self._log.bind(
            subscription_id=event.subscription_id,
            operation_id=event.operation_id,
            activity_id=event.activity_id,
            action=event.action.value,
        )
        try:
            return self._accept_or_reject(event, text, log, started)
        except TransientError as error:
            log.error("webhook.unavailable", error_type=type(error).__name__, reason=str(error))
            return WebhookAnswer(503, {"error": "temporarily unavailable, retry"})

    def _accept_or_reject(self, event: Event, payload: str, log: Any, started: float) -> WebhookAnswer:
        now = self._clock.now()
        record = DeliveryRecord(
            subscription_id=event.subscription_id,
            operation_id=event.operation_id,
            action=event.action.value,
            activity_id=event.activity_id,
            status=DeliveryStatus.RECEIVED,
            received_at=now,
            updated_at=now,
            payload=payload[:KEPT_PAYLOAD_CHARS],
        )
        verdict = None
        stored = None
        if isinstance(event, ChangePlan | ChangeQuantity):
            # A redelivery is recognised before anything is judged again: its record answers it,
            # with no API call or veto inside the window that a slow first answer may have used up.
            stored = self._store.delivery(event.subscription_id, event.operation_id)
            if stored is None or not _answered(stored):
                # Judged before it is recorded, so an accepted change is recorded once, already
                # accepted: one write inside the window instead of a record and its update.
                snapshot = self._store.load(event.subscription_id)
                verdict = self._judge(event, snapshot.subscription if snapshot else None, log)
                if verdict.accepted and verdict.reason:  # a redelivery after the marketplace decided
                    log.warning("webhook.refusal_moot", reason=verdict.reason)
                elapsed = self._monotonic() - started
                if not verdict.accepted and elapsed > self._decision_seconds:
                    log.warning("webhook.refusal_too_late", elapsed_ms=round(elapsed * 1000), reason=verdict.reason)
                    verdict = Verdict(True)
                if verdict.accepted:
                    record = replace(record, outcome=ACCEPTED)
        if stored is None:
            stored = self._store.record_delivery(record)  # the first record of an operation stands
        if stored.status is DeliveryStatus.REJECTED:
            log.info("webhook.rejected_again", reason=stored.reason)
            return WebhookAnswer(400, {"error": stored.reason})
        if stored.status.is_final:
            log.info("webhook.already_processed", status=stored.status.value)
            return WebhookAnswer(200, {"status": "already processed"})
        if verdict is not None and stored.outcome != ACCEPTED:
            if not verdict.accepted:
                # In `api` mode nothing vouches for a body the marketplace did not confirm: its
                # refusal stays on its delivery record, out of the subscription's history.
                vouched = self._authenticator is not None or verdict.confirmed
                self._reject(event, stored, verdict.reason, history=vouched)
                log.info("webhook.rejected", reason=verdict.reason)
                return WebhookAnswer(400, {"error": verdict.reason})
            # Recorded by an earlier delivery that stopped before its answer: remember it now.
            self._store.update_delivery(replace(stored, outcome=ACCEPTED, updated_at=now))
        # An accepted change stays accepted for its redeliveries, whatever today's verdict:
        # judged against a state that has moved on (a newer plan), it could be refused after
        # it took effect.
        self._queue.send(
            QueueMessage(
                session_id=event.subscription_id,
                message_id=event.operation_id,
                body=payload,
                scheduled_at=self._clock.now() + self._delay,  # from now: judging may have taken seconds
            )
        )
        log.info("webhook.accepted")
        return WebhookAnswer(200, {"status": "accepted"})

    def _judge(self, event: Event, state: Subscription | None, log: Any) -> Verdict:
        """The policy's verdict; only a marketplace that does not know the change may refuse it."""
        try:
            return self._policy.check(event, state)
        except MarketplaceNotFound:
            return Verdict(False, "the marketplace knows no such subscription or operation")
        except PermanentError as error:
            # A 403 or 401 here is our own misconfiguration, not the customer's fault: a 4xx
            # would reject every change, so answer 503 and let the marketplace retry.
            log.error("webhook.policy_unavailable", error_type=type(error).__name__, reason=str(error))
            raise MarketplaceUnavailable(f"cannot judge the change: {type(error).__name__}") from error

    def _reject(self, event: Event, record: DeliveryRecord, reason: str, *, history: bool) -> None:
        """Record the refusal in the delivery record and, with `history` and a subscription we know, its history."""
        now = self._clock.now()
        rejected = replace(record, status=DeliveryStatus.REJECTED, outcome=Outcome.REJECTED.value, reason=reason,
                           updated_at=now)
        entry = HistoryEntry(
            subscription_id=event.subscription_id,
            operation_id=event.operation_id,
            activity_id=event.activity_id,
            action=event.action,
            source=Source.WEBHOOK,
            outcome=Outcome.REJECTED,
            recorded_at=now,
            event_time=event.timestamp,
            reason=reason,
        )
        if not history:
            self._store.update_delivery(rejected)
            return
        for _ in range(3):
            snapshot = self._store.load(event.subscription_id)
            if snapshot is None:
                self._store.update_delivery(rejected)
                return
            try:
                self._store.commit(
                    Commit(subscription=snapshot.subscription, expected=snapshot, history=(entry,), delivery=rejected)
                )
                return
            except ConcurrencyConflict:
                continue
        self._store.update_delivery(rejected)


def _answered(record: DeliveryRecord) -> bool:
    """Whether an earlier delivery of this change got its verdict: refused, accepted, processed, or
    accepted and then failed in processing (a refusal now would refuse what we accepted)."""
    return (record.status in (DeliveryStatus.REJECTED, DeliveryStatus.FAILED) or record.status.is_final
            or record.outcome == ACCEPTED)
