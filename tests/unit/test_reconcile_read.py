"""Reading our whole table over several shards at once: everything once, errors surface, nothing hangs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Generator, Iterator

import pytest

from lifecycle.domain.fingerprint import Fingerprinted
from lifecycle.domain.model import Subscription
from lifecycle.domain.records import Commit
from lifecycle.errors import StorageUnavailable
from lifecycle.services import reconcile_read
from lifecycle.services.reconcile_read import read_all
from tests.fakes.store import FakeSubscriptionStore


def filled(count: int) -> tuple[FakeSubscriptionStore, set[str]]:
    store = FakeSubscriptionStore()
    ids = {str(uuid.uuid4()) for _ in range(count)}
    for sid in ids:
        store.commit(Commit(subscription=Subscription(id=sid), expected=None))
    return store, ids


def test_every_subscription_comes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile_read, "BATCH", 7)  # several batches per shard, and a full queue
    store, ids = filled(500)
    read = [s.id for s in read_all(store, shards=16, threads=3)]
    assert sorted(read) == sorted(ids)


def test_an_empty_table_reads_nothing() -> None:
    assert list(read_all(FakeSubscriptionStore())) == []


class FailingShard(FakeSubscriptionStore):
    def fingerprints(self, shard: int, shards: int) -> Iterator[Fingerprinted]:
        if shard == 5:
            raise StorageUnavailable("list subscriptions: table storage answered 503")
        return super().fingerprints(shard, shards)


def test_a_readers_failure_is_raised_to_the_consumer() -> None:
    store = FailingShard()
    with pytest.raises(StorageUnavailable, match="503"):
        list(read_all(store))


def test_a_consumer_that_stops_early_leaves_no_reader_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile_read, "BATCH", 3)
    monkeypatch.setattr(reconcile_read, "BUFFER", 1)
    store, _ = filled(200)
    stream = read_all(store, threads=4)
    next(stream)
    assert isinstance(stream, Generator)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("reconcile-read")]
