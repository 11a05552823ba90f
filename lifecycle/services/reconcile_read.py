"""Reading every subscription of ours quickly: several key ranges (shards) at once, key order given up.

The whole-table pass is most of a reconciliation's storage time. One query walks the table
a page at a time, each page a round trip; shards read on a few threads overlap those trips
(on Azurite, whose cost per page grows with the rows one query matches, a shard is cheaper
even alone). Reconciliation indexes by id, so it needs no order, and only fingerprints
(`SubscriptionStore.fingerprints`), so no row is decoded whole. Memory stays bounded: the
threads hand over batches through a queue of BUFFER batches and wait while it is full.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from lifecycle.domain.fingerprint import Fingerprinted
from lifecycle.ports import SubscriptionStore

SHARDS, THREADS, BATCH, BUFFER = 16, 4, 500, 8

_Item = list[Fingerprinted] | BaseException | None  # a batch, a reader's failure, or "this reader is done"


def read_all(store: SubscriptionStore, *, shards: int = SHARDS, threads: int = THREADS) -> Iterator[Fingerprinted]:
    """Every stored subscription's fingerprint once, in no particular order; a reader's error is raised here."""
    batches: queue.Queue[_Item] = queue.Queue(maxsize=BUFFER)
    stop = threading.Event()  # the consumer is gone: readers must not block on a full queue
    todo = iter(range(shards))
    taking = threading.Lock()

    def hand_over(item: _Item) -> bool:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            while True:
                with taking:
                    shard = next(todo, None)
                if shard is None:
                    return
                batch: list[Fingerprinted] = []
                for ours in store.fingerprints(shard, shards):
                    batch.append(ours)
                    if len(batch) == BATCH:
                        if not hand_over(batch):
                            return
                        batch = []
                if batch and not hand_over(batch):
                    return
        except BaseException as error:  # handed to the consumer, who raises it in its own thread
            hand_over(error)
        finally:
            hand_over(None)

    readers = [threading.Thread(target=read, name=f"reconcile-read-{n}", daemon=True) for n in range(threads)]
    for reader in readers:
        reader.start()
    try:
        done = 0
        while done < len(readers):
            item = batches.get()
            if item is None:
                done += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield from item
    finally:
        stop.set()
        for reader in readers:
            reader.join()
