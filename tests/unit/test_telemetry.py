"""Telemetry on: the spans and metrics of a webhook and a processed message, recorded in memory.

The real services and entrypoints run on the fakes (tests/functions' stack), wired by the
composition root with a Telemetry built on the OpenTelemetry SDK's in-memory span
exporter and metric reader, so no global provider is touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lifecycle.bootstrap import build
from lifecycle.domain.reconcile import FindingKind
from lifecycle.domain.reconcile_runs import RunRecord, RunStatus
from lifecycle.entrypoints import http
from lifecycle.entrypoints.processor import MAX_ATTEMPTS, Disposition, handle_message
from lifecycle.errors import TransientError
from lifecycle.ports import QueueMessage
from lifecycle.settings import Settings, WebhookAuth
from lifecycle.telemetry import Telemetry, TracedStore
from tests.fakes.store import FakeSubscriptionStore
from tests.functions import Stack, new_id, stack, webhook_request


@dataclass
class Recorded:
    telemetry: Telemetry
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if span.name == name]

    def span(self, name: str) -> ReadableSpan:
        [found] = self.spans(name)
        return found

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [point for resource in (data.resource_metrics if data else []) for scope in resource.scope_metrics
                for m in scope.metrics if m.name == metric for point in m.data.data_points]

    def counts(self, metric: str) -> dict[frozenset[tuple[str, Any]], int]:
        return {frozenset(p.attributes.items()): p.value for p in self.points(metric)}


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Recorded(Telemetry.from_providers(tracer_provider, meter_provider), exporter, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def env(recorded: Recorded) -> Stack:
    plain = stack()
    worker = build(Settings(webhook_auth=WebhookAuth.API, enqueue_delay_seconds=0), store=plain.store,
                   queue=plain.queue, api=plain.api, webhook_api=plain.api, telemetry=recorded.telemetry)
    return replace(plain, worker=worker)


def change_plan(env: Stack) -> dict[str, Any]:
    """The webhook payload of a plan change waiting for our answer."""
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    operation = env.marketplace.change_plan(subscription["id"], "business", deliver=False)
    return env.marketplace.webhook_payload(str(operation["id"]))


def deliver(env: Stack, recorded: Recorded, payload: dict[str, Any]) -> int:
    response = http.webhook(webhook_request(json.dumps(payload).encode()), env.worker.webhook, recorded.telemetry)
    return cast(int, response.status_code)  # azure.functions is untyped


def process(env: Stack, recorded: Recorded, message: QueueMessage, delivery_count: int = 1) -> Disposition:
    worker = env.worker
    return handle_message(message, worker.processing, worker.queue, worker.clock, delivery_count=delivery_count,
                          telemetry=recorded.telemetry).disposition


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def ids(span: ReadableSpan) -> tuple[Any, Any]:
    attributes = span.attributes or {}
    return attributes.get("subscription_id"), attributes.get("operation_id")


def test_a_webhook_is_a_server_span_with_its_ids_action_and_answer(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)

    assert deliver(env, recorded, payload) == 200

    webhook = recorded.span("webhook")
    assert webhook.kind is SpanKind.SERVER
    assert ids(webhook) == (payload["subscriptionId"], payload["id"])
    assert webhook.attributes is not None
    assert (webhook.attributes["action"], webhook.attributes["http.response.status_code"]) == ("ChangePlan", 200)


def test_the_enqueue_and_the_table_write_are_child_spans_of_the_webhook(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)
    deliver(env, recorded, payload)

    webhook = recorded.span("webhook")
    for name in ("queue.send", "store.record_delivery"):
        child = recorded.span(name)
        assert parent_of(child) == webhook.context.span_id, name
        assert ids(child) == (payload["subscriptionId"], payload["id"]), name
    assert recorded.span("queue.send").kind is SpanKind.PRODUCER


def test_deliveries_are_counted_by_action_and_answer(env: Stack, recorded: Recorded) -> None:
    deliver(env, recorded, change_plan(env))
    deliver(env, recorded, {"id": new_id()})  # no subscriptionId or action: 400

    counts = recorded.counts("lifecycle.webhook.deliveries")
    assert counts == {frozenset({("action", "ChangePlan"), ("status", 200)}): 1,
                      frozenset({("action", "invalid"), ("status", 400)}): 1}


def test_processing_is_a_consumer_span_over_the_api_calls_and_the_commit(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)
    deliver(env, recorded, payload)
    [message] = env.queue.sent

    assert process(env, recorded, message) is Disposition.COMPLETE

    processed = recorded.span("process")
    assert processed.kind is SpanKind.CONSUMER
    assert ids(processed) == (payload["subscriptionId"], payload["id"])
    assert processed.attributes is not None
    assert (processed.attributes["action"], processed.attributes["disposition"]) == ("ChangePlan", "complete")
    for name in ("marketplace.get_operation", "marketplace.update_operation", "store.commit"):
        child = recorded.span(name)
        assert parent_of(child) == processed.context.span_id, name
        assert ids(child) == (payload["subscriptionId"], payload["id"]), name
    assert recorded.span("marketplace.get_operation").kind is SpanKind.CLIENT


def test_a_processed_message_is_counted_with_its_lag(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)
    deliver(env, recorded, payload)
    [message] = env.queue.sent
    due = env.worker.clock.now() - timedelta(seconds=30)

    process(env, recorded, replace(message, scheduled_at=due))

    assert recorded.counts("lifecycle.processing.messages") == {
        frozenset({("action", "ChangePlan"), ("disposition", "complete")}): 1}
    [lag] = recorded.points("lifecycle.processing.lag")
    assert lag.count == 1
    assert 30 <= lag.sum < 60


def test_a_redelivery_is_counted(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)
    deliver(env, recorded, payload)
    [message] = env.queue.sent

    process(env, recorded, message, delivery_count=2)

    [redelivered] = recorded.points("lifecycle.processing.redeliveries")
    assert redelivered.value == 1


def test_an_unverifiable_event_is_counted_as_a_dead_letter_with_its_reason(env: Stack, recorded: Recorded) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    body = json.dumps({"id": new_id(), "subscriptionId": subscription["id"], "action": "ChangeQuantity",
                       "status": "InProgress", "quantity": 7, "timeStamp": "2025-01-01T00:00:00Z"})
    message = QueueMessage(session_id=subscription["id"], message_id=new_id(), body=body)

    assert process(env, recorded, message) is Disposition.DEAD_LETTER

    assert recorded.counts("lifecycle.processing.dead_letters") == {
        frozenset({("action", "ChangeQuantity"), ("reason", "UnverifiedEvent")}): 1}


def test_an_api_outage_is_counted_as_a_retry(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)
    deliver(env, recorded, payload)
    [message] = env.queue.sent
    env.marketplace.inject(status=503, times=100)

    assert process(env, recorded, message) is Disposition.RESCHEDULED

    assert recorded.counts("lifecycle.processing.retries") == {frozenset({("action", "ChangePlan")}): 1}
    failed = recorded.spans("marketplace.get_operation")[-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "MarketplaceUnavailable"


def test_a_failing_span_keeps_the_error_class_but_never_its_message(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)
    deliver(env, recorded, payload)
    [message] = env.queue.sent
    env.store.fail_next_calls(100)  # on the last attempt, too: the failure cannot even be recorded

    with pytest.raises(TransientError) as raised:
        process(env, recorded, replace(message, attempt=MAX_ATTEMPTS))

    processed = recorded.span("process")
    assert processed.status.status_code is StatusCode.ERROR
    assert processed.status.description == type(raised.value).__name__
    assert processed.events == ()  # no exception event: its message could quote what it failed on
    assert recorded.counts("lifecycle.processing.messages") == {
        frozenset({("action", "ChangePlan"), ("disposition", "abandoned")}): 1}


# Ids, enums, counts and flags only: nothing here can hold a token, a body or a customer's details.
SPAN_ATTRIBUTES = {"subscription_id", "operation_id", "message_id", "action", "http.response.status_code", "attempt",
                   "source", "delivery_count", "disposition", "history_entries", "success", "error.type", "items"}


def test_spans_carry_only_ids_and_outcomes_never_tokens_or_bodies(env: Stack, recorded: Recorded) -> None:
    payload = change_plan(env)
    deliver(env, recorded, payload)
    process(env, recorded, env.queue.sent[0])

    names = {name for span in recorded.exporter.get_finished_spans() for name in (span.attributes or {})}
    assert names <= SPAN_ATTRIBUTES, names - SPAN_ATTRIBUTES
    customer = payload["subscription"]["beneficiary"]["emailId"]
    assert all(customer not in str(value) for span in recorded.exporter.get_finished_spans()
               for value in (span.attributes or {}).values())


def test_a_finished_reconcile_run_counts_its_drift_by_kind(recorded: Recorded) -> None:
    store = TracedStore(FakeSubscriptionStore(), recorded.telemetry)
    started = RunRecord(run_id=new_id(), started_at=datetime.now(UTC), dry_run=False)
    store.save_run(started)  # still running: nothing counted yet
    store.save_run(replace(started, status=RunStatus.SUCCEEDED,
                           counts={FindingKind.PLAN: 2, FindingKind.MISSING_LOCALLY: 1}))

    assert recorded.counts("lifecycle.reconcile.runs") == {
        frozenset({("status", "succeeded"), ("dry_run", False)}): 1}
    assert recorded.counts("lifecycle.reconcile.findings") == {
        frozenset({("kind", "plan_mismatch"), ("dry_run", False)}): 2,
        frozenset({("kind", "missing_locally"), ("dry_run", False)}): 1}


def host_message(**times: str) -> Any:
    """A message as the host hands it over, through azure.functions' own converter."""
    from azure.functions import meta
    from azure.functions.servicebus import ServiceBusMessageInConverter

    metadata = {"MessageId": meta.Datum("op", "string"), "SessionId": meta.Datum("sub", "string"),
                "ApplicationProperties": meta.Datum("{}", "json"), "UserProperties": meta.Datum("{}", "json"),
                **{name: meta.Datum(value, "string") for name, value in times.items()}}
    return ServiceBusMessageInConverter.decode(meta.Datum("{}", "string"), trigger_metadata=metadata)


def test_a_service_bus_message_is_due_from_the_later_of_its_enqueued_and_scheduled_times() -> None:
    due = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
    unscheduled = host_message(EnqueuedTimeUtc="2025-03-01T12:00:05Z", ScheduledEnqueueTimeUtc="0001-01-01T00:00:00")
    scheduled = host_message(EnqueuedTimeUtc="2025-03-01T12:00:03Z", ScheduledEnqueueTimeUtc="2025-03-01T12:00:05Z")

    assert http.queue_message(unscheduled).scheduled_at == due
    assert http.queue_message(scheduled).scheduled_at == due
    assert http.queue_message(host_message()).scheduled_at is None
