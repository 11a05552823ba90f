"""Reconciliation on real parts: the sandbox over loopback HTTP, the table store on Azurite."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.bootstrap import Worker, build
from lifecycle.domain.model import ChangeTimes, Subscription
from lifecycle.domain.reconcile import COMPARED, FindingKind, Remedy
from lifecycle.domain.reconcile_runs import RunStatus
from lifecycle.domain.records import Commit
from lifecycle.parsing import parse_subscription
from lifecycle.sandbox import ManualClock, Sandbox
from lifecycle.services.reconcile import ReconcileProgress
from lifecycle.settings import Settings

pytestmark = [pytest.mark.azurite, pytest.mark.e2e]

DRIFT = {FindingKind.MISSING_LOCALLY, FindingKind.STATUS, FindingKind.PLAN, FindingKind.QUANTITY, FindingKind.TERM,
         FindingKind.AUTO_RENEW, FindingKind.DETAILS}


@pytest.fixture
def worker(worker_env: dict[str, str]) -> Worker:
    """The conftest's worker, asking every active subscription for outstanding operations."""
    return build(Settings.from_env(worker_env | {"RECONCILE_CHECK_OPERATIONS": "active"}))


def truth(sandbox: Sandbox, subscription_id: str) -> Subscription:
    return parse_subscription(sandbox.marketplace.get(subscription_id))


def know(worker: Worker, subscription: Subscription) -> None:
    worker.store.commit(Commit(subscription=subscription, expected=None))


def compared(subscription: Subscription) -> dict[str, object]:
    return {name: getattr(subscription, name) for name in COMPARED}


def drift_everything(worker: Worker, sandbox: Sandbox, clock: ManualClock) -> dict[str, str]:
    market = sandbox.marketplace
    ids = {name: str(market.purchase("contoso-seats", "team", 5, activated=True)[0]["id"])
           for name in ("plan", "quantity", "suspended", "renewed", "unsubscribed", "auto_renew", "agrees",
                        "pending_op")}
    ids["stuck"] = str(market.purchase("contoso-seats", "team", 5)[0]["id"])
    for name, sid in ids.items():
        ours = truth(sandbox, sid)
        if name == "auto_renew":
            ours = replace(ours, auto_renew=False)
        if name == "stuck":
            ours = replace(ours, changed_at=ChangeTimes(status=datetime.now(UTC) - timedelta(hours=30)))
        know(worker, ours)
    ids["unknown"] = str(market.purchase("contoso-flat", "basic", activated=True)[0]["id"])  # never heard of
    ghost = replace(truth(sandbox, ids["agrees"]), id=f"ghost-{uuid.uuid4()}")  # ours only
    know(worker, ghost)
    ids["ghost"] = ghost.id
    # Changes whose webhooks never reached us: two are auto-accepted while we are not listening.
    market.change_plan(ids["plan"], "business", deliver=False)
    market.change_quantity(ids["quantity"], 9, deliver=False)
    clock.advance(11)
    market.suspend(ids["suspended"], deliver=False)
    market.renew(ids["renewed"], deliver=False)
    market.unsubscribe(ids["unsubscribed"], deliver=False)
    market.change_quantity(ids["pending_op"], 8, deliver=False)  # still waiting for an answer
    return ids


def test_a_dry_run_reports_every_class_and_a_real_run_converges_to_the_truth(
    worker: Worker, sandbox: Sandbox, sandbox_clock: ManualClock
) -> None:
    ids = drift_everything(worker, sandbox, sandbox_clock)
    before = {sid: worker.store.load(sid) for sid in ids.values()}

    dry = worker.reconcile.run(dry_run=True)

    assert (dry.status, dry.dry_run, dry.repaired) == (RunStatus.SUCCEEDED, True, 0)
    found = {(f.subscription_id, f.kind): f.remedy for f in dry.sample}
    assert found == {
        (ids["unknown"], FindingKind.MISSING_LOCALLY): Remedy.ADOPT,
        (ids["plan"], FindingKind.PLAN): Remedy.REPAIR,
        (ids["quantity"], FindingKind.QUANTITY): Remedy.REPAIR,
        (ids["suspended"], FindingKind.STATUS): Remedy.REPAIR,
        (ids["unsubscribed"], FindingKind.STATUS): Remedy.REPAIR,
        (ids["renewed"], FindingKind.TERM): Remedy.REPAIR,
        (ids["auto_renew"], FindingKind.AUTO_RENEW): Remedy.REPAIR,
        (ids["ghost"], FindingKind.ABSENT_REMOTELY): Remedy.REPORT,
        (ids["stuck"], FindingKind.STUCK_PENDING): Remedy.REPORT,
        (ids["pending_op"], FindingKind.OUTSTANDING_OPERATION): Remedy.REPORT,
    }
    assert {sid: worker.store.load(sid) for sid in ids.values()} == before
    assert all(worker.store.history(sid) == [] for sid in ids.values())

    real = worker.reconcile.run()

    assert (real.status, real.repaired, real.errors) == (RunStatus.SUCCEEDED, 7, 0)
    for name, sid in ids.items():
        if name != "ghost":
            ours = worker.store.load(sid)
            assert ours is not None
            assert compared(ours.subscription) == compared(truth(sandbox, sid)), name
    assert [e.source.value for e in worker.store.history(ids["suspended"])] == ["reconciliation"]

    again = worker.reconcile.run()

    assert not DRIFT & set(again.counts)
    assert dict(again.counts) == {FindingKind.ABSENT_REMOTELY: 1, FindingKind.STUCK_PENDING: 1,
                                  FindingKind.OUTSTANDING_OPERATION: 1}
    worker.reconcile.tombstone(ids["ghost"], "test purchase, deleted on purpose")
    assert FindingKind.ABSENT_REMOTELY not in worker.reconcile.run().counts
    assert [r.dry_run for r in worker.reconcile.runs(5)] == [False, False, False, True]


def test_a_page_still_failing_after_the_clients_retries_is_read_again(worker: Worker, sandbox: Sandbox) -> None:
    sandbox.marketplace.page_size = 3
    ids = [str(sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)[0]["id"]) for _ in range(8)]
    for sid in ids:  # all agree, so the list is the only API call the fault can hit
        know(worker, truth(sandbox, sid))
    injected: list[bool] = []

    def storm_after_the_first_page(progress: ReconcileProgress) -> None:
        if progress.phase == "listing" and not injected:
            injected.append(True)  # every one of the client's attempts at the next page answers 503
            sandbox.marketplace.inject(status=503, times=worker.settings.api_max_attempts, method="GET",
                                       path="/api/saas/subscriptions")

    run = worker.reconcile.run(progress=storm_after_the_first_page)

    assert (run.status, run.pages, run.listed, run.known, dict(run.counts)) == (RunStatus.SUCCEEDED, 3, 8, 8, {})
    assert sandbox.marketplace.faults.pending == 0
    assert len(sandbox.marketplace.faults.applied) == worker.settings.api_max_attempts
