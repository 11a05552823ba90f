"""Azure's try right after a write: the product hears before processing finishes, and a
failing product, storage or configuration never fails or holds up the write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle import bootstrap
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import Status, Subscription
from lifecycle.errors import StorageUnavailable
from lifecycle.product.dispatcher import Dispatcher
from lifecycle.product.immediate import ImmediateDispatch
from lifecycle.product.outbox import TableOutbox
from lifecycle.product.sender import HttpEventSender
from lifecycle.sandbox import ManualClock
from lifecycle.settings import SettingsError
from tests.unit.product_server import ProductServer


@pytest.fixture
def product() -> Iterator[ProductServer]:
    with ProductServer() as server:
        yield server


class Stepped:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wired(conn: str, prefix: str, product: ProductServer, monotonic: Stepped) -> TableOutbox:
    """TableOutbox whose writes are followed by an immediate try, as bootstrap wires it in Azure."""
    clock = ManualClock()
    holder: list[TableOutbox] = []
    immediate = ImmediateDispatch(
        lambda: Dispatcher(holder[0], HttpEventSender(product.url, "secret", timeout=5), clock),
        budget_seconds=2.0, pause_seconds=30.0, monotonic=monotonic)
    holder.append(TableOutbox.from_connection_string(conn, prefix, clock, on_written=immediate))
    return holder[0]


def tell(outbox: TableOutbox, change: ChangeKind = ChangeKind.SUSPENDED) -> str:
    sid = str(uuid.uuid4())
    outbox.notify(change, Subscription(id=sid, status=Status.SUBSCRIBED), operation_id=f"{sid}-op")
    return sid


def test_the_product_hears_of_an_event_before_the_write_returns(
    azurite_connection_string: str, table_prefix: str, product: ProductServer
) -> None:
    outbox = wired(azurite_connection_string, table_prefix, product, Stepped())
    sid = tell(outbox)
    assert [b["type"] for b in product.bodies()] == ["subscription.suspended"]
    assert [e.status for e in outbox.events(sid)] == ["delivered"]
    outbox.close()


def test_a_failed_try_is_recorded_and_pauses_the_next_tries_for_the_timer(
    azurite_connection_string: str, table_prefix: str, product: ProductServer
) -> None:
    monotonic = Stepped()
    outbox = wired(azurite_connection_string, table_prefix, product, monotonic)
    product.status = 503
    first = tell(outbox)
    [entry] = outbox.events(first)
    assert (entry.status, entry.attempts, entry.last_error[:8]) == ("pending", 1, "HTTP 503")
    product.status = 200
    second = tell(outbox)
    assert len(product.received) == 1  # paused: the second waits for the timer
    assert [e.attempts for e in outbox.events(second)] == [0]
    monotonic.now += 30
    tell(outbox)
    assert len(product.received) == 2
    outbox.close()


@pytest.mark.parametrize("fault", [SettingsError("PRODUCT_SIGNING_SECRET missing"), StorageUnavailable("down")])
def test_a_try_that_cannot_run_never_fails_the_write(
    azurite_connection_string: str, table_prefix: str, fault: Exception
) -> None:
    def broken() -> Dispatcher:
        raise fault

    outbox = TableOutbox.from_connection_string(azurite_connection_string, table_prefix, ManualClock(),
                                                on_written=ImmediateDispatch(broken))
    sid = tell(outbox)
    assert [e.status for e in outbox.events(sid)] == ["pending"]  # the timer sends it
    assert sid in {listing.subscription_id for listing in outbox.listings()}
    outbox.close()


def test_without_a_product_a_try_does_nothing() -> None:
    built: list[int] = []

    def none() -> None:
        built.append(1)

    immediate = ImmediateDispatch(none)
    immediate("a")
    immediate("b")
    assert built == [1]  # built once, and nothing to send


def test_the_azure_worker_tries_each_event_at_once_when_a_product_is_configured(
    azurite_connection_string: str, table_prefix: str, product: ProductServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bootstrap, "_built", [])  # the process's worker, built afresh from this environment
    monkeypatch.setattr(bootstrap, "configure", lambda *_, **__: None)  # leave the suite's logging alone
    for name, value in {"STORAGE_CONNECTION_STRING": azurite_connection_string, "TABLE_PREFIX": table_prefix,
                        "LOCAL_QUEUE_PATH": str(tmp_path / "queue.db"), "WEBHOOK_AUTH": "api",
                        "MARKETPLACE_TENANT_ID": str(uuid.uuid4()), "MARKETPLACE_CLIENT_ID": str(uuid.uuid4()),
                        "MARKETPLACE_CLIENT_SECRET": "unused: nothing here calls the marketplace",
                        "PRODUCT_EVENTS_URL": product.url, "PRODUCT_SIGNING_SECRET": "secret"}.items():
        monkeypatch.setenv(name, value)
    worker = bootstrap.worker()
    sid = str(uuid.uuid4())
    worker.product.notify(ChangeKind.ACTIVATED, Subscription(id=sid, status=Status.SUBSCRIBED), operation_id="op")
    assert [b["type"] for b in product.bodies()] == ["subscription.activated"]
    assert worker.outbox is not None
    assert [e.status for e in worker.outbox.events(sid)] == ["delivered"]
    worker.outbox.close()
