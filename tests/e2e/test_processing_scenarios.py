"""Whole lifecycles through the processing service on real parts, with duplicates and reordering."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.bootstrap import Worker
from lifecycle.domain.events import Event
from lifecycle.domain.history import Outcome
from lifecycle.domain.model import Subscription
from lifecycle.parsing import parse_subscription, parse_webhook
from lifecycle.sandbox import ManualClock, Sandbox

pytestmark = [pytest.mark.azurite, pytest.mark.e2e]

COMPARED = ("status", "offer_id", "plan_id", "quantity", "term", "auto_renew", "beneficiary_tenant_id",
            "purchaser_tenant_id", "is_test", "is_free_trial")


def event(sandbox: Sandbox, operation: dict[str, Any]) -> Event:
    return parse_webhook(sandbox.marketplace.webhook_payload(str(operation["id"])))


def truth(sandbox: Sandbox, subscription_id: str) -> Subscription:
    return parse_subscription(sandbox.marketplace.get(subscription_id))


def ours(worker: Worker, subscription_id: str) -> Subscription:
    snapshot = worker.store.load(subscription_id)
    assert snapshot is not None
    return snapshot.subscription


def assert_converged(worker: Worker, sandbox: Sandbox, subscription_id: str) -> None:
    local, remote = ours(worker, subscription_id), truth(sandbox, subscription_id)
    assert {f: getattr(local, f) for f in COMPARED} == {f: getattr(remote, f) for f in COMPARED}


def test_a_full_lifecycle_delivered_twice_and_out_of_order_converges_with_one_entry_per_change(
    worker: Worker, sandbox: Sandbox, sandbox_clock: ManualClock
) -> None:
    market = sandbox.marketplace
    subscription, _ = market.purchase("contoso-seats", "team", 5, activated=True)
    sid = subscription["id"]

    plan = market.change_plan(sid, "business", deliver=False)
    outcomes = [worker.processing.process(event(sandbox, plan)).outcome for _ in range(2)]
    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE]
    assert market.get_operation(sid, plan["id"])["status"] == "Succeeded"

    # The rest happens while our webhook is "down": pending operations are auto-accepted
    # after 10 s, and the deliveries then arrive twice each, some out of order.
    quantity = market.change_quantity(sid, 20, deliver=False)
    sandbox_clock.advance(11)
    suspend = market.suspend(sid, deliver=False)
    sandbox_clock.advance(1)
    reinstate = market.reinstate(sid, deliver=False)
    sandbox_clock.advance(11)
    renew = market.renew(sid, deliver=False)
    sandbox_clock.advance(1)
    unsubscribe = market.unsubscribe(sid, deliver=False)
    deliveries = [suspend, quantity, quantity, reinstate, suspend, renew, reinstate, unsubscribe, renew, unsubscribe]
    for operation in deliveries:
        worker.processing.process(event(sandbox, operation))

    assert_converged(worker, sandbox, sid)
    history = list(reversed(worker.store.history(sid)))
    changed = [(c.field, c.after) for entry in history for c in entry.changes if c.field != "term"]
    assert changed.count(("plan_id", "business")) == 1
    assert changed.count(("quantity", "20")) == 1
    assert [after for field, after in changed if field == "status"][-3:] == ["Suspended", "Subscribed", "Unsubscribed"]
    assert sum(1 for entry in history for c in entry.changes if c.field == "term") >= 1
    assert market.protocol_errors() == []


def test_a_pending_change_above_the_plan_maximum_in_processing_is_refused_with_a_failure_ack(
    worker: Worker, sandbox: Sandbox
) -> None:
    subscription, _ = sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    sid = subscription["id"]
    suspend = sandbox.marketplace.suspend(sid, deliver=False)
    worker.processing.process(event(sandbox, suspend))
    sandbox.marketplace.reinstate(sid, deliver=False)
    reinstate = sandbox.marketplace.operations(sid)[0]
    assert worker.processing.process(event(sandbox, reinstate)).outcome is Outcome.APPLIED
    assert_converged(worker, sandbox, sid)


def test_a_subscription_bought_before_the_worker_existed_is_learnt_from_its_first_event(
    worker: Worker, sandbox: Sandbox
) -> None:
    subscription, _ = sandbox.marketplace.purchase("contoso-flat", "basic", activated=True)
    sid = subscription["id"]
    change = sandbox.marketplace.change_plan(sid, "premium", deliver=False)
    assert worker.processing.process(event(sandbox, change)).outcome is Outcome.APPLIED
    assert_converged(worker, sandbox, sid)
    assert ours(worker, sid).quantity is None
