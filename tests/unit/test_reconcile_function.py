"""The reconcile timer function, called with a TimerRequest from azure.functions' own converter; its settings."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TypedDict

import pytest
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

from functions import reconcile
from lifecycle import bootstrap
from lifecycle.domain.reconcile_runs import RunStatus
from lifecycle.services.reconcile import LEASE_NAME
from lifecycle.services.reconcile_repair import SETTLE, SKEW_ALLOWANCE
from lifecycle.settings import ReconcileOperations, Settings, SettingsError
from tests.functions import Stack, stack, user_function

ROOT = Path(__file__).resolve().parents[2]

run_reconcile = user_function(reconcile.bp, "reconcile")
class Route(TypedDict):
    method: str
    path: str


LIST: Route = {"method": "GET", "path": "/api/saas/subscriptions"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Stack:
    built = stack()
    monkeypatch.setattr(bootstrap, "worker", lambda: built.worker)
    return built


def tick(past_due: bool = False) -> object:
    """A timer invocation as the host describes it."""
    body = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": {"Last": "2026-03-01T12:00:00+00:00"},
            "IsPastDue": past_due}
    return TimerRequestConverter.decode(meta.Datum(json.dumps(body), "json"), trigger_metadata={})


def test_a_tick_runs_a_recorded_reconciliation(env: Stack) -> None:
    subscription, _ = env.marketplace.purchase("contoso-seats", "team", 5, activated=True)

    assert run_reconcile(tick()) is None

    [run] = env.store.runs()
    assert (run.status, run.dry_run, run.repaired) == (RunStatus.SUCCEEDED, False, 1)
    assert env.store.load(subscription["id"]) is not None


def test_a_failed_run_raises_so_the_host_retries_it(env: Stack) -> None:
    env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    env.marketplace.inject(status=503, times=1000, **LIST)
    with pytest.raises(reconcile.ReconcileFailed, match="MarketplaceUnavailable"):
        run_reconcile(tick())
    assert env.store.runs()[0].status is RunStatus.FAILED


def test_a_run_out_of_time_is_recorded_failed_and_not_retried(env: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    env.marketplace.purchase("contoso-seats", "team", 5, activated=True)
    monkeypatch.setattr(reconcile, "RUN_BUDGET", timedelta(seconds=-1))  # spent before the first page ends

    assert run_reconcile(tick()) is None  # a retry would start over and run out of time again

    [run] = env.store.runs()
    assert (run.status, run.error.split(":")[0]) == (RunStatus.FAILED, "OutOfTime")


def test_the_run_budget_ends_before_the_hosts_timeout() -> None:
    hours, minutes, seconds = (int(part) for part in json.loads((ROOT / "host.json").read_text())[
        "functionTimeout"].split(":"))
    timeout = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    assert timedelta(minutes=1) <= timeout - reconcile.RUN_BUDGET <= timedelta(minutes=5)


def test_a_tick_while_another_run_holds_the_lease_does_nothing_and_succeeds(env: Stack) -> None:
    env.store.acquire_lease(LEASE_NAME, "cli run", now=env.worker.clock.now(), ttl=timedelta(minutes=10))
    assert run_reconcile(tick(past_due=True)) is None
    assert env.store.runs() == []


def test_reconcile_settings_have_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.reconcile_schedule, settings.reconcile_stuck_after_hours) == ("0 */30 * * * *", 24.0)
    assert settings.reconcile_check_operations is ReconcileOperations.DRIFTED
    # No longer than the skew a repair stamps back by, or a run's repairs would make the next run wait.
    assert timedelta(seconds=settings.reconcile_settle_seconds) == SETTLE == SKEW_ALLOWANCE


def test_reconcile_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"RECONCILE_SCHEDULE": "0 0 * * * *", "RECONCILE_STUCK_AFTER_HOURS": "6.5",
                                  "RECONCILE_CHECK_OPERATIONS": "Active"})
    assert (settings.reconcile_schedule, settings.reconcile_stuck_after_hours) == ("0 0 * * * *", 6.5)
    assert settings.reconcile_check_operations is ReconcileOperations.ACTIVE


@pytest.mark.parametrize(("name", "value"), [
    ("RECONCILE_CHECK_OPERATIONS", "all"), ("RECONCILE_STUCK_AFTER_HOURS", "-1"),
    ("RECONCILE_STUCK_AFTER_HOURS", "a day"),
])
def test_malformed_reconcile_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
