"""Traced decorators of the ports: each forwards every call to the real adapter inside a span.

The composition root wraps the store, the marketplace API and the queue with these when
telemetry is on, so services stay free of tracing. A span carries the subscription and
operation ids of its call and, on failure, the error's class only: exception messages can
quote what they failed on, and spans must never hold tokens or bodies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

from opentelemetry.trace import Span, SpanKind, StatusCode

from lifecycle.domain.fingerprint import Fingerprinted, ListItem
from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Operation, Plan, ResolvedPurchase, Subscription
from lifecycle.domain.reconcile_runs import RunRecord, RunStatus, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, Snapshot
from lifecycle.ports import Hit, Lookup, MarketplaceApi, Queue, QueueMessage, Reindexed, SubscriptionStore
from lifecycle.telemetry.instruments import Telemetry, ids

T = TypeVar("T")
Attributes = Mapping[str, str | int | bool]


@contextmanager
def span(telemetry: Telemetry, name: str, kind: SpanKind, attributes: Attributes) -> Iterator[Span]:
    """A current span that marks a failure with the error's class name, never its message."""
    with telemetry.tracer.start_as_current_span(name, kind=kind, attributes=attributes, record_exception=False,
                                                set_status_on_exception=False) as current:
        try:
            yield current
        except Exception as error:
            failed(current, error)
            raise


def failed(current: Span, error: Exception) -> None:
    current.set_attribute("error.type", type(error).__name__)
    current.set_status(StatusCode.ERROR, type(error).__name__)


def streamed(telemetry: Telemetry, name: str, items: Iterator[T], attributes: Attributes) -> Iterator[T]:
    """A span over a whole stream: it ends when the stream is exhausted or closed."""
    current = telemetry.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    count = 0
    try:
        for item in items:
            count += 1
            yield item
    except Exception as error:
        failed(current, error)
        raise
    finally:
        current.set_attribute("items", count)
        current.end()


class TracedStore:
    """SubscriptionStore in spans named `store.<method>`; finished reconcile runs also count their drift."""

    def __init__(self, inner: SubscriptionStore, telemetry: Telemetry) -> None:
        self._inner = inner
        self._t = telemetry

    def _span(self, method: str, subscription_id: str = "", operation_id: str = "") -> AbstractContextManager[Span]:
        return span(self._t, f"store.{method}", SpanKind.CLIENT, ids(subscription_id, operation_id))

    def load(self, subscription_id: str) -> Snapshot | None:
        with self._span("load", subscription_id):
            return self._inner.load(subscription_id)

    def commit(self, commit: Commit) -> Snapshot:
        operation_id = commit.delivery.operation_id if commit.delivery else ""
        with self._span("commit", commit.subscription.id, operation_id) as current:
            current.set_attribute("history_entries", len(commit.history))
            return self._inner.commit(commit)

    def delivery(self, subscription_id: str, operation_id: str) -> DeliveryRecord | None:
        with self._span("delivery", subscription_id, operation_id):
            return self._inner.delivery(subscription_id, operation_id)

    def record_delivery(self, record: DeliveryRecord) -> DeliveryRecord:
        with self._span("record_delivery", record.subscription_id, record.operation_id):
            return self._inner.record_delivery(record)

    def update_delivery(self, record: DeliveryRecord) -> None:
        with self._span("update_delivery", record.subscription_id, record.operation_id):
            self._inner.update_delivery(record)

    def failed_deliveries(self, limit: int = 100) -> Iterator[DeliveryRecord]:
        return streamed(self._t, "store.failed_deliveries", self._inner.failed_deliveries(limit), {})

    def history(self, subscription_id: str) -> list[HistoryEntry]:
        with self._span("history", subscription_id):
            return self._inner.history(subscription_id)

    def subscriptions(self) -> Iterator[Subscription]:
        return streamed(self._t, "store.subscriptions", self._inner.subscriptions(), {})

    def fingerprints(self, shard: int, shards: int) -> Iterator[Fingerprinted]:
        items = self._inner.fingerprints(shard, shards)
        return streamed(self._t, "store.fingerprints", items, {"shard": shard, "shards": shards})

    def save_run(self, run: RunRecord) -> None:
        with self._span("save_run"):
            self._inner.save_run(run)
        if run.status is not RunStatus.RUNNING:  # the run's last record: count it once, as written
            self._t.reconcile_runs.add(1, {"status": run.status.value, "dry_run": run.dry_run})
            for kind, count in run.counts.items():
                self._t.reconcile_findings.add(count, {"kind": kind.value, "dry_run": run.dry_run})

    def runs(self, limit: int = 10) -> list[RunRecord]:
        with self._span("runs"):
            return self._inner.runs(limit)

    def tombstone(self, tombstone: Tombstone) -> None:
        with self._span("tombstone", tombstone.subscription_id):
            self._inner.tombstone(tombstone)

    def untombstone(self, subscription_id: str) -> None:
        with self._span("untombstone", subscription_id):
            self._inner.untombstone(subscription_id)

    def tombstones(self) -> Iterator[Tombstone]:
        return streamed(self._t, "store.tombstones", self._inner.tombstones(), {})

    def acquire_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        with self._span("acquire_lease"):
            return self._inner.acquire_lease(name, owner, now=now, ttl=ttl)

    def release_lease(self, name: str, owner: str) -> None:
        with self._span("release_lease"):
            self._inner.release_lease(name, owner)

    def find(self, lookup: Lookup | None, *, after: str = "", limit: int = 100) -> list[Hit]:
        with self._span("find") as current:
            if lookup is not None:  # the field only: a value can be a customer's tenant id
                current.set_attribute("index", lookup.field.value)
            return self._inner.find(lookup, after=after, limit=limit)

    def reindex(self) -> Reindexed:
        with self._span("reindex"):
            return self._inner.reindex()


class TracedMarketplaceApi:
    """MarketplaceApi in spans named `marketplace.<method>`."""

    def __init__(self, inner: MarketplaceApi, telemetry: Telemetry) -> None:
        self._inner = inner
        self._t = telemetry

    def _span(self, method: str, subscription_id: str = "", operation_id: str = "") -> AbstractContextManager[Span]:
        return span(self._t, f"marketplace.{method}", SpanKind.CLIENT, ids(subscription_id, operation_id))

    def resolve(self, marketplace_token: str) -> ResolvedPurchase:
        with self._span("resolve") as current:  # the token itself is never an attribute
            resolved = self._inner.resolve(marketplace_token)
            current.set_attribute("subscription_id", resolved.subscription_id)
            return resolved

    def activate(self, subscription_id: str, plan_id: str, quantity: int | None = None) -> None:
        with self._span("activate", subscription_id):
            self._inner.activate(subscription_id, plan_id, quantity)

    def list_subscriptions(self) -> Iterator[list[ListItem]]:
        return streamed(self._t, "marketplace.list_subscriptions", self._inner.list_subscriptions(), {})

    def get_subscription(self, subscription_id: str) -> Subscription:
        with self._span("get_subscription", subscription_id):
            return self._inner.get_subscription(subscription_id)

    def list_available_plans(self, subscription_id: str) -> list[Plan]:
        with self._span("list_available_plans", subscription_id):
            return self._inner.list_available_plans(subscription_id)

    def change_plan(self, subscription_id: str, plan_id: str) -> str:
        with self._span("change_plan", subscription_id) as current:
            operation_id = self._inner.change_plan(subscription_id, plan_id)
            current.set_attribute("operation_id", operation_id)
            return operation_id

    def change_quantity(self, subscription_id: str, quantity: int) -> str:
        with self._span("change_quantity", subscription_id) as current:
            operation_id = self._inner.change_quantity(subscription_id, quantity)
            current.set_attribute("operation_id", operation_id)
            return operation_id

    def delete_subscription(self, subscription_id: str) -> str:
        with self._span("delete_subscription", subscription_id) as current:
            operation_id = self._inner.delete_subscription(subscription_id)
            current.set_attribute("operation_id", operation_id)
            return operation_id

    def list_operations(self, subscription_id: str) -> list[Operation]:
        with self._span("list_operations", subscription_id):
            return self._inner.list_operations(subscription_id)

    def get_operation(self, subscription_id: str, operation_id: str) -> Operation:
        with self._span("get_operation", subscription_id, operation_id):
            return self._inner.get_operation(subscription_id, operation_id)

    def update_operation(self, subscription_id: str, operation_id: str, *, success: bool) -> None:
        with self._span("update_operation", subscription_id, operation_id) as current:
            current.set_attribute("success", success)
            self._inner.update_operation(subscription_id, operation_id, success=success)


class TracedQueue:
    """Queue in a `queue.send` span (a producer span: the message's trip starts here)."""

    def __init__(self, inner: Queue, telemetry: Telemetry) -> None:
        self._inner = inner
        self._t = telemetry

    def send(self, message: QueueMessage) -> None:
        attributes = ids(message.session_id, message.message_id, attempt=message.attempt, source=message.source)
        with span(self._t, "queue.send", SpanKind.PRODUCER, attributes):
            self._inner.send(message)
