"""The local runtime's reconcile timer: what the Functions timer trigger does in Azure.

One thread sleeps until the schedule's next tick and runs one reconciliation. Another
run holding the lease (one started from the CLI) is a skip, not a failure; a failed run
is logged and the next tick tries again. `stop()` wakes the sleep at once, and a run in
progress stops at its next page: it is recorded as failed ("the stack stopped"), its
repairs so far were each one whole commit, and the lease is given back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from lifecycle.domain.reconcile_runs import RunRecord, RunStatus
from lifecycle.errors import LifecycleError, TransientError
from lifecycle.local.schedule import Schedule
from lifecycle.logs import get_logger
from lifecycle.services.reconcile import Progress, ReconcileProgress, RunInProgress

Run = Callable[[Progress], RunRecord]
"""One real reconciliation reporting to the given progress callback (bound `worker.reconcile.run`)."""


class StackStopping(TransientError):
    """Raised from a run's progress callback: the stack is stopping, the run ends at this page."""


class ReconcileTimer:
    """Runs `run` at every tick of `schedule` until stopped."""

    def __init__(self, schedule: Schedule, run: Run, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._schedule = schedule
        self._run = run
        self._now = now
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = get_logger("lifecycle.local.timer")

    def start(self) -> ReconcileTimer:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="reconcile-timer", daemon=True)
        self._thread.start()
        self._log.info("reconcile.timer_started", schedule=self._schedule.expression,
                       next=self._schedule.next_after(self._now()).isoformat())
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Wake the timer and end a run in progress at its next page; False if it outlasted `timeout`."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        finished = not self._thread.is_alive()
        self._thread = None
        return finished

    def tick(self) -> RunRecord | None:
        """One scheduled run now; its record, or None when it was skipped or could not start."""
        try:
            run = self._run(self._check_stopping)
        except RunInProgress:
            self._log.info("reconcile.skipped", reason="another run holds the lease")
            return None
        except LifecycleError as error:  # the lease row could not be read: storage is down
            self._log.error("reconcile.not_started", error_type=type(error).__name__, reason=str(error))
            return None
        except Exception:  # a bug: the service recorded the run; the timer lives on for the next tick
            self._log.exception("reconcile.crashed")
            return None
        level = self._log.info if run.status is RunStatus.SUCCEEDED else self._log.error
        level("reconcile.tick", run_id=run.run_id, status=run.status.value, repaired=run.repaired,
              findings=sum(run.counts.values()), error=run.error)
        return run

    def _loop(self) -> None:
        while True:
            due = self._schedule.next_after(self._now())
            if self._stopping.wait(max((due - self._now()).total_seconds(), 0.0)):
                return
            self.tick()

    def _check_stopping(self, progress: ReconcileProgress) -> None:
        if self._stopping.is_set() and progress.phase != "done":  # "done" comes after the run is recorded
            raise StackStopping("the stack stopped during the run")
