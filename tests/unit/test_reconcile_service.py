"""The reconcile service on fakes: the sandbox's core behind the API port, the in-memory store."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lifecycle.domain.events import Source
from lifecycle.domain.fingerprint import Listed, ListItem
from lifecycle.domain.history import ChangeKind
from lifecycle.domain.model import ChangeTimes, Status, Subscription
from lifecycle.domain.reconcile import COMPARED, FindingKind, Remedy
from lifecycle.domain.reconcile_runs import RunRecord, RunStatus
from lifecycle.domain.records import Commit, Snapshot
from lifecycle.errors import MarketplaceUnavailable
from lifecycle.parsing import parse_subscription
from lifecycle.sandbox import ManualClock
from lifecycle.sandbox.marketplace import Marketplace
from lifecycle.services.reconcile import LEASE_NAME, LEASE_TTL, ReconcileProgress, ReconcileService, RunInProgress
from tests.fakes.marketplace import InProcessMarketplaceApi
from tests.fakes.store import FakeSubscriptionStore


class RecordingProduct:
    def __init__(self, fail: bool = False) -> None:
        self.told: list[tuple[ChangeKind, str]] = []
        self.fail = fail

    def notify(self, change: ChangeKind, subscription: Subscription, *, operation_id: str) -> None:
        if self.fail:
            raise ConnectionError("product down")
        self.told.append((change, subscription.id))


class World:
    def __init__(self, **service: Any) -> None:
        self.clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
        self.marketplace = Marketplace(auto_accept_seconds=None, page_size=7, clock=self.clock)
        self.api = InProcessMarketplaceApi(self.marketplace)
        self.store = FakeSubscriptionStore()
        self.product = RecordingProduct()
        self.service = ReconcileService(self.store, self.api, self.clock, product=self.product, **service)

    def purchase(self, *, known: bool = True, activated: bool = True, plan: str = "team") -> str:
        subscription, _ = self.marketplace.purchase("contoso-seats", plan, 5, activated=activated)
        if known:
            self.store.commit(Commit(subscription=self.truth(subscription["id"]), expected=None))
        return str(subscription["id"])

    def truth(self, subscription_id: str) -> Subscription:
        return parse_subscription(self.marketplace.get(subscription_id))

    def ours(self, subscription_id: str) -> Subscription:
        snapshot = self.store.load(subscription_id)
        assert snapshot is not None
        return snapshot.subscription

    def keep(self, subscription: Subscription) -> None:
        """Overwrite our state with `subscription` (drift made on our side)."""
        snapshot = self.store.load(subscription.id)
        self.store.commit(Commit(subscription=subscription, expected=snapshot))

    def accept(self, subscription_id: str) -> None:
        """Let a pending change at the marketplace succeed without us hearing of it."""
        for operation in self.marketplace.operations(subscription_id):
            self.marketplace.patch_operation(subscription_id, operation["id"], "Success")

    def kinds(self, run: RunRecord) -> dict[FindingKind, int]:
        return dict(run.counts)


def same(ours: Subscription, theirs: Subscription) -> bool:
    return all(getattr(ours, name) == getattr(theirs, name) for name in COMPARED)


@pytest.fixture
def world() -> World:
    return World()


def drifted(world: World) -> dict[str, str]:
    """One subscription per safe drift class, plus one we never heard of."""
    ids = {name: world.purchase() for name in ("plan", "quantity", "status", "auto_renew", "agrees")}
    world.marketplace.change_plan(ids["plan"], "business", deliver=False)
    world.marketplace.change_quantity(ids["quantity"], 9, deliver=False)
    world.accept(ids["plan"])
    world.accept(ids["quantity"])
    world.marketplace.suspend(ids["status"], deliver=False)
    world.keep(replace(world.ours(ids["auto_renew"]), auto_renew=False))
    ids["unknown"] = world.purchase(known=False)
    return ids


def test_nothing_anywhere_is_a_quiet_successful_run(world: World) -> None:
    run = world.service.run()
    assert (run.status, run.pages, run.listed, run.known, dict(run.counts)) == (RunStatus.SUCCEEDED, 0, 0, 0, {})
    assert world.store.runs() == [run]


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(world: World) -> None:
    ids = drifted(world)
    before = {sid: world.store.load(sid) for sid in ids.values()}
    commits = world.store.commits

    run = world.service.run(dry_run=True)

    assert (run.dry_run, run.status, run.repaired) == (True, RunStatus.SUCCEEDED, 0)
    assert world.store.commits == commits
    assert {sid: world.store.load(sid) for sid in ids.values()} == before
    assert world.product.told == []
    remedies = {(f.subscription_id, f.kind): f.remedy for f in run.sample}
    assert remedies == {
        (ids["plan"], FindingKind.PLAN): Remedy.REPAIR,
        (ids["quantity"], FindingKind.QUANTITY): Remedy.REPAIR,
        (ids["status"], FindingKind.STATUS): Remedy.REPAIR,
        (ids["auto_renew"], FindingKind.AUTO_RENEW): Remedy.REPAIR,
        (ids["unknown"], FindingKind.MISSING_LOCALLY): Remedy.ADOPT,
    }
    assert world.store.runs()[0] == run


def test_a_real_run_repairs_safe_drift_from_the_truth_then_finds_nothing(world: World) -> None:
    ids = drifted(world)

    run = world.service.run()

    assert (run.repaired, run.errors) == (5, 0)
    for sid in ids.values():
        assert same(world.ours(sid), world.truth(sid))
    [entry] = world.store.history(ids["plan"])
    assert (entry.source, entry.operation_id) == (Source.RECONCILIATION, f"reconcile:{run.run_id}")
    assert sorted(world.product.told) == sorted((ChangeKind.RESYNCED, ids[n]) for n in
                                                ("plan", "quantity", "status", "auto_renew", "unknown"))
    again = world.service.run()
    assert (dict(again.counts), again.repaired, again.known) == ({}, 0, 6)


def test_every_page_is_compared_whatever_the_page_size(world: World) -> None:
    for _ in range(23):  # pages of 7: 7, 7, 7, 2
        world.purchase()
    run = world.service.run()
    assert (run.pages, run.listed, run.known) == (4, 23, 23)
    assert dict(run.counts) == {}


def test_an_impossible_status_is_reported_and_left_alone(world: World) -> None:
    sid = world.purchase()
    ours = replace(world.ours(sid), status=Status.UNSUBSCRIBED, plan_id="business")
    world.keep(ours)
    run = world.service.run()
    assert {(f.kind, f.remedy) for f in run.sample} == {(FindingKind.STATUS, Remedy.REPORT),
                                                         (FindingKind.PLAN, Remedy.REPORT)}
    assert world.ours(sid) == ours
    assert run.repaired == 0


def test_one_we_know_and_the_marketplace_does_not_is_reported_not_deleted(world: World) -> None:
    ghost = replace(world.truth(world.purchase(known=False)), id="ghost-" + world.purchase())
    world.store.commit(Commit(subscription=ghost, expected=None))
    run = world.service.run()
    [finding] = [f for f in run.sample if f.subscription_id == ghost.id]
    assert (finding.kind, finding.remedy, finding.detail) == (FindingKind.ABSENT_REMOTELY, Remedy.REPORT,
                                                              "the marketplace does not know it")
    assert world.ours(ghost.id) == ghost


def test_one_the_list_missed_but_the_api_knows_is_judged_not_reported_absent(world: World) -> None:
    sid = world.purchase()
    world.marketplace.suspend(sid, deliver=False)
    api = _Hiding(world.api, sid)  # as if bought while we were paging past its place
    service = ReconcileService(world.store, api, world.clock)
    run = service.run()
    assert dict(run.counts) == {FindingKind.STATUS: 1}
    assert world.ours(sid).status is Status.SUSPENDED


def test_tombstoned_subscriptions_are_neither_adopted_nor_reported(world: World) -> None:
    deleted = world.purchase(known=False)  # a test purchase we deleted on purpose
    ghost = replace(world.truth(world.purchase(known=False)), id="gone-test-purchase")
    world.store.commit(Commit(subscription=ghost, expected=None))
    world.service.tombstone(deleted, "test purchase")
    world.service.tombstone(ghost.id, "test purchase")
    run = world.service.run()
    assert (run.skipped, run.counts.get(FindingKind.ABSENT_REMOTELY), world.store.load(deleted)) == (2, None, None)
    world.service.untombstone(deleted)
    assert world.service.run().counts[FindingKind.MISSING_LOCALLY] >= 1
    assert [t.subscription_id for t in world.service.tombstones()] == [ghost.id]


def test_a_purchase_pending_past_the_age_is_reported_stuck(world: World) -> None:
    sid = world.purchase(activated=False)
    young = world.purchase(activated=False)
    world.keep(replace(world.ours(sid), changed_at=ChangeTimes(status=world.clock.now() - timedelta(hours=30))))
    world.keep(replace(world.ours(young), changed_at=ChangeTimes(status=world.clock.now() - timedelta(hours=1))))
    run = world.service.run()
    assert [(f.subscription_id, f.kind) for f in run.sample] == [(sid, FindingKind.STUCK_PENDING)]


def test_a_pending_purchase_we_adopt_is_stuck_only_after_the_age(world: World) -> None:
    sid = world.purchase(activated=False, known=False)
    assert dict(world.service.run().counts) == {FindingKind.MISSING_LOCALLY: 1}
    world.clock.advance(25 * 3600)
    assert [(f.subscription_id, f.kind) for f in world.service.run().sample] == [(sid, FindingKind.STUCK_PENDING)]


def test_outstanding_operations_are_asked_for_drifted_subscriptions_only_by_default(world: World) -> None:
    quiet, moved = world.purchase(), world.purchase()
    world.marketplace.change_quantity(quiet, 8, deliver=False)  # pending, nothing drifted yet
    world.marketplace.suspend(moved, deliver=False)
    world.marketplace.reinstate(moved, deliver=False)  # drifted, with a Reinstate pending
    run = world.service.run()
    asked = [args[0] for name, args in world.api.calls if name == "list_operations"]
    assert asked == [moved]
    assert [(f.subscription_id, f.detail.split()[0]) for f in run.sample
            if f.kind is FindingKind.OUTSTANDING_OPERATION] == [(moved, "Reinstate")]


def test_with_active_scope_every_active_subscription_is_asked(world: World) -> None:
    service = ReconcileService(world.store, world.api, world.clock, all_operations=True)
    quiet = world.purchase()
    world.purchase(activated=False)  # pending: nothing to answer there
    world.marketplace.change_quantity(quiet, 8, deliver=False)
    run = service.run()
    assert [name for name, _ in world.api.calls].count("list_operations") == 1
    [finding] = run.sample
    assert (finding.subscription_id, finding.kind, finding.theirs) == (quiet, FindingKind.OUTSTANDING_OPERATION,
                                                                       "InProgress")


def test_a_conflict_with_a_concurrent_webhook_reads_again_and_repairs(world: World) -> None:
    sid = world.purchase()
    world.marketplace.suspend(sid, deliver=False)
    world.store.conflict_on_next_commit()
    run = world.service.run()
    assert (run.repaired, run.errors) == (1, 0)
    assert world.ours(sid).status is Status.SUSPENDED
    assert ("get_subscription", (sid,)) in world.api.calls  # the second pass asked for the latest truth


def test_a_newer_change_a_webhook_applied_meanwhile_is_not_undone(world: World) -> None:
    sid = world.purchase()
    world.marketplace.change_quantity(sid, 9, deliver=False)
    world.accept(sid)  # we missed this one: quantity 9 is drift

    def webhook_meanwhile() -> None:
        # After the page was read, the customer changes again and our processor applies it.
        world.marketplace.change_quantity(sid, 10, deliver=False)
        world.accept(sid)
        world.keep(world.truth(sid))

    world.store = _LoadHook(world.store, sid, webhook_meanwhile)  # type: ignore[assignment]
    run = ReconcileService(world.store, world.api, world.clock).run()
    assert world.ours(sid).quantity == 10
    assert (run.repaired, dict(run.counts)) == (0, {})


def test_a_change_we_applied_minutes_ago_is_not_reverted_by_a_list_that_lags_it(world: World) -> None:
    sid = world.purchase()
    # Our processor applied and acknowledged a plan change a minute ago; the list still shows the old plan.
    applied_at = world.clock.now() - timedelta(minutes=1)
    world.keep(replace(world.ours(sid), plan_id="business", changed_at=ChangeTimes(plan=applied_at)))

    run = world.service.run()

    waiting = [f for f in run.sample if f.subscription_id == sid]
    assert [(f.kind, f.remedy) for f in waiting] == [(FindingKind.PLAN, Remedy.WAIT)]
    assert (run.repaired, world.ours(sid).plan_id, world.product.told) == (0, "business", [])

    # Still different once the window has passed: the list is the truth, and the next run takes it.
    world.clock.advance(6 * 60)
    later = world.service.run()
    assert [(f.kind, f.remedy) for f in later.sample] == [(FindingKind.PLAN, Remedy.REPAIR)]
    assert (later.repaired, world.ours(sid).plan_id) == (1, "team")


def test_one_we_adopt_while_a_webhook_creates_it_is_judged_again_on_the_newer_truth(world: World) -> None:
    sid = world.purchase(known=False)

    def webhook_meanwhile() -> None:
        world.marketplace.suspend(sid, deliver=False)  # and our processor learns it first
        world.store.commit(Commit(subscription=world.truth(sid), expected=None))

    world.store = _CommitHook(world.store, sid, webhook_meanwhile)  # type: ignore[assignment]
    run = ReconcileService(world.store, world.api, world.clock).run()
    assert (run.repaired, run.errors, dict(run.counts)) == (0, 0, {})
    assert world.ours(sid).status is Status.SUSPENDED
    assert world.store.history(sid) == []


def test_a_page_failing_after_the_clients_retries_is_retried_and_the_run_goes_on(world: World) -> None:
    ids = [world.purchase(known=False) for _ in range(20)]
    api = _ListFault(world.api, page=2, times=2)
    run = ReconcileService(world.store, api, world.clock).run()
    assert api.failed == 2
    assert run.status is RunStatus.SUCCEEDED
    assert (run.pages, run.listed, run.repaired, run.counts[FindingKind.MISSING_LOCALLY]) == (3, 20, 20, 20)
    assert all(same(world.ours(sid), world.truth(sid)) for sid in ids)


def test_a_subscription_the_list_spells_oddly_is_reported_and_the_run_goes_on() -> None:
    world = World()
    odd, drifted = world.purchase(), world.purchase()
    world.keep(replace(world.ours(drifted), quantity=9))
    world.marketplace._subscriptions[odd]["saasSubscriptionStatus"] = "Migrating"  # a status this code lacks

    run = world.service.run()

    assert run.status is RunStatus.SUCCEEDED
    assert (run.listed, run.errors, run.repaired) == (2, 1, 1)
    assert run.problems == (f"{odd}: unreadable in the list: saasSubscriptionStatus 'Migrating' is not a known status",)
    assert FindingKind.ABSENT_REMOTELY not in run.counts  # listed, oddly: not taken for absent
    assert world.ours(drifted).quantity == 5


def test_many_subscriptions_the_list_spells_oddly_do_not_fail_the_run_as_an_outage() -> None:
    # Unlike a failing call, an odd item says nothing of the API's health: no streak towards giving up.
    world = World()
    ids = [world.purchase() for _ in range(60)]
    for sid in ids[::2]:
        world.marketplace._subscriptions[sid]["saasSubscriptionStatus"] = "Migrating"

    run = world.service.run()

    assert run.status is RunStatus.SUCCEEDED
    assert (run.listed, run.errors, len(run.problems)) == (60, 30, 20)  # the first 20 problems are kept


def test_a_page_that_keeps_failing_fails_the_run_and_keeps_what_it_repaired(world: World) -> None:
    ids = [world.purchase(known=False) for _ in range(20)]  # pages of 7: the third never comes
    run = ReconcileService(world.store, _ListFault(world.api, page=3, times=100), world.clock).run()
    assert run.status is RunStatus.FAILED
    assert "MarketplaceUnavailable" in run.error
    assert run.pages == 2
    assert world.store.runs() == [run]
    # Each repair made before the failure is whole, and the record counts every one of them.
    stored = [sid for sid in ids if world.store.load(sid) is not None]
    assert run.repaired == len(stored) == 14  # the two pages that came, 7 each
    assert all(world.store.history(sid) for sid in stored)
    assert world.store.acquire_lease(LEASE_NAME, "next run", now=world.clock.now(), ttl=timedelta(minutes=1))


def test_a_run_refuses_to_start_while_another_holds_the_lease(world: World) -> None:
    assert world.store.acquire_lease(LEASE_NAME, "other", now=world.clock.now(), ttl=timedelta(minutes=10))
    with pytest.raises(RunInProgress):
        world.service.run()
    assert world.store.runs() == []
    assert world.service.run(dry_run=True).status is RunStatus.SUCCEEDED  # a dry run changes nothing: allowed


def test_a_run_that_lost_its_lease_stops_as_failed(world: World) -> None:
    for _ in range(15):
        world.purchase()

    def stall_and_lose_it(progress: ReconcileProgress) -> None:
        if progress.phase == "listing" and progress.pages == 1:
            world.clock.advance(LEASE_TTL.total_seconds() + 60)  # stalled past the lease's life; another took over
            world.store.acquire_lease(LEASE_NAME, "other", now=world.clock.now(), ttl=timedelta(minutes=10))

    run = world.service.run(progress=stall_and_lose_it)
    assert (run.status, run.error.split(":")[0], run.pages) == (RunStatus.FAILED, "LeaseLost", 1)


def test_a_run_past_its_budget_stops_between_pages_recorded_failed_with_what_it_did(world: World) -> None:
    for _ in range(15):  # three pages of 7
        world.purchase()

    def slow(progress: ReconcileProgress) -> None:
        if progress.phase == "listing":
            world.clock.advance(10 * 60)

    run = world.service.run(progress=slow, budget=timedelta(minutes=15))

    assert (run.status, run.error.split(":")[0], run.pages) == (RunStatus.FAILED, "OutOfTime", 2)
    assert world.store.runs()[0] == run
    assert world.store.acquire_lease(LEASE_NAME, "next run", now=world.clock.now(), ttl=LEASE_TTL)  # released


def test_a_long_run_renews_its_lease(world: World) -> None:
    for _ in range(15):
        world.purchase()

    def slow(progress: ReconcileProgress) -> None:
        if progress.phase == "listing":
            world.clock.advance(LEASE_TTL.total_seconds() * 0.4)  # three pages outlive an unrenewed lease

    assert world.service.run(progress=slow).status is RunStatus.SUCCEEDED


def test_storage_failing_for_one_subscription_is_a_problem_not_a_failure(world: World) -> None:
    first, second = world.purchase(), world.purchase()
    for sid in (first, second):
        world.marketplace.suspend(sid, deliver=False)

    def fail_once(progress: ReconcileProgress) -> None:
        if progress.phase == "index":
            world.store.fail_next_calls(1)  # the first subscription's load

    run = world.service.run(progress=fail_once)
    assert (run.status, run.errors, run.repaired) == (RunStatus.SUCCEEDED, 1, 1)
    assert "StorageUnavailable" in run.problems[0]


def test_failure_after_failure_stops_the_run(world: World) -> None:
    for _ in range(30):
        world.purchase(known=False)

    def storage_down(progress: ReconcileProgress) -> None:
        if progress.phase == "index":
            world.store.fail_next_calls(10_000)

    run = world.service.run(progress=storage_down)
    assert run.status is RunStatus.FAILED
    assert run.error.startswith("TooManyProblems")


def test_the_products_outage_does_not_stop_repairs_and_is_recorded_on_the_run(world: World) -> None:
    world.product.fail = True
    sid = world.purchase(known=False)
    run = world.service.run()
    assert run.repaired == 1
    assert world.store.load(sid) is not None
    assert run.problems == (f"{sid}: repaired, but the product was not told (ConnectionError)",)


def test_progress_reports_each_phase_and_every_finding_once(world: World) -> None:
    ids = drifted(world)
    seen: list[ReconcileProgress] = []
    world.service.run(dry_run=True, progress=seen.append)
    phases = [p.phase for p in seen]
    assert (phases.count("index"), phases[-1]) == (1, "done")
    found = [f.subscription_id for p in seen for f in p.findings]
    assert sorted(found) == sorted(ids[n] for n in ("plan", "quantity", "status", "auto_renew", "unknown"))


def test_only_the_suspects_of_the_list_are_parsed_whole(world: World) -> None:
    ids = drifted(world)
    for _ in range(10):
        world.purchase()
    api = _CountingParses(world.api)

    ReconcileService(world.store, api, world.clock).run(dry_run=True)

    assert sorted(api.parsed) == sorted(sid for name, sid in ids.items() if name != "agrees")


def test_runs_are_listed_newest_first(world: World) -> None:
    first = world.service.run(dry_run=True)
    world.clock.advance(60)
    second = world.service.run()
    assert [r.run_id for r in world.service.runs(5)] == [second.run_id, first.run_id]


class _ListFault:
    """The API, its list failing at `page` (after the client's own retries) `times` times in a row."""

    def __init__(self, api: InProcessMarketplaceApi, *, page: int, times: int) -> None:
        self._api, self._page, self._times = api, page, times
        self.failed = 0

    def list_subscriptions(self) -> Iterator[list[ListItem]]:
        for number, page in enumerate(self._api.list_subscriptions(), 1):
            if number == self._page and self.failed < self._times:
                self.failed += 1
                raise MarketplaceUnavailable("GET /api/saas/subscriptions failed after 3 attempts", status=503)
            yield page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class _Hiding:
    """The API, with one subscription left out of the list (get still finds it)."""

    def __init__(self, api: InProcessMarketplaceApi, hidden: str) -> None:
        self._api, self._hidden = api, hidden

    def list_subscriptions(self) -> Iterator[list[ListItem]]:
        for page in self._api.list_subscriptions():
            yield [s for s in page if s.id != self._hidden]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class _CountingParses:
    """The API, recording which listed subscriptions were parsed whole."""

    def __init__(self, api: InProcessMarketplaceApi) -> None:
        self._api = api
        self.parsed: list[str] = []

    def list_subscriptions(self) -> Iterator[list[ListItem]]:
        for page in self._api.list_subscriptions():
            yield [replace(item, parse=functools.partial(self._parse, item)) if isinstance(item, Listed) else item
                   for item in page]

    def _parse(self, item: Listed) -> Subscription:
        self.parsed.append(item.id)
        return item.parse()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


class _CommitHook:
    """The store, running `hook` once just before the first commit of `subscription_id`."""

    def __init__(self, store: FakeSubscriptionStore, subscription_id: str, hook: Any) -> None:
        self._store, self._id, self._hook = store, subscription_id, hook

    def commit(self, commit: Commit) -> Snapshot:
        if commit.subscription.id == self._id and self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        return self._store.commit(commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _LoadHook:
    """The store, running `hook` once just before `subscription_id` is first loaded."""

    def __init__(self, store: FakeSubscriptionStore, subscription_id: str, hook: Any) -> None:
        self._store, self._id, self._hook = store, subscription_id, hook

    def load(self, subscription_id: str) -> Snapshot | None:
        if subscription_id == self._id and self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        return self._store.load(subscription_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
