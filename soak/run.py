"""One soak run: the truth here, the worker in processes we kill, the promise checked at the end.

    this process     Azurite (tables), the sandbox (the marketplace's truth, its clock sped
                     up `time_scale` times, its webhook sender), the traffic, the faults
    worker-http      `python -m soak.worker`: our webhook on a fixed port + processing loops
    worker-2..N      processing loops only, on the same queue file and tables

    1 purchase SUBSCRIPTIONS; then EVENTS random valid operations, each delivered with its
      dice-picked faults, API faults queued, and SIGKILLs at random events (restarted at once)
    2 settle: every delivery answered, late redeliveries past the duplicate window, the
      marketplace's own retries of anything never answered, every window passed, the
      queue drained
    3 stop the workers, run one reconciliation, check (soak.checks) and scan the logs
"""

from __future__ import annotations

import io
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lifecycle.bootstrap import build
from lifecycle.local.azurite import Azurite, find_executable, free_port
from lifecycle.local.queue import LocalQueue
from lifecycle.logs import configure
from lifecycle.sandbox import Sandbox, ScaledClock
from lifecycle.sandbox.control import Controls
from lifecycle.settings import Settings
from soak import checks, logscan
from soak.api_faults import ApiFaults
from soak.config import SoakConfig
from soak.deliveries import Deliveries
from soak.processes import ROOT, WorkerProcess, worker_env
from soak.traffic import Traffic

# The marketplace retries for eight hours; a worker restart takes a few seconds.
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 10.0)
Progress = Callable[[str], None]


@dataclass(slots=True)
class SoakResult:
    config: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


def run(config: SoakConfig, work_dir: Path, progress: Progress = print) -> SoakResult:
    work_dir.mkdir(parents=True, exist_ok=True)
    configure("INFO", json=True, stream=(work_dir / "harness.log").open("a"))
    result = SoakResult(config=asdict(config))
    started = time.monotonic()
    clock = ScaledClock(config.time_scale)
    port = free_port()
    with Azurite(find_executable(ROOT)) as azurite, Sandbox(
        f"http://127.0.0.1:{port}/api/marketplace/webhook", clock=clock, auto_accept_seconds=10.0,
        webhook_timeout=clock.wall_seconds(10.0), retry_delays=RETRY_DELAYS,
    ) as sandbox:
        settings = Settings.from_env(sandbox.settings_env() | {
            "STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": "soak" + uuid.uuid4().hex[:8],
            "LOCAL_QUEUE_PATH": str(work_dir / "queue.sqlite"),
            "WEBHOOK_ENQUEUE_DELAY_SECONDS": "0.5",
            "WEBHOOK_API_TIMEOUT_SECONDS": "1",
            "MARKETPLACE_API_TIMEOUT_SECONDS": f"{config.api_timeout_seconds:g}",
        })
        workers = _workers(config, settings, port, work_dir)
        try:
            for worker in workers:
                worker.start()
            figures = _play(config, sandbox, clock, workers, work_dir, progress)
        finally:
            for worker in workers:
                worker.stop()
        progress("reconciling and checking")
        _verify(config, sandbox, settings, workers, traffic_ids=figures.pop("_ids"),
                rejected=figures.pop("_rejected"), result=result)
        result.figures.update(figures)
    result.figures["seconds"] = round(time.monotonic() - started, 1)
    result.figures["violations"] = len(result.violations)
    result.logs = [str(log) for worker in workers for log in worker.logs]
    return result


def _workers(config: SoakConfig, settings: Settings, port: int, work_dir: Path) -> list[WorkerProcess]:
    env = worker_env(settings.to_env(secret=True))
    common = ["--loops", str(config.loops), "--lock-seconds", f"{config.lock_seconds:g}",
              "--dedup-seconds", f"{config.dedup_seconds:g}"]
    http = WorkerProcess("worker-http", ["--port", str(port), *common], env, work_dir,
                         health_url=f"http://127.0.0.1:{port}/api/health")
    others = [WorkerProcess(f"worker-{n}", ["--no-serve", *common], env, work_dir)
              for n in range(2, config.processors + 1)]
    return [http, *others]


def _play(config: SoakConfig, sandbox: Sandbox, clock: ScaledClock, workers: list[WorkerProcess],
          work_dir: Path, progress: Progress) -> dict[str, Any]:
    rng = random.Random(config.seed)
    market = sandbox.marketplace
    traffic = Traffic(market, Controls(market, sandbox.entra, sandbox.webhooks), rng, config.rates.rejected_change)
    deliveries = Deliveries(sandbox.webhooks, rng, config.rates, config.in_flight)
    faults = ApiFaults(market, rng, config.rates, api_timeout=config.api_timeout_seconds,
                       window_wall_seconds=clock.wall_seconds(10.0))
    traffic.purchase(config.subscriptions)
    kill_at = sorted(rng.sample(range(1, config.events), k=min(config.kill_count, config.events - 1)))
    made = idle = kills = 0
    began = time.monotonic()
    while made < config.events:
        operation = traffic.step()
        if operation is None:
            idle += 1
            if idle % len(traffic.subscription_ids) == 0:
                time.sleep(0.05)  # every subscription waits on a pending change: let time decide
            continue
        made += 1
        faults.roll()
        deliveries.send(str(operation["id"]))
        while kill_at and made >= kill_at[0]:
            kill_at.pop(0)
            victim = rng.choice(workers)
            victim.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 1.0))
            victim.start()
        if made % 1000 == 0 or made == config.events:
            progress(f"{made} events, {kills} kills, {time.monotonic() - began:.0f} s")
    figures = _settle(config, sandbox, deliveries, work_dir, progress)
    deliveries.close()
    figures.update(events=made, kills=kills, event_seconds=round(time.monotonic() - began, 1),
                   injected=dict(deliveries.injected + faults.hits()), api_faults_queued=dict(faults.queued),
                   rejected_on_purpose=len(traffic.rejected_on_purpose),
                   _ids=traffic.subscription_ids, _rejected=traffic.rejected_on_purpose)
    figures["injected"]["late_redelivery"] = len(deliveries.late)
    return figures


def _settle(config: SoakConfig, sandbox: Sandbox, deliveries: Deliveries, work_dir: Path,
            progress: Progress) -> dict[str, Any]:
    market = sandbox.marketplace
    deliveries.wait()
    unhit = market.faults.pending  # queued faults no call met before the traffic ended
    market.faults.clear()
    time.sleep(config.dedup_seconds + 0.5)  # the late ones arrive past the duplicate window
    for operation_id in deliveries.late:
        deliveries.again(operation_id)
    deliveries.wait()
    unanswered = [r.operation_id for r in market.records()
                  if not any(d.status is not None and d.status < 500 for d in r.deliveries)]
    for operation_id in unanswered:  # the marketplace's retries go on for hours
        deliveries.again(operation_id)
    deliveries.wait()
    progress("draining the queue")
    queue = LocalQueue(work_dir / "queue.sqlite")
    deadline = time.monotonic() + config.drain_timeout_seconds
    while time.monotonic() < deadline:
        market.settle()
        pending = sum(1 for r in market.records() if r.status in ("NotStarted", "InProgress"))
        if queue.depth() == 0 and pending == 0:
            break
        time.sleep(0.25)
    return {"api_faults_unhit": unhit, "redelivered_after_sender_gave_up": len(unanswered), "queue_left": queue.depth(),
            "dead_letters": len(queue.dead_letters())}


def _verify(config: SoakConfig, sandbox: Sandbox, settings: Settings, workers: list[WorkerProcess], *,
            traffic_ids: list[str], rejected: set[str], result: SoakResult) -> None:
    market = sandbox.marketplace
    configure("WARNING", json=True, stream=io.StringIO())
    # The sandbox's list is never behind its own changes, and its scaled clock stamps webhooks
    # ahead of ours: nothing should wait for a next run that the soak will not make.
    checker = build(replace(settings, reconcile_settle_seconds=0))
    run = checker.reconcile.run()
    result.figures["reconcile"] = {"status": run.status.value, "repaired": run.repaired,
                                   "findings": {kind.value: n for kind, n in run.counts.items()}}
    queue = LocalQueue(Path(settings.local_queue_path))
    dead = {letter.message.message_id: letter.reason for letter in queue.dead_letters()}
    verdict = checks.check(market, checker.store, traffic_ids, dead)
    result.violations += verdict.violations
    result.figures["checked"] = dict(verdict.figures)
    answers: Counter[str] = Counter()
    for record in market.records():
        answers.update(str(d.status) if d.status is not None else "no answer" for d in record.deliveries)
        refused = any(d.status is not None and 400 <= d.status < 500 for d in record.deliveries)
        if record.operation_id in rejected and any(p.status == "Success" for p in record.patches):
            result.violations.append(f"{record.operation_id}: a change above the plan's maximum acknowledged")
        elif record.operation_id not in rejected and (refused or any(p.status == "Failure" for p in record.patches)):
            # The marketplace's own checks passed it: the plan is in the catalog, the seats fit.
            result.violations.append(f"{record.subscription_id}/{record.operation_id} ({record.action}): "
                                     "a valid change refused")
    result.figures["webhook_answers"] = dict(sorted(answers.items()))
    secrets = [settings.client_secret]
    secrets += [str(market.get(sid)["beneficiary"]["emailId"]) for sid in traffic_ids]
    logs = [log for worker in workers for log in worker.logs]
    cut_short = {log for worker in workers for log in worker.killed_logs}
    scanned = logscan.scan(logs, cut_short=cut_short, secrets=secrets)
    result.violations += scanned.violations
    result.figures["log_lines"] = scanned.lines
    result.figures["etag_conflicts"] = scanned.events["processing.conflict_retry"]
    result.figures["abandoned"] = scanned.events["message.abandoned"]
    result.figures["rescheduled"] = scanned.events["message.rescheduled"]
    if left := queue.depth():
        result.violations.append(f"{left} messages still in the queue at the end")
