"""Failed deliveries across subscriptions (`failed_deliveries`): the fake and the table store on Azurite."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from azure.data.tables import TableServiceClient

from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus
from lifecycle.ports import SubscriptionStore
from lifecycle.store import failed
from lifecycle.store.table import TableSubscriptionStore
from tests.contract.test_store_contract import create, delivery, new_id, subscription
from tests.fakes import FakeSubscriptionStore


def fail(store: SubscriptionStore, record: DeliveryRecord, reason: str = "MarketplaceForbidden: 403") -> DeliveryRecord:
    """What processing's record_failure writes: FAILED, one more attempt, the reason."""
    failure = replace(record, status=DeliveryStatus.FAILED, attempts=record.attempts + 1, reason=reason,
                      updated_at=record.updated_at + timedelta(seconds=1))
    store.update_delivery(failure)
    return failure


def received(store: SubscriptionStore, subscription_id: str | None = None) -> DeliveryRecord:
    """What the webhook writes first: RECEIVED, no attempts yet."""
    return store.record_delivery(delivery(subscription_id or new_id(), new_id(), DeliveryStatus.RECEIVED))


def listed(store: SubscriptionStore, limit: int = 1000) -> list[tuple[str, str]]:
    return [(r.subscription_id, r.operation_id) for r in store.failed_deliveries(limit)]


def lose_failed_row(store: SubscriptionStore, record: DeliveryRecord, request: pytest.FixtureRequest) -> None:
    """What an index written before failed rows existed looks like: the record FAILED, no row."""
    if isinstance(store, FakeSubscriptionStore):
        assert store.drop_failed_row(record.subscription_id, record.operation_id)
        return
    assert isinstance(store, TableSubscriptionStore)
    with TableServiceClient.from_connection_string(request.getfixturevalue("azurite_connection_string")) as service:
        service.get_table_client(store.index_table_name).delete_entity(
            *failed.key(record.subscription_id, record.operation_id))


def test_a_delivery_recorded_failed_is_listed_with_its_record(store: SubscriptionStore) -> None:
    failure = fail(store, received(store))
    received(store)  # still waiting: not a failure
    assert list(store.failed_deliveries()) == [failure]


def test_failing_again_lists_it_once_with_the_latest_reason(store: SubscriptionStore) -> None:
    failure = fail(store, received(store))
    again = fail(store, failure, reason="UnverifiedEvent: no such operation")
    assert list(store.failed_deliveries()) == [again]


def test_failures_across_subscriptions_are_listed_in_key_order_up_to_the_limit(store: SubscriptionStore) -> None:
    failures = sorted((r.subscription_id, r.operation_id) for r in (fail(store, received(store)) for _ in range(12)))
    assert listed(store) == failures
    assert listed(store, limit=5) == failures[:5]


def test_a_commit_that_applies_a_failed_delivery_removes_it(store: SubscriptionStore) -> None:
    snapshot = create(store, subscription())
    failure = fail(store, received(store, snapshot.subscription.id))
    applied = replace(failure, status=DeliveryStatus.APPLIED, attempts=failure.attempts + 1, reason="")
    store.commit(Commit(subscription=snapshot.subscription, expected=snapshot, delivery=applied))
    assert listed(store) == []
    assert store.reindex().removed == 0  # the row itself is gone, not merely skipped


@pytest.mark.parametrize("status", [DeliveryStatus.IGNORED, DeliveryStatus.REJECTED, DeliveryStatus.APPLIED])
def test_a_final_write_outside_a_commit_removes_it(store: SubscriptionStore, status: DeliveryStatus) -> None:
    failure = fail(store, received(store))
    store.update_delivery(replace(failure, status=status, attempts=failure.attempts + 1))
    assert listed(store) == []
    assert store.reindex().removed == 0  # the row itself is gone, not merely skipped


def test_a_row_the_final_write_left_behind_is_skipped_by_readers_and_removed_by_reindex(
    store: SubscriptionStore,
) -> None:
    failure = fail(store, received(store))
    kept = fail(store, received(store))
    # A rejection by the redelivered webhook counts no attempt, so it does not look for the row.
    store.update_delivery(replace(failure, status=DeliveryStatus.REJECTED, updated_at=failure.updated_at))
    assert listed(store) == [(kept.subscription_id, kept.operation_id)]
    done = store.reindex()
    assert (done.written, done.removed) == (0, 1)
    assert listed(store) == [(kept.subscription_id, kept.operation_id)]


def test_reindex_writes_the_row_of_a_failed_record_that_has_none(
    store: SubscriptionStore, request: pytest.FixtureRequest
) -> None:
    failure = fail(store, received(store))
    lose_failed_row(store, failure, request)
    assert listed(store) == []
    done = store.reindex()
    assert (done.written, done.removed) == (1, 0)
    assert list(store.failed_deliveries()) == [failure]
    assert store.reindex() == type(done)(subscriptions=0, written=0, removed=0)


def test_a_failure_inserted_by_record_delivery_is_listed(store: SubscriptionStore) -> None:
    failure = store.record_delivery(delivery(new_id(), new_id(), DeliveryStatus.FAILED))
    assert list(store.failed_deliveries()) == [failure]
