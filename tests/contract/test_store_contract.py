"""The SubscriptionStore contract: identical assertions against the fake and the table store on Azurite."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from lifecycle.domain.events import Action, Source
from lifecycle.domain.fingerprint import Fingerprinted, fingerprint
from lifecycle.domain.history import FieldChange, HistoryEntry, Outcome
from lifecycle.domain.model import ChangeTimes, Status, Subscription, Term
from lifecycle.domain.reconcile import Finding, FindingKind, Remedy, pending_since
from lifecycle.domain.reconcile_runs import RunRecord, RunStatus, Tombstone
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus, Snapshot
from lifecycle.errors import ConcurrencyConflict, StorageUnavailable
from lifecycle.local.azurite import DEV_ACCOUNT, DEV_KEY, connection_string, free_port
from lifecycle.ports import SubscriptionStore
from lifecycle.store.table import TableSubscriptionStore
from tests.fakes import FakeSubscriptionStore

NOW = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
ODD_IDS = ["a/b", "c\\d", "e#f", "g?h", "100%", "%2F-not-a-slash", "quote'd", "ünïcødé-😀", "tab\there", "a b+c"]


def new_id() -> str:
    return str(uuid.uuid4())


def subscription(subscription_id: str | None = None, **fields: Any) -> Subscription:
    return Subscription(id=subscription_id or new_id(), **{"offer_id": "offer", "plan_id": "basic", **fields})


def entry(subscription_id: str, operation_id: str, action: Action = Action.CHANGE_PLAN) -> HistoryEntry:
    return HistoryEntry(
        subscription_id=subscription_id,
        operation_id=operation_id,
        action=action,
        source=Source.WEBHOOK,
        outcome=Outcome.APPLIED,
        recorded_at=NOW,
        changes=(FieldChange("plan_id", "basic", "pro"),),
    )


def delivery(subscription_id: str, operation_id: str, status: DeliveryStatus) -> DeliveryRecord:
    return DeliveryRecord(
        subscription_id=subscription_id,
        operation_id=operation_id,
        action="ChangePlan",
        status=status,
        received_at=NOW,
        updated_at=NOW,
        payload=json.dumps({"id": operation_id}),
    )


def create(store: SubscriptionStore, sub: Subscription) -> Snapshot:
    return store.commit(Commit(subscription=sub, expected=None))


@pytest.mark.parametrize("quantity", [None, 25, 2**40])
def test_every_subscription_field_round_trips(store: SubscriptionStore, quantity: int | None) -> None:
    sub = Subscription(
        id=new_id(),
        name="Contoso seats",
        publisher_id="contoso",
        offer_id="offer",
        plan_id="gold",
        quantity=quantity,
        status=Status.SUSPENDED,
        term=Term("P1Y", date(2025, 1, 31), date(2026, 1, 30)),
        auto_renew=True,
        is_free_trial=True,
        is_test=True,
        beneficiary_tenant_id=str(uuid.uuid4()),
        purchaser_tenant_id=str(uuid.uuid4()),
        sandbox_type="Csp",
        last_operation_id=str(uuid.uuid4()),
        last_operation_at=datetime(2025, 2, 3, 4, 5, 6, 789012, tzinfo=timezone(timedelta(hours=-5))),
    )
    written = create(store, sub)
    assert store.load(sub.id) == written == Snapshot(sub, written.etag, 0)


def test_subscription_with_unknown_term_and_no_operation_round_trips(store: SubscriptionStore) -> None:
    sub = subscription(term=Term(), last_operation_id=None, last_operation_at=None)
    create(store, sub)
    loaded = store.load(sub.id)
    assert loaded is not None
    assert loaded.subscription == sub


def test_unknown_subscription_loads_as_none(store: SubscriptionStore) -> None:
    assert store.load(new_id()) is None


def test_creating_an_existing_subscription_conflicts(store: SubscriptionStore) -> None:
    sub = subscription()
    create(store, sub)
    with pytest.raises(ConcurrencyConflict):
        create(store, subscription(sub.id, quantity=3))


def test_stale_etag_conflicts_and_writes_nothing(store: SubscriptionStore) -> None:
    first = create(store, subscription())
    sid = first.subscription.id
    current = store.commit(Commit(subscription=subscription(sid, plan_id="pro"), expected=first))
    stale = Commit(
        subscription=subscription(sid, plan_id="gold"),
        expected=first,
        history=(entry(sid, "op-stale"),),
        delivery=delivery(sid, "op-stale", DeliveryStatus.APPLIED),
    )
    with pytest.raises(ConcurrencyConflict):
        store.commit(stale)
    assert store.load(sid) == current
    assert store.history(sid) == []
    assert store.delivery(sid, "op-stale") is None


def test_commit_against_a_row_that_is_gone_conflicts(store: SubscriptionStore) -> None:
    sub = subscription()
    ghost = Snapshot(sub, etag="W/\"datetime'2020-01-01T00%3A00%3A00.0000000Z'\"", version=0)
    with pytest.raises(ConcurrencyConflict):
        store.commit(Commit(subscription=sub, expected=ghost))
    assert store.load(sub.id) is None


def test_commit_returns_the_snapshot_that_guards_the_next_commit(store: SubscriptionStore) -> None:
    snapshot = create(store, subscription())
    for quantity in (1, 2, 3):
        snapshot = store.commit(
            Commit(subscription=subscription(snapshot.subscription.id, quantity=quantity), expected=snapshot)
        )
    assert store.load(snapshot.subscription.id) == snapshot


def test_replayed_operation_is_seen_as_applied(store: SubscriptionStore) -> None:
    sid, op = new_id(), str(uuid.uuid4())
    received = delivery(sid, op, DeliveryStatus.RECEIVED)
    assert store.record_delivery(received) == received
    applied = delivery(sid, op, DeliveryStatus.APPLIED)
    store.commit(Commit(subscription=subscription(sid), expected=None, history=(entry(sid, op),), delivery=applied))
    assert store.delivery(sid, op) == applied
    assert store.record_delivery(received) == applied


def test_update_delivery_replaces_the_record(store: SubscriptionStore) -> None:
    sid, op = new_id(), str(uuid.uuid4())
    store.record_delivery(delivery(sid, op, DeliveryStatus.RECEIVED))
    failed = DeliveryRecord(
        subscription_id=sid, operation_id=op, action="ChangePlan", status=DeliveryStatus.FAILED,
        received_at=NOW, updated_at=NOW + timedelta(minutes=5), attempts=3, reason="marketplace said 404",
    )  # fmt: skip
    store.update_delivery(failed)
    assert store.delivery(sid, op) == failed


def test_unknown_delivery_reads_as_none(store: SubscriptionStore) -> None:
    assert store.delivery(new_id(), "nope") is None


def test_history_is_newest_first_over_several_commits(store: SubscriptionStore) -> None:
    snapshot = create(store, subscription())
    sid = snapshot.subscription.id
    operations = [f"op-{n}" for n in range(12)]  # more than one page on Azurite
    for op in operations:
        commit = Commit(
            subscription=subscription(sid, last_operation_id=op), expected=snapshot, history=(entry(sid, op),)
        )
        snapshot = store.commit(commit)
    assert [e.operation_id for e in store.history(sid)] == operations[::-1]
    assert snapshot.version == len(operations)


def test_commit_with_several_history_entries_keeps_their_order(store: SubscriptionStore) -> None:
    sid = new_id()
    entries = (entry(sid, "op-a", Action.ACTIVATE), entry(sid, "op-b", Action.CHANGE_PLAN), entry(sid, "op-c"))
    snapshot = store.commit(Commit(subscription=subscription(sid), expected=None, history=entries))
    assert snapshot.version == 3
    assert store.history(sid) == list(entries[::-1])
    loaded = store.load(sid)
    assert loaded is not None
    assert loaded.version == 3


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_characters_in_ids_round_trip(store: SubscriptionStore, odd: str) -> None:
    sid = odd + new_id()
    record = delivery(sid, odd, DeliveryStatus.APPLIED)
    snapshot = store.commit(
        Commit(subscription=subscription(sid), expected=None, history=(entry(sid, odd),), delivery=record)
    )
    assert store.load(sid) == snapshot
    assert store.delivery(sid, odd) == record
    assert store.history(sid) == [entry(sid, odd)]
    assert [s.id for s in store.subscriptions()] == [sid]


def test_subscriptions_streams_every_partition(store: SubscriptionStore) -> None:
    ids = {new_id() for _ in range(40)}
    for sid in ids:
        store.commit(Commit(subscription=subscription(sid), expected=None, history=(entry(sid, "op"),)))
    stream = store.subscriptions()
    assert iter(stream) is stream  # an iterator, not a list built up front
    assert sorted(s.id for s in stream) == sorted(ids)


@pytest.mark.parametrize("shards", [1, 3, 16])
def test_every_subscription_is_in_exactly_one_shard(store: SubscriptionStore, shards: int) -> None:
    ids = [new_id() for _ in range(30)] + [odd + new_id() for odd in ODD_IDS] + [new_id().upper(), "zz" + new_id()]
    for sid in ids:
        create(store, subscription(sid))
    seen = [s.id for shard in range(shards) for s in store.fingerprints(shard, shards)]
    assert sorted(seen) == sorted(ids)


SCANNED_SHAPES = {  # every compared field and each way of being pending, as the scan must read them
    "pending since a status change": {"status": Status.PENDING_FULFILLMENT_START,
                                      "changed_at": ChangeTimes(status=NOW)},
    "pending since an operation": {"status": Status.PENDING_FULFILLMENT_START, "last_operation_at": NOW},
    "pending since an unknown time": {"status": Status.PENDING_FULFILLMENT_START, "last_operation_at": None},
    "suspended, no term, no renewal": {"status": Status.SUSPENDED, "term": Term(), "auto_renew": False},
    "every field set": {"status": Status.SUBSCRIBED, "name": "Contoso seats", "publisher_id": "contoso",
                        "quantity": 2**40, "term": Term("P1Y", date(2025, 1, 31), date(2026, 1, 30)),
                        "auto_renew": True, "is_free_trial": True, "is_test": True, "sandbox_type": "Csp",
                        "beneficiary_tenant_id": "tenant-b", "purchaser_tenant_id": "tenant-p",
                        "changed_at": ChangeTimes(status=NOW, plan=NOW, quantity=NOW, term=NOW)},
    "flat rate, term end unknown": {"status": Status.UNSUBSCRIBED, "quantity": None,
                                    "term": Term("P1M", date(2025, 1, 31), None)},
}


@pytest.mark.parametrize("shape", SCANNED_SHAPES.values(), ids=SCANNED_SHAPES.keys())
def test_a_scanned_row_is_fingerprinted_as_its_loaded_subscription(store: SubscriptionStore,
                                                                   shape: dict[str, Any]) -> None:
    sub = subscription("a/b " + new_id(), **shape)
    create(store, sub)
    loaded = store.load(sub.id)
    assert loaded is not None
    scanned = [ours for ours in store.fingerprints(0, 1) if ours.id == sub.id]
    assert scanned == [Fingerprinted(sub.id, fingerprint(loaded.subscription), pending_since(loaded.subscription))]


@pytest.mark.parametrize(("shard", "shards"), [(16, 16), (-1, 4), (0, 17), (0, 0)])
def test_an_impossible_shard_is_refused(store: SubscriptionStore, shard: int, shards: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        next(store.fingerprints(shard, shards))


def test_naive_datetimes_are_refused(store: SubscriptionStore) -> None:
    sub = subscription(last_operation_at=datetime(2025, 1, 1, 12, 0))
    with pytest.raises(ValueError, match="naive"):
        create(store, sub)
    assert store.load(sub.id) is None


def test_a_commit_spanning_two_subscriptions_is_refused(store: SubscriptionStore) -> None:
    sub = subscription()
    with pytest.raises(ValueError, match="another subscription"):
        store.commit(Commit(subscription=sub, expected=None, history=(entry(new_id(), "op"),)))


def test_a_commit_too_big_for_one_transaction_is_refused(store: SubscriptionStore) -> None:
    sid = new_id()
    history = tuple(entry(sid, f"op-{n}") for n in range(100))
    with pytest.raises(ValueError, match="one transaction"):
        store.commit(Commit(subscription=subscription(sid), expected=None, history=history))


@pytest.mark.azurite
def test_unreachable_storage_is_unavailable_quickly(table_prefix: str) -> None:
    closed = connection_string(free_port())  # nothing listens there
    started = time.monotonic()
    with TableSubscriptionStore.from_connection_string(
        closed, table_prefix, retry_total=0, connection_timeout=2
    ) as store:
        with pytest.raises(StorageUnavailable) as raised:
            store.load(new_id())
        with pytest.raises(StorageUnavailable):
            next(store.subscriptions())
    assert raised.value.__cause__ is not None
    assert time.monotonic() - started < 5


@pytest.mark.azurite
def test_from_endpoint_reaches_the_table_with_a_credential(azurite_connection_string: str, table_prefix: str) -> None:
    endpoint = next(p for p in azurite_connection_string.split(";") if p.startswith("TableEndpoint=")).split("=", 1)[1]
    credential = AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY)
    with TableSubscriptionStore.from_endpoint(endpoint, credential, table_prefix) as store:
        written = create(store, subscription())
        assert store.load(written.subscription.id) == written


# Reconciliation's records: runs, tombstones and the lease, in their own partition.


def run_record(started: datetime, **fields: Any) -> RunRecord:
    return RunRecord(**{"run_id": new_id(), "started_at": started, "dry_run": False, **fields})


def test_a_finished_run_round_trips_every_field(store: SubscriptionStore) -> None:
    sample = tuple(Finding(new_id(), kind, Remedy.REPORT, "a", "b", "why") for kind in FindingKind)
    run = run_record(
        NOW, dry_run=True, status=RunStatus.FAILED, finished_at=NOW + timedelta(minutes=3), pages=12, listed=1100,
        known=1090, skipped=2, counts={FindingKind.PLAN: 3, FindingKind.MISSING_LOCALLY: 10}, repaired=13, errors=1,
        error="MarketplaceUnavailable: 503", problems=("s1: StorageUnavailable",), sample=sample,
    )  # fmt: skip
    store.save_run(run)
    assert store.runs() == [run]


def test_runs_are_listed_newest_first_and_limited(store: SubscriptionStore) -> None:
    runs = [run_record(NOW + timedelta(seconds=n)) for n in (5, 1, 30, 12)]
    for run in runs:
        store.save_run(run)
    newest_first = sorted(runs, key=lambda r: r.started_at, reverse=True)
    assert store.runs(limit=3) == newest_first[:3]
    assert store.runs(limit=10) == newest_first


def test_saving_a_run_again_replaces_it(store: SubscriptionStore) -> None:
    running = run_record(NOW)
    store.save_run(running)
    done = RunRecord(run_id=running.run_id, started_at=NOW, dry_run=False, status=RunStatus.SUCCEEDED,
                     finished_at=NOW + timedelta(seconds=9), pages=2)
    store.save_run(done)
    assert store.runs() == [done]


def test_no_runs_lists_empty(store: SubscriptionStore) -> None:
    assert store.runs() == []


def test_a_huge_sample_is_cut_down_to_fit_one_entity(store: SubscriptionStore) -> None:
    sample = tuple(Finding(new_id(), FindingKind.PLAN, Remedy.REPAIR, "x" * 200, "y" * 200) for _ in range(500))
    store.save_run(run_record(NOW, sample=sample))
    [stored] = store.runs()
    assert 0 < len(stored.sample) < len(sample)
    assert stored.sample == sample[: len(stored.sample)]


@pytest.mark.parametrize("odd", ["%reconcile", "a/b#c", *ODD_IDS[-3:]])
def test_tombstones_round_trip_and_untombstone_removes_them(store: SubscriptionStore, odd: str) -> None:
    stone = Tombstone(subscription_id=odd + new_id(), reason="test purchase", created_at=NOW)
    other = Tombstone(subscription_id=new_id(), reason="", created_at=NOW)
    store.tombstone(stone)
    store.tombstone(other)
    assert sorted(store.tombstones(), key=lambda t: t.subscription_id) == sorted(
        [stone, other], key=lambda t: t.subscription_id
    )
    store.untombstone(stone.subscription_id)
    store.untombstone(stone.subscription_id)  # twice: nothing left to remove is fine
    assert list(store.tombstones()) == [other]


def test_reconciliation_rows_are_not_subscriptions(store: SubscriptionStore) -> None:
    sub = subscription("%reconcile")  # the reserved partition's own name, as a subscription id
    create(store, sub)
    store.save_run(run_record(NOW))
    store.tombstone(Tombstone(subscription_id=sub.id, reason="", created_at=NOW))
    assert store.acquire_lease("reconcile", "me", now=NOW, ttl=timedelta(minutes=5))
    assert [s.id for s in store.subscriptions()] == [sub.id]
    loaded = store.load(sub.id)
    assert loaded is not None
    assert loaded.subscription == sub
    assert len(store.runs()) == 1


def test_a_held_lease_refuses_another_owner_until_it_expires(store: SubscriptionStore) -> None:
    name, ttl = "lease" + new_id()[:8], timedelta(minutes=10)
    assert store.acquire_lease(name, "first", now=NOW, ttl=ttl)
    assert not store.acquire_lease(name, "second", now=NOW + timedelta(minutes=9), ttl=ttl)
    assert store.acquire_lease(name, "first", now=NOW + timedelta(minutes=9), ttl=ttl)  # renewed
    assert not store.acquire_lease(name, "second", now=NOW + timedelta(minutes=18), ttl=ttl)
    assert store.acquire_lease(name, "second", now=NOW + timedelta(minutes=20), ttl=ttl)  # expired: taken over
    assert not store.acquire_lease(name, "first", now=NOW + timedelta(minutes=21), ttl=ttl)


def test_only_the_holder_releases_a_lease(store: SubscriptionStore) -> None:
    name, ttl = "lease" + new_id()[:8], timedelta(minutes=10)
    store.release_lease(name, "nobody")  # nothing held: nothing happens
    assert store.acquire_lease(name, "first", now=NOW, ttl=ttl)
    store.release_lease(name, "second")
    assert not store.acquire_lease(name, "second", now=NOW, ttl=ttl)
    store.release_lease(name, "first")
    assert store.acquire_lease(name, "second", now=NOW, ttl=ttl)


# The fake's own fault injection: what unit tests of the processing service rely on.


def test_fake_fails_the_next_calls_then_recovers() -> None:
    fake = FakeSubscriptionStore()
    sub = subscription()
    fake.fail_next_calls(2)
    with pytest.raises(StorageUnavailable):
        create(fake, sub)
    with pytest.raises(StorageUnavailable):
        fake.load(sub.id)
    assert fake.load(sub.id) is None
    assert create(fake, sub).subscription == sub


def test_fake_conflicts_on_the_next_commit_only() -> None:
    fake = FakeSubscriptionStore()
    sub = subscription()
    fake.conflict_on_next_commit()
    with pytest.raises(ConcurrencyConflict):
        create(fake, sub)
    assert fake.load(sub.id) is None
    create(fake, sub)
    assert fake.commits == 1
