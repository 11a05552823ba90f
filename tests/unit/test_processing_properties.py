"""Properties of the processing service on fakes: whatever the marketplace's order, we converge.

A random valid lifecycle is played on the sandbox's core (a manual clock: the 10-second
window passes when the test says so). Some operations are delivered at once, while still
pending, so the service acknowledges them; the rest wait until the marketplace has
auto-accepted them. All deliveries then arrive shuffled, some several times, and some
attempts crash: the store fails before anything is written, or after the PATCH and before
the commit (the crash the service's step order is built for). A crashed attempt is
delivered again later, as the queue would. Whatever the interleaving:

- our state ends equal to the marketplace's truth;
- no operation is told two things (PATCH Success and Failure) and none changes our
  state twice;
- every delivery ends applied or ignored, none stuck as received.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.clock import SystemClock
from lifecycle.domain.history import Outcome
from lifecycle.domain.records import Commit, Snapshot
from lifecycle.errors import StorageUnavailable, TransientError
from lifecycle.parsing import parse_subscription, parse_webhook
from lifecycle.sandbox import ManualClock
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.processing import ProcessingService
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.store import FakeSubscriptionStore
from tests.unit.test_convergence import COMPARED, play


class CrashingStore(FakeSubscriptionStore):
    """The fake store, plus a crash on the next commit: after the PATCH, before anything is written."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_next_commit = False

    def commit(self, commit: Commit) -> Snapshot:
        if self.crash_next_commit:
            self.crash_next_commit = False
            raise StorageUnavailable("the worker died before its commit")
        return super().commit(commit)


class Silent:
    def notify(self, *args: Any, **kwargs: Any) -> None:
        return None


class World:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.market = Marketplace(clock=self.clock, auto_accept_seconds=10.0)
        self.store = CrashingStore()
        self.service = ProcessingService(self.store, InProcessMarketplaceApi(self.market), Silent(), SystemClock())
        self.sid = str(self.market.purchase("contoso-seats", "team", 5, activated=True)[0]["id"])

    def deliver(self, operation_id: str, crash: str | None) -> bool:
        """One delivery attempt; False when it crashed (the queue delivers it again)."""
        if crash == "before":
            self.store.fail_next_calls(1)
        elif crash == "after_ack":
            self.store.crash_next_commit = True
        try:
            self.service.process(parse_webhook(self.market.webhook_payload(operation_id)))
        except TransientError:
            return False
        finally:
            self.store.fail_next_calls(0)
            self.store.crash_next_commit = False
        return True


CRASHES = st.sampled_from([None, None, None, "before", "after_ack"])


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 10), at_once=st.floats(0, 1),
       duplicates=st.integers(0, 5), crashes=st.lists(CRASHES, min_size=40, max_size=40))
def test_any_interleaving_with_pending_acks_duplicates_and_crashes_converges(
    seed: int, steps: int, at_once: float, duplicates: int, crashes: list[str | None]
) -> None:
    world = World(seed)
    crash = iter(crashes * 10)
    operations: list[str] = []
    retries: list[str] = []
    for operation in play_pending(world, steps):
        operations.append(operation)
        if world.rng.random() < at_once and not world.deliver(operation, next(crash)):
            retries.append(operation)
        world.clock.advance(11)  # whatever we did not answer, the marketplace auto-accepts
    deliveries = retries + operations + [world.rng.choice(operations) for _ in range(duplicates)]
    world.rng.shuffle(deliveries)
    while deliveries:
        operation = deliveries.pop(0)
        if not world.deliver(operation, next(crash)):
            deliveries.insert(world.rng.randint(0, len(deliveries)), operation)  # redelivered later

    snapshot = world.store.load(world.sid)
    assert snapshot is not None
    ours, truth = snapshot.subscription, parse_subscription(world.market.get(world.sid))
    assert {f: getattr(ours, f) for f in COMPARED} == {f: getattr(truth, f) for f in COMPARED}
    history = world.store.history(world.sid)
    for record in world.market.records():
        assert len({patch.status for patch in record.patches}) <= 1, record
        changed = [e for e in history if e.operation_id == record.operation_id and e.changes
                   and e.outcome is not Outcome.RESYNCED]
        assert len(changed) <= 1, changed
        stored = world.store.delivery(world.sid, record.operation_id)
        assert stored is not None
        assert stored.status.is_final, stored


def play_pending(world: World, steps: int) -> Iterator[str]:
    """`play` one step at a time, so each operation can be delivered while still pending."""
    for _ in range(steps):
        step = play(world.market, _Still(), world.sid, world.rng, 1)
        if not step:
            return
        yield str(step[0]["id"])


class _Still:
    """`play` advances its clock after each step; here the test decides when time passes."""

    def advance(self, seconds: float) -> None:
        return None


def test_a_crash_after_the_patch_is_finished_by_the_redelivery_without_a_second_patch() -> None:
    # The property above draws this crash at random; here it is certain to be exercised.
    world = World(seed=1)
    operation = str(world.market.change_quantity(world.sid, 7, deliver=False)["id"])

    def patches() -> list[str]:
        [record] = [r for r in world.market.records() if r.operation_id == operation]
        return [patch.status for patch in record.patches]

    assert world.deliver(operation, "after_ack") is False
    assert (patches(), world.store.load(world.sid)) == (["Success"], None)  # acknowledged, nothing written
    assert world.deliver(operation, None) is True

    assert patches() == ["Success"]
    snapshot = world.store.load(world.sid)
    assert snapshot is not None
    assert snapshot.subscription.quantity == 7
    assert [e.operation_id for e in world.store.history(world.sid) if e.changes] == [operation]
