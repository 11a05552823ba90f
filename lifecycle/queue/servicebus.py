"""ServiceBusQueue: the Queue port on an Azure Service Bus queue with sessions.

The Functions output binding cannot set a session id or message id, so the webhook
sends with the SDK: session id = subscription id (per-subscription order), message id
= operation id (the queue's duplicate detection drops marketplace redeliveries within
its window). Every SDK failure becomes QueueUnavailable (the webhook answers 503).
"""

from __future__ import annotations

import threading
from typing import Any

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus.exceptions import ServiceBusError

from lifecycle.errors import QueueUnavailable
from lifecycle.ports import QueueMessage

ATTEMPT = "attempt"
SOURCE = "source"


def to_servicebus(message: QueueMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        message.body,
        session_id=message.session_id,
        message_id=message.message_id,
        content_type="application/json",
        scheduled_enqueue_time_utc=message.scheduled_at,
        application_properties={ATTEMPT: message.attempt, SOURCE: message.source},
    )


class ServiceBusQueue:
    """One sender per process, opened on first send (never at import or construction)."""

    def __init__(self, client: ServiceBusClient, queue_name: str) -> None:
        self._client = client
        self._queue_name = queue_name
        self._sender: ServiceBusSender | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_connection_string(cls, conn: str, queue_name: str) -> ServiceBusQueue:
        return cls(ServiceBusClient.from_connection_string(conn), queue_name)

    @classmethod
    def from_namespace(cls, fully_qualified_namespace: str, credential: Any, queue_name: str) -> ServiceBusQueue:
        """Managed identity: pass azure-identity's DefaultAzureCredential."""
        return cls(ServiceBusClient(fully_qualified_namespace, credential), queue_name)

    def send(self, message: QueueMessage) -> None:
        try:
            self._open().send_messages(to_servicebus(message))
        except (ServiceBusError, OSError) as error:
            raise QueueUnavailable(f"Service Bus: {type(error).__name__}: {error}") from error

    def _open(self) -> ServiceBusSender:
        with self._lock:
            if self._sender is None:
                self._sender = self._client.get_queue_sender(self._queue_name)
            return self._sender

    def close(self) -> None:
        with self._lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None
        self._client.close()
