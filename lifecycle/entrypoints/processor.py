"""One queue message through the processing service, and what to do with the message after.

The edge where processing errors become message dispositions:

    applied / duplicate / ignored          -> complete
    PermanentError (recorded by the service) -> dead-letter with the reason
    a body that is not a webhook            -> dead-letter, `recorded=False`: nothing keys a
                                               record, so in Azure the function raises and
                                               Service Bus dead-letters it
    MarketplaceUnavailable (API still failing after our in-call retries), StorageUnavailable
                                            -> complete and re-send a scheduled copy with
                                               attempt + 1 (backoff), dead-letter past max
    any other TransientError (ETag conflicts that persist, queue)
                                            -> raise: the broker redelivers at once, and
                                               dead-letters at its max delivery count

An outage lasts minutes; the broker's redeliveries come at once, so they would spend the
whole delivery count in seconds and dead-letter every message in flight. A scheduled copy
waits 30 s, doubling to 30 min. The copy needs only the queue, which is not the store.

Each message runs in a `process` span (subscription_id, operation_id, action, disposition)
and is counted by disposition; see `lifecycle.telemetry.instruments` for the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from opentelemetry.trace import SpanKind

from lifecycle.domain.events import Event, Source
from lifecycle.errors import InvalidPayload, MarketplaceUnavailable, PermanentError, StorageUnavailable
from lifecycle.logs import get_logger
from lifecycle.parsing import load_json, parse_webhook
from lifecycle.ports import Clock, Queue, QueueMessage, operation_id_of, resend_id
from lifecycle.services.processing import ProcessingService
from lifecycle.telemetry import Telemetry, current
from lifecycle.telemetry.instruments import ids
from lifecycle.telemetry.traced import span

MAX_ATTEMPTS = 8  # our own delayed re-sends, on top of the broker's redeliveries
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=30)


class Disposition(StrEnum):
    COMPLETE = "complete"
    DEAD_LETTER = "dead_letter"
    RESCHEDULED = "rescheduled"


@dataclass(frozen=True, slots=True)
class Handled:
    disposition: Disposition
    reason: str = ""
    recorded: bool = True  # the delivery record says FAILED with the reason (replayable)
    cause: str = ""  # why it was given up on, as a class name (a bounded metric label)


def handle_message(
    message: QueueMessage,
    processing: ProcessingService,
    queue: Queue,
    clock: Clock,
    *,
    delivery_count: int = 1,
    telemetry: Telemetry | None = None,
) -> Handled:
    """Process `message`; raise only for transient errors the broker should redeliver.

    `delivery_count` is the broker's (1 on a first delivery), for the redelivery count.
    """
    telemetry = telemetry or current()
    attributes = ids(message.session_id, operation_id_of(message.message_id), message_id=message.message_id,
                     attempt=message.attempt, delivery_count=delivery_count)
    if delivery_count > 1:
        telemetry.redeliveries.add(1)
    with span(telemetry, "process", SpanKind.CONSUMER, attributes) as processed:
        log = get_logger("lifecycle.processor").bind(operation_id=operation_id_of(message.message_id),
                                                      message_id=message.message_id,
                                                      subscription_id=message.session_id, attempt=message.attempt)
        try:
            event = parse_webhook(load_json(message.body))
        except InvalidPayload as error:
            log.warning("message.unparseable", reason=str(error))
            # No ids to key a delivery record by: only the broker's dead-letter queue can keep it.
            handled = Handled(Disposition.DEAD_LETTER, f"unparseable: {error}", recorded=False, cause="unparseable")
            action = "invalid"
        else:
            action = event.action.value
            # The operation's own id: a retry's message id carries a "#attempt" suffix.
            processed.set_attributes({"action": action, "operation_id": event.operation_id})
            try:
                handled = _process(event, message, processing, queue, clock, log)
            except Exception:  # raised for the broker to redeliver: counted, then passed on
                telemetry.messages.add(1, {"action": action, "disposition": "abandoned"})
                raise
        processed.set_attribute("disposition", handled.disposition.value)
    _count(telemetry, message, handled, action, clock)
    return handled


def _count(telemetry: Telemetry, message: QueueMessage, handled: Handled, action: str, clock: Clock) -> None:
    telemetry.messages.add(1, {"action": action, "disposition": handled.disposition.value})
    if message.scheduled_at is not None:  # when it became due; adapters that know set it on receipt
        telemetry.lag.record(max((clock.now() - message.scheduled_at).total_seconds(), 0.0), {"action": action})
    if handled.disposition is Disposition.RESCHEDULED:
        telemetry.retries.add(1, {"action": action})
    elif handled.disposition is Disposition.DEAD_LETTER:
        telemetry.dead_letters.add(1, {"action": action, "reason": handled.cause})


def _process(event: Event, message: QueueMessage, processing: ProcessingService, queue: Queue, clock: Clock,
             log: Any) -> Handled:
    source = Source.REPLAY if message.source == Source.REPLAY.value else Source.WEBHOOK
    try:
        processing.process(event, source=source, payload=message.body)
    except PermanentError as error:
        return Handled(Disposition.DEAD_LETTER, f"{type(error).__name__}: {error}", cause=type(error).__name__)
    except (MarketplaceUnavailable, StorageUnavailable) as error:
        if message.attempt >= MAX_ATTEMPTS:
            what = "marketplace" if isinstance(error, MarketplaceUnavailable) else "storage"
            reason = f"{what} unavailable after {message.attempt} attempts: {error}"
            # Storage still down: this raises, and the broker keeps the message (redelivery, dead-letter).
            processing.record_failure(event, reason, payload=message.body)
            return Handled(Disposition.DEAD_LETTER, reason, cause=type(error).__name__)
        delay = min(BASE_DELAY * 2 ** (message.attempt - 1), MAX_DELAY)
        retry = QueueMessage(
            session_id=message.session_id,
            message_id=resend_id(message.message_id, message.attempt + 1),
            body=message.body,
            scheduled_at=clock.now() + delay,
            attempt=message.attempt + 1,
            source=message.source,
        )
        queue.send(retry)
        log.warning("message.rescheduled", delay_seconds=delay.total_seconds(), reason=str(error))
        return Handled(Disposition.RESCHEDULED, str(error))
    return Handled(Disposition.COMPLETE)
