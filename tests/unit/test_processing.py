"""The processing service with fakes: the sandbox's core behind the API port, the in-memory store."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.clock import SystemClock
from lifecycle.domain.events import Event, Source
from lifecycle.domain.history import ChangeKind, Outcome
from lifecycle.domain.model import Status
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus, Snapshot
from lifecycle.errors import MarketplaceUnavailable, StorageUnavailable, UnverifiedEvent
from lifecycle.parsing import parse_webhook
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.processing import ProcessingService
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.store import FakeSubscriptionStore


class RecordingProduct:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[ChangeKind, str]] = []
        self.fail = fail

    def notify(self, change: ChangeKind, subscription: Any, *, operation_id: str) -> None:
        if self.fail:
            raise ConnectionError("product down")
        self.events.append((change, operation_id))


class World:
    def __init__(self) -> None:
        self.marketplace = Marketplace(auto_accept_seconds=None)
        self.api = InProcessMarketplaceApi(self.marketplace)
        self.store = FakeSubscriptionStore()
        self.product = RecordingProduct()
        self.service = ProcessingService(self.store, self.api, self.product, SystemClock())

    def purchase(self, plan: str = "team", quantity: int | None = 5) -> str:
        offer = "contoso-seats" if quantity is not None else "contoso-flat"
        subscription, _ = self.marketplace.purchase(offer, plan, quantity, activated=True)
        return str(subscription["id"])

    def event(self, operation: dict[str, Any]) -> Event:
        return parse_webhook(self.marketplace.webhook_payload(str(operation["id"])))

    def process(self, operation: dict[str, Any]) -> Outcome:
        return self.service.process(self.event(operation)).outcome

    def patches(self) -> int:
        return sum(1 for name, _ in self.api.calls if name == "update_operation")

    def state(self, subscription_id: str) -> Any:
        snapshot = self.store.load(subscription_id)
        assert snapshot is not None
        return snapshot.subscription

    def delivery(self, subscription_id: str, operation_id: str) -> DeliveryRecord:
        record = self.store.delivery(subscription_id, operation_id)
        assert record is not None
        return record


@pytest.fixture
def world() -> World:
    return World()


def test_a_pending_plan_change_is_acknowledged_applied_and_recorded(world: World) -> None:
    sid = world.purchase()
    op = world.marketplace.change_plan(sid, "business", deliver=False)
    assert world.process(op) is Outcome.APPLIED
    assert world.marketplace.get_operation(sid, op["id"])["status"] == "Succeeded"
    assert world.state(sid).plan_id == "business" == world.marketplace.get(sid)["planId"]
    assert world.delivery(sid, op["id"]).status is DeliveryStatus.APPLIED
    assert (ChangeKind.PLAN_CHANGED, op["id"]) in world.product.events


def test_a_redelivery_changes_nothing_and_does_not_patch_again(world: World) -> None:
    sid = world.purchase()
    op = world.marketplace.change_quantity(sid, 8, deliver=False)
    world.process(op)
    history = world.store.history(sid)
    assert world.process(op) is Outcome.DUPLICATE
    assert world.patches() == 1
    assert world.store.history(sid) == history


def test_a_crash_between_ack_and_commit_is_finished_by_the_redelivery_without_a_second_patch(world: World) -> None:
    sid = world.purchase()
    world.process(world.marketplace.change_quantity(sid, 6, deliver=False))  # the subscription is known here
    op = world.marketplace.change_plan(sid, "business", deliver=False)
    real_commit = world.store.commit

    def crash(commit: Commit) -> Snapshot:
        raise StorageUnavailable("the process died here")

    world.store.commit = crash  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable):
        world.process(op)
    world.store.commit = real_commit  # type: ignore[method-assign]
    assert world.process(op) is Outcome.APPLIED
    assert world.patches() == 2  # one per operation: the redelivery saw the plan change already final
    plan_changes = [e for e in world.store.history(sid) if e.operation_id == op["id"]]
    assert len(plan_changes) == 1


def test_an_etag_conflict_is_retried_from_a_fresh_read(world: World) -> None:
    sid = world.purchase()
    world.process(world.marketplace.suspend(sid, deliver=False))
    world.store.conflict_on_next_commit()
    op = world.marketplace.reinstate(sid, deliver=False)
    assert world.process(op) is Outcome.APPLIED
    assert world.state(sid).status is Status.SUBSCRIBED
    assert [e.operation_id for e in world.store.history(sid)].count(op["id"]) == 1


def test_reordered_suspend_and_reinstate_converge_to_the_truth(world: World) -> None:
    sid = world.purchase()
    world.process(world.marketplace.change_quantity(sid, 6, deliver=False))
    suspend = world.marketplace.suspend(sid, deliver=False)
    reinstate = world.marketplace.reinstate(sid, deliver=False)
    assert world.process(reinstate) is Outcome.APPLIED  # judged on the truth: it was Suspended
    assert world.process(suspend) is Outcome.SUPERSEDED  # older than the status we applied
    assert world.state(sid).status is Status.SUBSCRIBED
    assert world.marketplace.get(sid)["saasSubscriptionStatus"] == "Subscribed"
    statuses = [c.after for e in reversed(world.store.history(sid)) for c in e.changes if c.field == "status"]
    assert statuses[-2:] == ["Suspended", "Subscribed"]


def test_a_subscription_never_seen_is_started_from_the_truth(world: World) -> None:
    sid = world.purchase()
    op = world.marketplace.change_quantity(sid, 9, deliver=False)
    assert world.process(op) is Outcome.APPLIED
    state = world.state(sid)
    assert (state.quantity, state.offer_id, state.status) == (9, "contoso-seats", Status.SUBSCRIBED)


def test_renew_takes_the_new_term_from_the_marketplace(world: World) -> None:
    sid = world.purchase()
    world.process(world.marketplace.change_quantity(sid, 6, deliver=False))
    before = world.state(sid).term
    assert world.process(world.marketplace.renew(sid, deliver=False)) is Outcome.APPLIED
    after = world.state(sid).term
    assert after.end is not None
    assert before.end is not None
    assert after.end > before.end


def test_a_change_the_marketplace_does_not_know_is_unverified_and_recorded_as_failed(world: World) -> None:
    sid = world.purchase()
    forged = parse_webhook({"id": "forged-op", "subscriptionId": sid, "action": "ChangePlan", "planId": "business"})
    with pytest.raises(UnverifiedEvent):
        world.service.process(forged)
    record = world.delivery(sid, "forged-op")
    assert record.status is DeliveryStatus.FAILED
    assert "operations API" in record.reason
    assert world.marketplace.get(sid)["planId"] == "team"


def test_a_suspend_no_operation_stands_behind_is_not_applied_while_the_subscription_is_active(world: World) -> None:
    # `api` mode: no token vouches for the delivery, so the subscription must confirm it.
    sid = world.purchase()
    world.process(world.marketplace.change_quantity(sid, 6, deliver=False))  # known here
    forged = parse_webhook({"id": "forged-suspend", "subscriptionId": sid, "action": "Suspend"})
    assert world.service.process(forged).outcome is Outcome.NOT_APPLIED
    assert world.state(sid).status is Status.SUBSCRIBED
    assert "the marketplace shows Subscribed" in world.delivery(sid, "forged-suspend").reason


def test_a_reinstate_without_an_operation_is_confirmed_by_the_subscription_not_dead_lettered(world: World) -> None:
    # The current docs make Reinstate notify-only: it may come with no operation at all.
    sid = world.purchase()
    world.process(world.marketplace.suspend(sid, deliver=False))
    reinstated = world.marketplace.reinstate(sid, deliver=False)
    world.marketplace.patch_operation(sid, str(reinstated["id"]), "Success")  # the marketplace shows Subscribed
    bare = parse_webhook({"id": "no-such-operation", "subscriptionId": sid, "action": "Reinstate"})
    assert world.service.process(bare).outcome is Outcome.APPLIED
    assert world.state(sid).status is Status.SUBSCRIBED


def test_an_operation_finalised_meanwhile_is_applied_without_failing_on_409(world: World) -> None:
    sid = world.purchase()
    world.process(world.marketplace.change_quantity(sid, 6, deliver=False))
    op = world.marketplace.change_plan(sid, "business", deliver=False)
    real = world.api.update_operation

    def auto_accepted_first(subscription_id: str, operation_id: str, *, success: bool) -> None:
        world.marketplace.patch_operation(subscription_id, operation_id, "Success")  # the 10-second auto-accept
        real(subscription_id, operation_id, success=success)

    world.api.update_operation = auto_accepted_first  # type: ignore[method-assign]
    assert world.process(op) is Outcome.APPLIED
    assert world.state(sid).plan_id == "business"


def test_a_failed_operation_is_not_applied(world: World) -> None:
    sid = world.purchase()
    world.process(world.marketplace.change_quantity(sid, 6, deliver=False))
    op = world.marketplace.change_plan(sid, "business", deliver=False)
    world.marketplace.patch_operation(sid, op["id"], "Failure")
    assert world.process(op) is Outcome.NOT_APPLIED
    assert world.state(sid).plan_id == "team"


def test_an_api_outage_raises_transient_and_writes_nothing(world: World) -> None:
    sid = world.purchase()
    op = world.marketplace.suspend(sid, deliver=False)
    world.marketplace.inject(status=503, times=3)
    with pytest.raises(MarketplaceUnavailable):
        world.process(op)
    assert world.store.load(sid) is None
    assert world.store.delivery(sid, op["id"]) is None


def test_a_product_that_fails_after_the_commit_is_told_when_the_delivery_comes_back(world: World) -> None:
    world.product.fail = True
    sid = world.purchase()
    op = world.marketplace.change_plan(sid, "business", deliver=False)

    with pytest.raises(ConnectionError):  # the message is not completed: the broker brings it back
        world.process(op)
    assert world.marketplace.get_operation(sid, op["id"])["status"] == "Succeeded"  # acked all the same
    assert world.state(sid).plan_id == "business"

    world.product.fail = False
    assert world.process(op) is Outcome.DUPLICATE
    assert world.product.events == [(ChangeKind.RESYNCED, op["id"]), (ChangeKind.PLAN_CHANGED, op["id"])]


def test_an_unknown_action_is_recorded_as_ignored(world: World) -> None:
    sid = world.purchase()
    event = parse_webhook({"id": "t-1", "subscriptionId": sid, "action": "Transfer"})
    assert world.service.process(event).outcome is Outcome.IGNORED
    assert world.delivery(sid, "t-1").status is DeliveryStatus.IGNORED


def test_the_operations_own_time_stamps_the_change_not_the_bodys(world: World) -> None:
    # In `api` mode nothing vouches for a body: a forged timeStamp far ahead would make every
    # later genuine change of that aspect look older than it (superseded) if it stamped our state.
    sid = world.purchase()
    world.service.process(world.event(world.marketplace.renew(sid, deliver=False)))  # now known here
    op = world.marketplace.change_plan(sid, "business", deliver=False)
    body = world.marketplace.webhook_payload(str(op["id"])) | {"timeStamp": "2099-01-01T00:00:00.0000000Z"}

    assert world.service.process(parse_webhook(body)).outcome is Outcome.APPLIED

    operation = world.api.get_operation(sid, str(op["id"]))
    assert operation.timestamp is not None
    assert world.state(sid).changed_at.plan == operation.timestamp


def test_a_body_time_ahead_of_our_clock_does_not_stamp_a_change_that_has_no_operation(world: World) -> None:
    # `api` mode: a forged Renew (no operation behind it) dated 2099, through which we learn of the
    # subscription, must not make the genuine Suspend that follows look older than it.
    sid = world.purchase()
    forged = parse_webhook({"id": "forged-renew", "subscriptionId": sid, "action": "Renew",
                            "timeStamp": "2099-01-01T00:00:00.0000000Z"})
    world.service.process(forged)

    assert world.process(world.marketplace.suspend(sid, deliver=False)) is Outcome.APPLIED
    assert world.state(sid).status is Status.SUSPENDED



def test_a_change_applied_while_the_products_outbox_was_down_is_told_on_replay(world: World) -> None:
    # The commit succeeded; writing the product's outbox failed through every re-send, so the
    # processor gave up and recorded the delivery failed. A replay must tell the product.
    sid = world.purchase()
    world.service.process(world.event(world.marketplace.renew(sid, deliver=False)))  # known here
    suspend = world.event(world.marketplace.suspend(sid, deliver=False))
    told = world.product.notify

    def outbox_down(*args: Any, **kwargs: Any) -> None:
        raise StorageUnavailable("product outbox: table storage answered 503")

    world.product.notify = outbox_down  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable):
        world.service.process(suspend)
    world.service.record_failure(suspend, "storage unavailable after 8 attempts")
    world.product.notify = told  # type: ignore[method-assign]

    replayed = world.service.process(suspend, source=Source.REPLAY)

    assert replayed.outcome is Outcome.DUPLICATE
    assert (ChangeKind.SUSPENDED, suspend.operation_id) in world.product.events
    assert world.delivery(sid, suspend.operation_id).status is DeliveryStatus.APPLIED
    assert world.state(sid).status is Status.SUSPENDED
