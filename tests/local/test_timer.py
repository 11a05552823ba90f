"""The local reconcile timer: runs on its schedule, skips while another run holds the lease, stops promptly."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from lifecycle.domain.reconcile_runs import RunRecord, RunStatus
from lifecycle.errors import StorageUnavailable
from lifecycle.local.schedule import Schedule
from lifecycle.local.timer import ReconcileTimer
from lifecycle.services.reconcile import Progress, ReconcileProgress, RunInProgress

EVERY_SECOND = Schedule.parse("* * * * * *")
NEW_YEAR = Schedule.parse("0 0 0 1 1 *")


def record(status: RunStatus = RunStatus.SUCCEEDED, error: str = "") -> RunRecord:
    return RunRecord(run_id="run-1", started_at=datetime.now(UTC), dry_run=False, status=status, error=error)


class Runs:
    """Stands in for `worker.reconcile.run`: answers each call with the next outcome, counts the calls."""

    def __init__(self, *outcomes: RunRecord | Exception) -> None:
        self._outcomes = list(outcomes)
        self.calls = 0
        self.all_done = threading.Event()

    def __call__(self, progress: Progress) -> RunRecord:
        self.calls += 1
        outcome = self._outcomes.pop(0) if self._outcomes else record()
        if not self._outcomes:
            self.all_done.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_each_tick_of_the_schedule_runs_a_reconciliation() -> None:
    runs = Runs(record(), record())
    timer = ReconcileTimer(EVERY_SECOND, runs).start()
    try:
        assert runs.all_done.wait(10)
    finally:
        assert timer.stop()
    assert runs.calls >= 2


def test_a_run_in_progress_elsewhere_is_a_skip_and_the_next_tick_runs_again() -> None:
    runs = Runs(RunInProgress("held"), record())
    with capture_logs() as logs:
        timer = ReconcileTimer(EVERY_SECOND, runs).start()
        try:
            assert runs.all_done.wait(10)
        finally:
            assert timer.stop()
    assert "reconcile.skipped" in [line["event"] for line in logs]


@pytest.mark.parametrize("outcome", [StorageUnavailable("down"), ValueError("a bug"),
                                     record(RunStatus.FAILED, "MarketplaceUnavailable: 503")])
def test_a_failing_run_is_logged_and_the_timer_lives_on(outcome: RunRecord | Exception) -> None:
    runs = Runs(outcome, record())
    timer = ReconcileTimer(NEW_YEAR, runs)
    with capture_logs() as logs:
        failed = timer.tick()
    if isinstance(outcome, Exception):
        assert failed is None  # the run raised: there is no record to return
    else:
        assert failed is not None
        assert failed.status is RunStatus.FAILED
    assert [line["log_level"] for line in logs] == ["error"]
    after = timer.tick()
    assert after is not None
    assert after.status is RunStatus.SUCCEEDED


def test_stop_wakes_a_timer_waiting_for_a_distant_tick() -> None:
    runs = Runs()
    timer = ReconcileTimer(NEW_YEAR, runs).start()
    assert timer.stop(timeout=5)
    assert runs.calls == 0


def test_stop_ends_a_run_in_progress_at_its_next_page() -> None:
    on_page = threading.Event()
    ended: list[BaseException] = []

    def paging(progress: Progress) -> RunRecord:
        on_page.set()
        while True:  # a run with endless pages: only the stop can end it
            try:
                progress(ReconcileProgress(run_id="run-1", phase="listing", pages=1, listed=0, known=0))
            except Exception as error:
                ended.append(error)
                return record(RunStatus.FAILED, f"{type(error).__name__}: {error}")
            threading.Event().wait(0.01)

    timer = ReconcileTimer(EVERY_SECOND, paging).start()
    assert on_page.wait(10)
    assert timer.stop(timeout=10)
    assert [type(error).__name__ for error in ended] == ["StackStopping"]
