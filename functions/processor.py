"""The Service Bus queue trigger: one delivery through the processing service."""

from __future__ import annotations

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.entrypoints import http
from lifecycle.entrypoints.processor import Disposition, handle_message
from lifecycle.logs import get_logger
from lifecycle.ports import operation_id_of

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated


# Sessions: one subscription's deliveries are handled one at a time, in order. The queue
# name and connection are app settings (%SERVICEBUS_QUEUE%, SERVICEBUS or SERVICEBUS__*).
@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%SERVICEBUS_QUEUE%", connection="SERVICEBUS", is_sessions_enabled=True
)
def process_delivery(msg: func.ServiceBusMessage) -> None:
    worker = bootstrap.worker()
    message = http.queue_message(msg)
    # Transient errors raise through here: the message is abandoned, redelivered, and
    # dead-lettered by Service Bus itself once its max delivery count is reached.
    handled = handle_message(message, worker.processing, worker.queue, worker.clock,
                             delivery_count=msg.delivery_count or 1)
    if handled.disposition is Disposition.DEAD_LETTER:
        # Under auto-complete the Python binding cannot dead-letter explicitly. Where the
        # delivery record says FAILED with the reason and payload (our replayable dead-letter
        # view) we log loudly and complete; where nothing could record it (a body that is not
        # a webhook), raising lets Service Bus dead-letter it at its max delivery count.
        get_logger("lifecycle.processor").error(
            "message.dead_lettered",
            subscription_id=message.session_id,
            operation_id=operation_id_of(message.message_id),
            message_id=message.message_id,
            attempt=message.attempt,
            delivery_count=msg.delivery_count,
            reason=handled.reason,
            recorded=handled.recorded,
        )
        if not handled.recorded:
            raise UnrecordedDeadLetter(handled.reason)


class UnrecordedDeadLetter(Exception):
    """Raised so that Service Bus keeps a message we could not record anywhere."""
