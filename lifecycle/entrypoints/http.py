"""The edge between azure.functions objects and our services, shared by both runtimes.

Azure Functions hands these handlers real `func.HttpRequest` / `func.ServiceBusMessage`
objects; the local server builds the same `func.HttpRequest` from raw HTTP and calls the
same handlers, so both runtimes answer with identical codes and bodies.

    webhook   WebhookAnswer -> JSON response; anything unexpected -> 500, never 4xx
              (on ChangePlan/ChangeQuantity a 4xx is a rejection, a crash must not be one)
    health    liveness: 200 unless a cheap local check raises -> 503; no outside calls
    queue_message  func.ServiceBusMessage -> QueueMessage (attempt/source defaulted)

Headers and bodies are never logged: the Authorization header is a bearer token and the
body carries customer e-mail addresses. With telemetry on, the webhook runs in a `webhook`
span carrying the delivery's ids, action and answer, and counts the delivery.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func
from opentelemetry.trace import Span, SpanKind

from lifecycle import __version__
from lifecycle.errors import InvalidPayload
from lifecycle.logs import get_logger
from lifecycle.parsing import load_json, parse_webhook
from lifecycle.ports import QueueMessage
from lifecycle.settings import SettingsError
from lifecycle.telemetry import Telemetry, current
from lifecycle.telemetry.instruments import ids
from lifecycle.telemetry.traced import failed, span

if TYPE_CHECKING:
    from lifecycle.services.ingress import WebhookService

Check = Callable[[], object]
"""A cheap local check: returns when healthy, raises when not (its result is ignored)."""

DEFAULT_SOURCE = "webhook"


def webhook(req: func.HttpRequest, service: WebhookService, telemetry: Telemetry | None = None) -> func.HttpResponse:
    """Answer one marketplace delivery with the service's verdict as JSON."""
    telemetry = telemetry or current()
    # HttpRequestHeaders lower-cases names, so this finds `Authorization` however it was spelt.
    authorization = req.headers.get("authorization")
    body = req.get_body() or b""
    with span(telemetry, "webhook", SpanKind.SERVER, {}) as delivery:
        try:
            answer = service.receive(authorization, body)
            status, answer_body = answer.status, answer.body
        except Exception as error:  # a bug must still answer 5xx: the marketplace then retries
            get_logger("lifecycle.http").error("webhook.crashed", error_type=type(error).__name__,
                                               where=_where(error))
            failed(delivery, error)
            status, answer_body = 500, {"error": "internal error, retry"}
        if telemetry.enabled:
            _observe(telemetry, delivery, body, status)
    return _json(status, answer_body)


def _observe(telemetry: Telemetry, delivery: Span, body: bytes, status: int) -> None:
    """The delivery's ids on its span, and one count by action and answer (parsed only when on)."""
    try:
        event = parse_webhook(load_json(body))
    except InvalidPayload:
        action = "invalid"
    else:
        action = event.action.value  # a closed set (unknown actions are "Unknown"): bounded metric labels
        delivery.set_attributes(ids(event.subscription_id, event.operation_id))  # bounded by parse_webhook
    delivery.set_attributes({"action": action, "http.response.status_code": status})
    telemetry.deliveries.add(1, {"action": action, "status": status})


def health(req: func.HttpRequest, *checks: Check) -> func.HttpResponse:
    """Liveness: 200 with our version, or 503 naming the failed checks (not their messages)."""
    failed: list[str] = []
    for check in checks:
        try:
            check()
        except Exception as error:
            name = getattr(check, "__name__", type(check).__name__)
            # Our own SettingsError names the missing setting, never a value: log it. Other messages
            # could quote a malformed connection string, so only their type is kept. Neither goes
            # to the anonymous caller.
            reason = str(error) if isinstance(error, SettingsError) else ""
            get_logger("lifecycle.http").error("health.check_failed", check=name, error_type=type(error).__name__,
                                               reason=reason)
            failed.append(f"{name}: {type(error).__name__}")
    if failed:
        return _json(503, {"status": "unhealthy", "version": __version__, "failed": failed})
    return _json(200, {"status": "ok", "version": __version__})


def queue_message(msg: func.ServiceBusMessage) -> QueueMessage:
    """Our QueueMessage from what the Service Bus trigger delivered; missing properties get defaults.

    `scheduled_at` is when the message became due: its scheduled enqueue time, or when it was
    enqueued; the processor measures its lag from there.
    """
    # Imported here so the HTTP functions never load the Service Bus SDK at cold start.
    from lifecycle.queue.servicebus import ATTEMPT, SOURCE

    properties: Mapping[str, Any] = msg.application_properties or {}
    return QueueMessage(
        session_id=msg.session_id or "",
        message_id=msg.message_id or "",
        # A body that is not UTF-8 still reaches the parser, which refuses it with a reason.
        body=msg.get_body().decode("utf-8", "replace"),
        scheduled_at=_due(msg),
        attempt=_attempt(properties.get(ATTEMPT)),
        source=str(properties.get(SOURCE) or DEFAULT_SOURCE),
    )


def _due(msg: func.ServiceBusMessage) -> datetime | None:
    # The later of the two: an unscheduled message may report .NET's minimum date as its
    # scheduled time, and the host may hand either over without a timezone (it is UTC).
    times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in (msg.enqueued_time_utc, msg.scheduled_enqueue_time_utc)
             if t is not None]
    return max(times, default=None)


def _attempt(raw: object) -> int:
    # The host passes application properties through JSON: an int, or a string if a sender wrote one.
    try:
        attempt = int(str(raw))
    except ValueError:
        return 1
    return max(attempt, 1)


def _json(status: int, body: Mapping[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _where(error: BaseException) -> str:
    """The innermost frame of a crash: enough to find the bug without logging its message."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"
