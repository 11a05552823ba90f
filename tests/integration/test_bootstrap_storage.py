"""The composition root picks the storage account's client the same way for the store and the product outbox.

By connection string (every other test), else by table endpoint with the managed identity,
else refused by name. The managed identity exists only in Azure: here Azurite's account key
stands in for it, through the one function the composition root gets its credential from.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from lifecycle import bootstrap
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription
from lifecycle.domain.records import Commit
from lifecycle.local.azurite import DEV_ACCOUNT, DEV_KEY
from lifecycle.settings import Settings, SettingsError

MARKETPLACE = {"MARKETPLACE_TENANT_ID": "tenant", "MARKETPLACE_CLIENT_ID": "client", "MARKETPLACE_CLIENT_SECRET": "s"}


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({**MARKETPLACE, "LOCAL_QUEUE_PATH": str(tmp_path / "queue.sqlite"), **env})


def test_without_a_storage_account_the_worker_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="STORAGE_CONNECTION_STRING, or STORAGE_TABLE_ENDPOINT"):
        bootstrap.build(settings(tmp_path))


@pytest.mark.azurite
def test_a_table_endpoint_serves_the_store_and_the_outbox_with_the_managed_identity(
    tmp_path: Path, azurite_connection_string: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Any] = []

    def identity() -> AzureNamedKeyCredential:
        asked.append(1)
        return AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY)

    monkeypatch.setattr(bootstrap, "_azure_credential", identity)
    endpoint = next(p for p in azurite_connection_string.split(";") if p.startswith("TableEndpoint=")).split("=", 1)[1]
    worker = bootstrap.build(settings(tmp_path, STORAGE_TABLE_ENDPOINT=endpoint, TABLE_PREFIX=table_prefix,
                                      PRODUCT_EVENTS_URL="http://127.0.0.1:9/events", PRODUCT_SIGNING_SECRET="k"))
    subscription = Subscription(id=str(uuid.uuid4()), plan_id="team", quantity=5, status=Status.SUBSCRIBED)

    written = worker.store.commit(Commit(subscription=subscription, expected=None))
    assert worker.outbox is not None
    worker.outbox.notify(ChangeKind.ACTIVATED, subscription, operation_id="op-1")

    assert worker.store.load(subscription.id) == written
    assert [entry.type for entry in worker.outbox.events(subscription.id)] == ["subscription.activated"]
    assert len(asked) == 3  # one client each (the webhook's store has its own), all signed in with the identity


@pytest.fixture
def silent_storage() -> Iterator[str]:
    """A table endpoint that takes connections and never answers (storage hanging, not refusing)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    yield (f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
           f"TableEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};")
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_hanging_storage_account_is_a_503_inside_the_webhooks_window(tmp_path: Path, silent_storage: str) -> None:
    worker = bootstrap.build(settings(tmp_path, STORAGE_CONNECTION_STRING=silent_storage, WEBHOOK_AUTH="api"))
    body = {"id": str(uuid.uuid4()), "subscriptionId": str(uuid.uuid4()), "action": "Suspend"}

    started = time.monotonic()
    answer = worker.webhook.receive(None, json.dumps(body).encode())
    elapsed = time.monotonic() - started

    assert answer.status == 503
    assert elapsed < 10, f"answered after {elapsed:.1f} s: the marketplace stopped waiting at 10"
