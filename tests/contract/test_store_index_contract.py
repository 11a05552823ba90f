"""The ops index contract (`SubscriptionStore.find` and `reindex`): the fake and the table store on Azurite."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from lifecycle.domain.model import Status, Subscription, Term
from lifecycle.domain.records import Commit, Snapshot
from lifecycle.errors import ConcurrencyConflict
from lifecycle.ports import Indexed, Lookup, SubscriptionStore
from lifecycle.store import index
from lifecycle.store.table import TableSubscriptionStore
from tests.contract.test_store_contract import create, entry, new_id
from tests.fakes import FakeSubscriptionStore


def tenant() -> str:
    return str(uuid.uuid4())


def sub(**fields: object) -> Subscription:
    defaults: dict[str, object] = {"id": new_id(), "offer_id": "seats", "plan_id": "team", "auto_renew": True,
                                   "status": Status.SUBSCRIBED, "beneficiary_tenant_id": tenant(),
                                   "purchaser_tenant_id": tenant()}
    return Subscription(**{**defaults, **fields})  # type: ignore[arg-type]


def found(store: SubscriptionStore, lookup: Lookup | None, limit: int = 1000) -> list[str]:
    return [hit.subscription.id for hit in store.find(lookup, limit=limit) if hit.subscription is not None]


def update(store: SubscriptionStore, snapshot: Snapshot, **fields: Any) -> Snapshot:
    return store.commit(Commit(subscription=replace(snapshot.subscription, **fields), expected=snapshot))


def change(store: SubscriptionStore, snapshot: Snapshot, **fields: Any) -> Snapshot:
    """A change with its history entry, as every real change is: the version moves on."""
    history = (entry(snapshot.subscription.id, new_id()),)
    return store.commit(Commit(subscription=replace(snapshot.subscription, **fields), expected=snapshot,
                               history=history))


def index_rows(store: SubscriptionStore, request: pytest.FixtureRequest, partition: str) -> set[str]:
    """The row keys of one index partition, read around the store."""
    if isinstance(store, FakeSubscriptionStore):
        return store.index_row_keys(partition)
    assert isinstance(store, TableSubscriptionStore)
    conn = request.getfixturevalue("azurite_connection_string")
    with TableServiceClient.from_connection_string(conn) as service:
        table = service.get_table_client(store.index_table_name)
        rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"])
        return {row["RowKey"] for row in rows}


@pytest.mark.parametrize(("field", "attribute", "value"), [
    (Indexed.STATUS, "status", Status.SUSPENDED), (Indexed.OFFER, "offer_id", "other-offer"),
    (Indexed.PLAN, "plan_id", "gold"), (Indexed.TENANT, "beneficiary_tenant_id", tenant()),
    (Indexed.PURCHASER, "purchaser_tenant_id", tenant()), (Indexed.FREE_TRIAL, "is_free_trial", True),
    (Indexed.TEST, "is_test", True),
])
def test_each_indexed_field_finds_exactly_its_subscriptions(
    store: SubscriptionStore, field: Indexed, attribute: str, value: object
) -> None:
    matching = {create(store, sub(**{attribute: value})).subscription.id for _ in range(3)}
    for _ in range(3):
        create(store, sub())
    lookup_value = "true" if value is True else str(value)
    assert sorted(found(store, Lookup(field, lookup_value))) == sorted(matching)


def test_tenant_lookups_ignore_the_case_of_the_guid(store: SubscriptionStore) -> None:
    tid = tenant()
    sid = create(store, sub(beneficiary_tenant_id=tid.upper())).subscription.id
    assert found(store, Lookup(Indexed.TENANT, tid)) == [sid]


def test_a_committed_change_moves_the_subscription_between_index_partitions(store: SubscriptionStore) -> None:
    snapshot = create(store, sub(status=Status.SUBSCRIBED, plan_id="team"))
    update(store, snapshot, status=Status.SUSPENDED, plan_id="gold")
    sid = snapshot.subscription.id
    assert found(store, Lookup(Indexed.STATUS, "Suspended")) == [sid]
    assert found(store, Lookup(Indexed.STATUS, "Subscribed")) == []
    assert found(store, Lookup(Indexed.PLAN, "gold")) == [sid]
    assert found(store, Lookup(Indexed.PLAN, "team")) == []


def test_hits_carry_the_current_state(store: SubscriptionStore) -> None:
    snapshot = create(store, sub(status=Status.SUSPENDED, quantity=3))
    update(store, snapshot, quantity=9)
    [hit] = store.find(Lookup(Indexed.STATUS, "Suspended"))
    assert hit.subscription is not None
    assert hit.subscription.quantity == 9


def test_renewals_are_found_by_term_end_with_auto_renew_off_only(store: SubscriptionStore) -> None:
    def ends(day: date, auto_renew: bool = False) -> str:
        return create(store, sub(auto_renew=auto_renew, term=Term("P1M", date(2025, 1, 1), day))).subscription.id

    early, on_the_day = ends(date(2025, 3, 1)), ends(date(2025, 3, 10))
    ends(date(2025, 3, 11))
    ends(date(2025, 3, 2), auto_renew=True)
    create(store, sub(auto_renew=False, term=Term()))  # no known end: never at risk by date
    assert found(store, Lookup(Indexed.RENEWAL, "2025-03-10")) == [early, on_the_day]  # term end order


def test_turning_auto_renew_on_leaves_the_renewal_index(store: SubscriptionStore) -> None:
    snapshot = create(store, sub(auto_renew=False, term=Term("P1M", date(2025, 1, 1), date(2025, 2, 1))))
    update(store, snapshot, auto_renew=True)
    assert found(store, Lookup(Indexed.RENEWAL, "2030-01-01")) == []


@pytest.mark.parametrize("lookup", [Lookup(Indexed.STATUS, "Suspended"), None])
def test_pages_resume_after_the_last_key_without_gaps_or_repeats(
    store: SubscriptionStore, lookup: Lookup | None
) -> None:
    ids = {create(store, sub(status=Status.SUSPENDED)).subscription.id for _ in range(23)}
    seen: list[str] = []
    after = ""
    while True:
        hits = store.find(lookup, after=after, limit=5)
        seen += [hit.subscription.id for hit in hits if hit.subscription is not None]
        if len(hits) < 5:
            break
        after = hits[-1].key
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(ids)


def test_a_lookup_of_a_value_nobody_has_finds_nothing(store: SubscriptionStore) -> None:
    create(store, sub())
    assert store.find(Lookup(Indexed.OFFER, "Suspended' or '1' eq '1")) == []


def test_a_failed_commit_leaves_no_hit_only_a_key_without_a_state(store: SubscriptionStore) -> None:
    first = create(store, sub(status=Status.SUBSCRIBED))
    with pytest.raises(ConcurrencyConflict):
        create(store, replace(first.subscription, status=Status.SUSPENDED))  # it exists already
    hits = [hit for hit in store.find(Lookup(Indexed.STATUS, "Suspended")) if hit.key == first.subscription.id]
    assert [hit.subscription for hit in hits] == [None]  # its row is read and judged against the state


def test_a_change_leaves_its_obsolete_row_for_the_first_query_that_meets_it(
    store: SubscriptionStore, request: pytest.FixtureRequest
) -> None:
    snapshot = create(store, sub(status=Status.SUBSCRIBED))
    change(store, snapshot, status=Status.SUSPENDED)
    sid = snapshot.subscription.id
    subscribed = index.partition(Indexed.STATUS, "Subscribed")
    assert sid in index_rows(store, request, subscribed)  # the commit wrote one row and deleted none
    assert found(store, Lookup(Indexed.STATUS, "Subscribed")) == []
    assert sid not in index_rows(store, request, subscribed)  # the query removed it
    assert found(store, Lookup(Indexed.STATUS, "Suspended")) == [sid]


def test_a_row_written_after_its_state_is_kept_as_a_commit_under_way(
    store: SubscriptionStore, request: pytest.FixtureRequest
) -> None:
    first = create(store, sub(status=Status.SUBSCRIBED))
    with pytest.raises(ConcurrencyConflict):  # as a commit still under way would: its row, not its state
        create(store, replace(first.subscription, status=Status.SUSPENDED))
    suspended = index.partition(Indexed.STATUS, "Suspended")
    assert found(store, Lookup(Indexed.STATUS, "Suspended")) == []
    assert first.subscription.id in index_rows(store, request, suspended)


def test_a_doomed_commit_rewriting_a_row_with_an_older_version_does_not_get_it_removed(
    store: SubscriptionStore, request: pytest.FixtureRequest
) -> None:
    # The state is at version 2; a commit decided on version 0 (bound to fail) rewrites the
    # "Suspended" row with version 1, as it may just after the commit that needs the row
    # (decided on version 2, not yet landed) wrote it. A query in between must keep it.
    created = create(store, sub(status=Status.SUBSCRIBED))
    current = change(store, change(store, created, quantity=2), quantity=3)
    with pytest.raises(ConcurrencyConflict):
        change(store, created, status=Status.SUSPENDED)
    suspended = index.partition(Indexed.STATUS, "Suspended")
    assert found(store, Lookup(Indexed.STATUS, "Suspended")) == []
    assert created.subscription.id in index_rows(store, request, suspended)
    change(store, current, status=Status.SUSPENDED)  # the commit that needed it lands
    assert found(store, Lookup(Indexed.STATUS, "Suspended")) == [created.subscription.id]


def test_a_row_rewritten_between_its_read_and_its_removal_is_kept(
    store: SubscriptionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = change(store, create(store, sub(status=Status.SUBSCRIBED)), status=Status.SUSPENDED)
    sid = snapshot.subscription.id
    loaded = store.load(sid)  # with the time of its write, which makes the old row obsolete
    assert loaded is not None
    assert loaded.written_at is not None

    def load_then_change_back(subscription_id: str) -> Snapshot | None:
        # The query has read the obsolete "Subscribed" row; before it loads the state, a change
        # back to Subscribed rewrites that row. The query still judges the older state it got.
        monkeypatch.undo()
        change(store, snapshot, status=Status.SUBSCRIBED)
        return loaded

    if isinstance(store, TableSubscriptionStore):
        monkeypatch.setattr(store._index, "_load", load_then_change_back)
    else:
        monkeypatch.setattr(store, "load", load_then_change_back)
    assert found(store, Lookup(Indexed.STATUS, "Subscribed")) == []  # judged on the older state
    assert found(store, Lookup(Indexed.STATUS, "Subscribed")) == [sid]  # the rewritten row survived


@pytest.mark.parametrize("kind", ["fake", pytest.param("azurite", marks=pytest.mark.azurite)])
def test_a_row_obsolete_for_less_than_the_margin_is_kept(
    kind: str, request: pytest.FixtureRequest, table_prefix: str
) -> None:
    # The margin covers the clocks of two storage servers; within it, a reader cannot tell.
    with margin_store(kind, request, table_prefix, timedelta(hours=1)) as store:
        snapshot = create(store, sub(status=Status.SUBSCRIBED))
        change(store, snapshot, status=Status.SUSPENDED)
        assert found(store, Lookup(Indexed.STATUS, "Subscribed")) == []
        subscribed = index.partition(Indexed.STATUS, "Subscribed")
        assert snapshot.subscription.id in index_rows(store, request, subscribed)


def test_a_stale_row_rewritten_by_a_later_change_is_found_again(
    store: SubscriptionStore, request: pytest.FixtureRequest
) -> None:
    snapshot = change(store, create(store, sub(status=Status.SUBSCRIBED)), status=Status.SUSPENDED)
    sid = snapshot.subscription.id
    assert found(store, Lookup(Indexed.STATUS, "Subscribed")) == []
    assert sid not in index_rows(store, request, index.partition(Indexed.STATUS, "Subscribed"))  # removed
    change(store, snapshot, status=Status.SUBSCRIBED)
    assert found(store, Lookup(Indexed.STATUS, "Subscribed")) == [sid]
    assert found(store, Lookup(Indexed.STATUS, "Suspended")) == []


def lose_index_rows(store: SubscriptionStore, subscription_id: str, request: pytest.FixtureRequest) -> None:
    """What a crash between the commit and the index writes would leave: no row for this subscription."""
    if isinstance(store, FakeSubscriptionStore):
        assert store.drop_index_row(subscription_id) > 0
        return
    assert isinstance(store, TableSubscriptionStore)
    conn = request.getfixturevalue("azurite_connection_string")
    with TableServiceClient.from_connection_string(conn) as service:
        table = service.get_table_client(store.index_table_name)
        rows = [e for e in table.list_entities() if e["SubscriptionId"] == subscription_id]
        assert rows
        for entity in rows:
            table.delete_entity(entity["PartitionKey"], entity["RowKey"])


def test_reindex_writes_missing_rows_and_removes_stale_ones(
    store: SubscriptionStore, request: pytest.FixtureRequest
) -> None:
    lost = create(store, sub(status=Status.SUSPENDED))
    kept = create(store, sub(status=Status.SUSPENDED))
    lose_index_rows(store, lost.subscription.id, request)
    stale = create(store, sub(status=Status.SUBSCRIBED))
    with pytest.raises(ConcurrencyConflict):  # leaves a "status|Suspended" row for a Subscribed one
        create(store, replace(stale.subscription, status=Status.SUSPENDED))
    change(store, stale, quantity=4)  # the state is written again: the failed commit's row is older
    suspended = index_rows(store, request, index.partition(Indexed.STATUS, "Suspended"))
    assert suspended == {kept.subscription.id, stale.subscription.id}  # lost: missing
    done = store.reindex()
    assert (done.subscriptions, done.removed) == (3, 1)
    assert done.written >= 5  # status, offer, plan, tenant, purchaser of the lost one
    hits = store.find(Lookup(Indexed.STATUS, "Suspended"))
    assert sorted(h.key for h in hits) == sorted([lost.subscription.id, kept.subscription.id])
    assert store.reindex() == type(done)(subscriptions=3, written=0, removed=0)  # nothing left to mend


def test_reindex_keeps_a_row_written_after_the_state_it_read(
    store: SubscriptionStore, request: pytest.FixtureRequest
) -> None:
    first = create(store, sub(status=Status.SUBSCRIBED))
    with pytest.raises(ConcurrencyConflict):  # a commit under way, to reindex as to a query
        create(store, replace(first.subscription, status=Status.SUSPENDED))
    assert store.reindex().removed == 0
    assert first.subscription.id in index_rows(store, request, index.partition(Indexed.STATUS, "Suspended"))


@contextlib.contextmanager
def margin_store(
    kind: str, request: pytest.FixtureRequest, prefix: str, margin: timedelta
) -> Iterator[SubscriptionStore]:
    """A store of `kind` with another skew margin than the contract fixture's."""
    if kind == "fake":
        yield FakeSubscriptionStore(index_margin=margin)
        return
    conn = request.getfixturevalue("azurite_connection_string")
    with TableSubscriptionStore.from_connection_string(conn, prefix, index_margin=margin) as real:
        yield real
    with TableServiceClient.from_connection_string(conn) as service:
        service.delete_table(real.table_name)
        service.delete_table(real.index_table_name)
