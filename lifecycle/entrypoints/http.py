"""The edge between azure.functions objects and our services, shared by both runtimes.

Azure Functions hands these handlers real `func.HttpRequest` / `func.ServiceBusMessage`
objects; the local server builds the same `func.HttpRequest` from raw HTTP and calls the
same handlers, so both runtimes answer with identical codes and bodies.

    webhook   WebhookAnswer -> JSON response; anything unexpected -> 500, never 4xx
              (on ChangePlan/ChangeQuantity a 4xx is a rejection, a crash must not be one)
    health    liveness: 200 unless a cheap local check raises -> 503; no outside calls
    queue_message  func.ServiceBusMessage -> QueueMessage (attempt/source defaulted)

Headers and bodies are never logged: the Authorization header is a bearer token and the
body carries customer e-mail addresses.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import azure.functions as func

from lifecycle import __version__
from lifecycle.logs import get_logger
from lifecycle.ports import QueueMessage
from lifecycle.settings import SettingsError

if TYPE_CHECKING:
    from lifecycle.services.ingress import WebhookService

Check = Callable[[], object]
"""A cheap local check: returns when healthy, raises when not (its result is ignored)."""

DEFAULT_SOURCE = "webhook"


def webhook(req: func.HttpRequest, service: WebhookService) -> func.HttpResponse:
    """Answer one marketplace delivery with the service's verdict as JSON."""
    # HttpRequestHeaders lower-cases names, so this finds `Authorization` however it was spelt.
    authorization = req.headers.get("authorization")
    body = req.get_body() or b""
    try:
        answer = service.receive(authorization, body)
    except Exception as error:  # a bug must still answer 5xx: the marketplace then retries
        get_logger("lifecycle.http").error("webhook.crashed", error_type=type(error).__name__, where=_where(error))
        return _json(500, {"error": "internal error, retry"})
    return _json(answer.status, answer.body)


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
    """Our QueueMessage from what the Service Bus trigger delivered; missing properties get defaults."""
    # Imported here so the HTTP functions never load the Service Bus SDK at cold start.
    from lifecycle.queue.servicebus import ATTEMPT, SOURCE

    properties: Mapping[str, Any] = msg.application_properties or {}
    return QueueMessage(
        session_id=msg.session_id or "",
        message_id=msg.message_id or "",
        # A body that is not UTF-8 still reaches the parser, which refuses it with a reason.
        body=msg.get_body().decode("utf-8", "replace"),
        attempt=_attempt(properties.get(ATTEMPT)),
        source=str(properties.get(SOURCE) or DEFAULT_SOURCE),
    )


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
