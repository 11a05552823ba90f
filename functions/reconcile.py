"""The reconcile timer: compare our table with the marketplace's list, repair safe drift, record a run."""

from __future__ import annotations

from datetime import timedelta

import azure.functions as func

from lifecycle import bootstrap
from lifecycle.domain.reconcile_runs import RunStatus
from lifecycle.logs import get_logger
from lifecycle.services.reconcile import OutOfTime, RunInProgress

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the library leaves its __init__ unannotated

RUN_BUDGET = timedelta(minutes=27)
"""host.json's functionTimeout (30 min) less room to record the run: a run the host kills
stays recorded as running, one that stops itself is recorded failed with what it did."""


# The schedule is an app setting (RECONCILE_SCHEDULE, "0 */30 * * * *" by default). use_monitor
# keeps schedule state in storage, so a tick missed during a restart still runs, and the host
# runs a timer function as a singleton across instances; the lease row additionally keeps a run
# started from the CLI from overlapping. A failed run raises, and the host retries it (a retry
# after the next tick is harmless: runs are idempotent).
@bp.retry(strategy="exponential_backoff", max_retry_count="3", minimum_interval="00:01:00",
          maximum_interval="00:10:00")
@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def reconcile(timer: func.TimerRequest) -> None:
    log = get_logger("lifecycle.reconcile")
    try:
        run = bootstrap.worker().reconcile.run(dry_run=False, budget=RUN_BUDGET)
    except RunInProgress:
        log.info("reconcile.skipped", reason="another run holds the lease", past_due=timer.past_due)
        return  # not a failure: the run that holds it does the work
    if run.status is RunStatus.FAILED and not OutOfTime.ended(run):
        raise ReconcileFailed(f"reconcile run {run.run_id} failed: {run.error}")
    # Out of time: a retry would start over and run out of time again; the run is recorded
    # failed (reconcile.finished at error level, which alerts) and the next tick tries again.


class ReconcileFailed(Exception):
    """Raised so that the host's retry policy runs the reconciliation again."""
