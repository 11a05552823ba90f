"""DeadLetterService on fakes: both kinds in one list, one entry per operation, and how each is replayed."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from lifecycle.domain.records import DeliveryRecord, DeliveryStatus
from lifecycle.ports import QueueMessage
from lifecycle.services.dead_letters import DeadLetterService, Kind
from tests.fakes import FakeQueue, FakeSubscriptionStore

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def body(subscription_id: str, operation_id: str) -> str:
    return json.dumps({"id": operation_id, "activityId": str(uuid.uuid4()), "subscriptionId": subscription_id,
                       "action": "Suspend", "timeStamp": "2026-05-01T11:59:00Z"})


def failure(store: FakeSubscriptionStore, *, minutes: int = 0, payload: bool = True) -> DeliveryRecord:
    sid, op = str(uuid.uuid4()), str(uuid.uuid4())
    record = DeliveryRecord(subscription_id=sid, operation_id=op, action="Suspend", status=DeliveryStatus.FAILED,
                            received_at=NOW, updated_at=NOW + timedelta(minutes=minutes), attempts=1,
                            reason="HTTP 403 Forbidden", payload=body(sid, op) if payload else "")
    store.update_delivery(record)
    return record


def dead_letter(queue: FakeQueue, record: DeliveryRecord) -> None:
    message = QueueMessage(session_id=record.subscription_id, message_id=record.operation_id,
                           body=record.payload)
    queue.dead_letter(message, "MarketplaceForbidden: HTTP 403")


def test_both_kinds_are_listed_and_an_operation_that_is_both_shows_once_as_its_dead_letter() -> None:
    store, queue = FakeSubscriptionStore(), FakeQueue()
    both, only_failed = failure(store, minutes=1), failure(store, minutes=2)
    dead_letter(queue, both)
    listed = DeadLetterService(store, queue, queue).list()
    assert [(g.kind, g.operation_id) for g in listed] == [
        (Kind.FAILED, only_failed.operation_id), (Kind.DEAD_LETTERED, both.operation_id)]  # oldest first


def test_a_failed_record_is_replayed_as_its_payload_under_a_new_message_id_in_its_session() -> None:
    store, queue = FakeSubscriptionStore(), FakeQueue()
    record = failure(store)
    service = DeadLetterService(store, queue, None)
    [given_up] = service.list()
    assert service.replay(given_up)
    assert queue.sent == [QueueMessage(session_id=record.subscription_id, message_id=f"{record.operation_id}:replay:1",
                                       body=record.payload, source="replay")]


def test_an_operation_that_is_both_is_sent_back_once_through_the_broker() -> None:
    store, queue = FakeSubscriptionStore(), FakeQueue()
    record = failure(store)
    dead_letter(queue, record)
    service = DeadLetterService(store, queue, queue)
    assert [service.replay(g) for g in service.list()] == [True]
    assert [m.message_id for m in queue.sent] == [f"{record.operation_id}:replay:1"]
    assert queue.dead == []


def test_a_record_finalised_since_it_was_listed_is_not_sent() -> None:
    store, queue = FakeSubscriptionStore(), FakeQueue()
    record = failure(store)
    service = DeadLetterService(store, queue, None)
    [given_up] = service.list()
    store.update_delivery(replace(record, status=DeliveryStatus.APPLIED, attempts=2))
    assert not service.replay(given_up)
    assert queue.sent == []


def test_a_record_without_a_payload_is_listed_but_cannot_be_replayed() -> None:
    store, queue = FakeSubscriptionStore(), FakeQueue()
    failure(store, payload=False)
    service = DeadLetterService(store, queue, None)
    [given_up] = service.list()
    assert not service.replay(given_up)
    assert queue.sent == []
