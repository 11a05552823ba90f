"""Helpers for the function-layer tests: real azure.functions objects, a worker on fakes.

The Functions host cannot run here, so the tests do what it does: index the blueprints
through azure.functions' own `FunctionApp.get_functions()`, build requests and Service Bus
messages with the library's own constructors and trigger converter, and call the user
functions those `Function` objects hand back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.decorators.function_app import Blueprint
from azure.functions.servicebus import ServiceBusMessageInConverter

from lifecycle.bootstrap import Worker, build
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.settings import Settings, WebhookAuth
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.queue import FakeQueue
from tests.fakes.store import FakeSubscriptionStore

WEBHOOK_URL = "http://127.0.0.1:7071/api/marketplace/webhook"


def user_function(bp: Blueprint, name: str) -> Callable[..., Any]:
    """The Python function behind `name`, as the worker finds it after indexing.

    A throwaway app is indexed so `function_app.app` is never touched: azure.functions
    remembers the names it has validated and refuses a second `get_functions()` call.
    """
    app = func.FunctionApp()
    app.register_functions(bp)
    functions = {f.get_function_name(): f for f in app.get_functions()}
    return functions[name].get_user_function()


@dataclass
class Stack:
    """A worker wired to in-memory fakes, and the sandbox marketplace behind its API."""

    marketplace: Marketplace
    api: InProcessMarketplaceApi
    store: FakeSubscriptionStore
    queue: FakeQueue
    worker: Worker


def stack(settings: Settings | None = None) -> Stack:
    marketplace = Marketplace()
    api = InProcessMarketplaceApi(marketplace)
    store, queue = FakeSubscriptionStore(), FakeQueue()
    settings = settings or Settings(webhook_auth=WebhookAuth.API, enqueue_delay_seconds=0)
    worker = build(settings, store=store, queue=queue, api=api, webhook_api=api)
    return Stack(marketplace, api, store, queue, worker)


def webhook_request(body: bytes, headers: Mapping[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest("POST", WEBHOOK_URL, headers=dict(headers or {"Content-Type": "application/json"}),
                            body=body)


def servicebus_message(
    body: str,
    *,
    session_id: str,
    message_id: str,
    application_properties: Mapping[str, Any] | None = None,
    delivery_count: int = 1,
) -> func.ServiceBusMessage:
    """A message decoded by azure.functions' own trigger converter from host-shaped metadata."""
    metadata = {
        "MessageId": meta.Datum(message_id, "string"),
        "SessionId": meta.Datum(session_id, "string"),
        "DeliveryCount": meta.Datum(delivery_count, "int"),
        "ContentType": meta.Datum("application/json", "string"),
        "ApplicationProperties": meta.Datum(json.dumps(dict(application_properties or {})), "json"),
        "UserProperties": meta.Datum(json.dumps(dict(application_properties or {})), "json"),
    }
    decoded = ServiceBusMessageInConverter.decode(meta.Datum(body, "string"), trigger_metadata=metadata)
    assert isinstance(decoded, func.ServiceBusMessage)
    return decoded


def answer(response: func.HttpResponse) -> tuple[int, dict[str, Any]]:
    """Status and decoded JSON body of a response, asserting it is JSON."""
    assert response.mimetype == "application/json"
    body: dict[str, Any] = json.loads(response.get_body())
    return response.status_code, body


def new_id() -> str:
    return str(uuid.uuid4())
