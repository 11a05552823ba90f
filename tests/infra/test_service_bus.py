"""The lifecycle queue keeps the properties the design relies on (sessions and duplicate
detection can only be chosen when a queue is created, so a regression here means a new queue)."""

from __future__ import annotations

from tests.infra import Param, duration_seconds, main, module

MARKETPLACE_RETRY_PERIOD = 8 * 3600  # the marketplace retries a webhook for up to 8 hours

servicebus = module("servicebus")
QUEUE = servicebus.resource("Microsoft.ServiceBus/namespaces/queues")
NAMESPACE = servicebus.resource("Microsoft.ServiceBus/namespaces")


def test_the_queue_has_sessions_for_per_subscription_order() -> None:
    assert servicebus.prop(QUEUE, "properties.requiresSession") is True


def test_the_queue_detects_duplicates() -> None:
    assert servicebus.prop(QUEUE, "properties.requiresDuplicateDetection") is True


def test_the_duplicate_detection_window_covers_the_marketplace_retry_period() -> None:
    window = servicebus.prop(QUEUE, "properties.duplicateDetectionHistoryTimeWindow")
    assert duration_seconds(window) >= MARKETPLACE_RETRY_PERIOD + 30 * 60, window


def test_a_message_is_dead_lettered_after_a_bounded_number_of_deliveries() -> None:
    assert servicebus.prop(QUEUE, "properties.maxDeliveryCount") == Param("maxDeliveryCount")
    given = main().section("parameters")["maxDeliveryCount"]
    assert 3 <= given["default"] <= 20
    bounds = {decorator["type"]: decorator["argument"] for decorator in given["decorators"]}
    assert bounds["min_value"] >= 1


def test_an_expired_message_is_dead_lettered_not_dropped() -> None:
    assert servicebus.prop(QUEUE, "properties.deadLetteringOnMessageExpiration") is True
    time_to_live = servicebus.prop(QUEUE, "properties.defaultMessageTimeToLive")
    assert duration_seconds(time_to_live) >= 7 * 24 * 3600


def test_the_lock_is_shorter_than_the_hosts_lock_renewal() -> None:
    # host.json renews for 15 minutes; Service Bus caps a lock at 5.
    assert duration_seconds(servicebus.prop(QUEUE, "properties.lockDuration")) <= 5 * 60


def test_the_namespace_is_standard_tier() -> None:
    assert servicebus.prop(NAMESPACE, "sku.name") == "Standard"


def test_the_namespace_takes_no_sas_keys() -> None:
    assert servicebus.prop(NAMESPACE, "properties.disableLocalAuth") is True


def test_the_namespace_requires_tls_1_2() -> None:
    assert servicebus.prop(NAMESPACE, "properties.minimumTlsVersion") == "1.2"
