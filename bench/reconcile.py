"""Reconciliation at 10,000 and 100,000 subscriptions against a bare baseline, in one run.

Each size gets its own sandbox (served by this process) and table in one Azurite: every
subscription is in both, with 1% drift spread over six classes (missing here, quantity, plan,
status, autoRenew, known here only). Each measured phase runs in a fresh subprocess, and its
peak RSS is that process's own VmHWM (see `_phase` for why not ru_maxrss):

    baseline    the bare I/O: read every state row the way our store does (16 key ranges on 4
                threads, only the columns a scan reads), then page the API (httpx, JSON,
                @nextLink); nothing else
    ours_dry    `worker.reconcile.run(dry_run=True)`: domain values, comparison, no writes
    ours        `worker.reconcile.run()`: the same, and the 1% repaired (a read and a transaction each)
    pointreads  the design not taken: page the API, one point read per listed subscription

Baseline and ours alternate; the drift is laid again before each real run. Each phase's CPU
is split three ways: the phase's own process, Azurite's (its node process, from /proc), and
the sandbox's (this parent process, which serves the API and otherwise waits). On 2 CPUs the
three compete, so where a phase's extra wall time went shows there. Seeding uses one
request per row on 16 threads: an entity group transaction cannot span partitions, and each
subscription is its own partition. Azurite's own cost per point read and per transaction is
timed at each size, since our repairs are made of them.

Goals: ours <= 1.25 x the baseline's time; peak RSS < 300 MB; 10x the subscriptions <= 12x the time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.cpu import process_cpu
from bench.report import write
from lifecycle.domain.model import Status
from lifecycle.local.azurite import Azurite, find_executable
from lifecycle.parsing import parse_subscription
from lifecycle.sandbox import Sandbox
from lifecycle.store import codec, keys

ROOT = Path(__file__).resolve().parent.parent
SIZES, ROUNDS, POINT_READS_AT = (10_000, 100_000), 2, 10_000
KINDS = {"missing": "missing_locally", "quantity": "quantity_mismatch", "plan": "plan_mismatch",
         "status": "status_mismatch", "auto_renew": "auto_renew_mismatch", "absent": "absent_remotely"}
WRONG: dict[str, dict[str, str | int | bool]] = {
    "quantity": {"Quantity": 7}, "plan": {"PlanId": "business"}, "status": {"Status": Status.SUSPENDED.value},
    "auto_renew": {"AutoRenew": False},
}


def run(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with Azurite(find_executable(ROOT)) as azurite:
        for size in sizes:
            assert azurite.pid is not None
            figures[str(size)] = _measure(azurite.connection_string, size, azurite.pid)
    return _report(figures)


def _measure(connection: str, size: int, azurite_pid: int) -> dict[str, Any]:
    from azure.data.tables import TableServiceClient

    with Sandbox(auto_accept_seconds=None) as sandbox, TableServiceClient.from_connection_string(connection) as svc:
        prefix = "bench" + uuid.uuid4().hex[:8]
        table = svc.create_table_if_not_exists(f"{prefix}subscriptions")
        started = time.perf_counter()
        ids = [str(sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)[0]["id"])
               for _ in range(size)]
        rows = {sid: codec.encode_state(parse_subscription(sandbox.marketplace.get(sid)), 0) for sid in ids}
        # 1% in all: every 600th subscription per class, each class from its own offset.
        drift = {name: ids[n * 100 :: 100 * len(KINDS)] for n, name in enumerate(KINDS)}
        _lay(table, rows, drift, fresh=True)
        seeded = time.perf_counter() - started
        env = sandbox.settings_env() | {"STORAGE_CONNECTION_STRING": connection, "TABLE_PREFIX": prefix}
        phases: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours_dry": [], "ours": []}
        phases["ours_dry"].append(_child("ours_dry", env, azurite_pid))
        for round_number in range(ROUNDS):
            if round_number:
                _lay(table, rows, drift, fresh=False)
            for phase in ("baseline", "ours") if round_number % 2 == 0 else ("ours", "baseline"):
                phases[phase].append(_child(phase, env, azurite_pid))
        if size == POINT_READS_AT:
            phases["pointreads"] = [_child("pointreads", env, azurite_pid)]
        expected = {KINDS[name]: len(ids) for name, ids in drift.items()}
        for ours in phases["ours"] + phases["ours_dry"]:
            assert ours["counts"] == expected, (ours, expected)
            assert ours["errors"] == 0, ours
        return {"seed_s": round(seeded, 1), "drifted": sum(len(d) for d in drift.values()),
                "azurite_ms": _probe(table, ids[1::997][:40]), **phases}


def _lay(table: Any, rows: dict[str, dict[str, Any]], drift: dict[str, list[str]], *, fresh: bool) -> None:
    """Write every row (fresh) or only the drifted ones again, each drifted as its class says."""
    wrong = {sid: WRONG[name] for name in WRONG for sid in drift[name]}
    touched = set(rows) if fresh else {sid for name in ("missing", *WRONG) for sid in drift[name]}

    def lay(sid: str) -> None:
        if not fresh:  # a repair wrote a history row and a new version: start the partition over
            for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": sid}):
                table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        if sid in drift["missing"]:
            return
        row = {k: v for k, v in rows[sid].items() if v is not None} | wrong.get(sid, {})
        table.upsert_entity(row)
        if fresh and sid in drift["absent"]:  # and one the marketplace never sold: known here only
            table.upsert_entity(row | {"PartitionKey": "ours-only-" + sid})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lay, touched))


def _probe(table: Any, ids: list[str]) -> dict[str, float]:
    """Azurite's own latency, one call at a time: a point read, and a two-row transaction like a repair's."""
    reads, commits = [], []
    for sid in ids:
        started = time.perf_counter()
        state = table.get_entity(sid, keys.STATE_ROW)
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        table.submit_transaction([("upsert", dict(state)), ("upsert", {"PartitionKey": sid, "RowKey": "probe"})])
        commits.append(time.perf_counter() - started)
        table.delete_entity(sid, "probe")
    return {"point_read": round(statistics.median(reads) * 1000, 1),
            "transaction": round(statistics.median(commits) * 1000, 1)}


def _child(phase: str, env: dict[str, str], azurite_pid: int) -> dict[str, Any]:
    azurite_before, sandbox_before = process_cpu(azurite_pid), time.process_time()
    done = subprocess.run([sys.executable, "-m", "bench.reconcile", phase], input=json.dumps(env), cwd=ROOT,
                          capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"{phase} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # Around the whole child (start-up included): Azurite and the sandbox idle while it imports.
    result["azurite_cpu_s"] = round(process_cpu(azurite_pid) - azurite_before, 2)
    result["sandbox_cpu_s"] = round(time.process_time() - sandbox_before, 2)
    return result


# -- the measured phases, each in a process of its own -------------------------------------------


def _phase(phase: str, env: dict[str, str]) -> dict[str, Any]:
    from lifecycle.logs import configure
    from lifecycle.settings import Settings

    configure("INFO", json=True, stream=open(os.devnull, "w"))  # noqa: SIM115  # log as in production, to nowhere
    settings = Settings.from_env(env)
    work = {"baseline": _baseline, "ours": _ours, "ours_dry": _ours, "pointreads": _point_reads}[phase](settings, phase)
    start_rss = _status_mb("VmRSS")
    started, cpu_started = time.perf_counter(), time.process_time()
    result = work()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec, so
    # a child of this parent (which holds the whole sandbox) would report the parent's size.
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(_status_mb("VmHWM"), 1),
            "start_rss_mb": round(start_rss, 1), **result}


def _baseline(settings: Any, _: str) -> Any:
    import httpx

    from lifecycle.marketplace.auth import MsalTokenProvider

    tokens, table = MsalTokenProvider(settings), _table(settings)

    def shard(number: int) -> int:
        low, high = keys.shard_bounds(number, 16)
        query = " and ".join(["RowKey eq @row", *(["PartitionKey ge @low"] if low else []),
                              *(["PartitionKey lt @high"] if high else [])])
        found = table.query_entities(query, parameters={"row": "state", "low": low, "high": high},
                                     select=list(codec.SCAN_COLUMNS), results_per_page=1000)
        return sum(1 for _ in found)

    def work() -> dict[str, Any]:
        with ThreadPoolExecutor(4) as pool:  # the table first, then the API, as ours reads them
            rows = sum(pool.map(shard, range(16)))
        listed = sum(len(page) for page in _raw_pages(httpx, settings, tokens.token()))
        return {"listed": listed, "rows": rows}

    return work


def _raw_pages(httpx: Any, settings: Any, token: str) -> Any:
    with httpx.Client(headers={"authorization": f"Bearer {token}"}) as http:
        url: str | None = f"{settings.marketplace_api_url}/saas/subscriptions?api-version=2018-08-31"
        while url:
            response = http.get(url).raise_for_status()
            body = response.json() if response.content else {}  # an empty body when there is nothing
            yield body.get("subscriptions", [])
            url = body.get("@nextLink")


def _ours(settings: Any, phase: str) -> Any:
    from lifecycle.bootstrap import build

    worker = build(replace(settings, local_queue_path=""), queue=_NoQueue())

    def work() -> dict[str, Any]:
        run = worker.reconcile.run(dry_run=phase == "ours_dry")
        return {"status": run.status.value, "pages": run.pages, "listed": run.listed, "known": run.known,
                "repaired": run.repaired, "errors": run.errors, "error": run.error,
                "counts": {kind.value: count for kind, count in run.counts.items()}}

    return work


def _point_reads(settings: Any, _: str) -> Any:
    import httpx
    from azure.core.exceptions import ResourceNotFoundError

    from lifecycle.marketplace.auth import MsalTokenProvider

    tokens, table = MsalTokenProvider(settings), _table(settings)

    def read(sid: str) -> bool:
        try:
            table.get_entity(sid, "state")
            return True
        except ResourceNotFoundError:
            return False

    def work() -> dict[str, Any]:
        found = listed = 0
        with ThreadPoolExecutor(16) as pool:
            for page in _raw_pages(httpx, settings, tokens.token()):
                listed += len(page)
                found += sum(pool.map(read, [item["id"] for item in page]))
        return {"listed": listed, "found": found}

    return work


def _table(settings: Any) -> Any:
    from lifecycle.store import table_service  # the client built as our store builds it: only our work differs

    name = f"{settings.table_prefix}subscriptions"
    return table_service.from_connection_string(settings.storage_connection_string).get_table_client(name)


class _NoQueue:
    def send(self, message: Any) -> None:
        raise AssertionError("reconciliation never enqueues")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _report(figures: dict[str, Any]) -> dict[str, Any]:
    rows: list[tuple[str, str, str]] = []
    summary: dict[str, Any] = {}
    for size, measured in figures.items():
        runs = {phase: measured[phase] for phase in ("baseline", "ours_dry", "ours", "pointreads") if phase in measured}
        fastest = {phase: min(results, key=lambda p: float(p["wall_s"])) for phase, results in runs.items()}
        best = {phase: float(run["wall_s"]) for phase, run in fastest.items()}
        peak = {phase: max(p["peak_rss_mb"] for p in results) for phase, results in runs.items()}
        ratio, dry = best["ours"] / best["baseline"], best["ours_dry"] / best["baseline"]
        cpu = {phase: {"process": run["cpu_s"], "azurite": run["azurite_cpu_s"], "sandbox": run["sandbox_cpu_s"]}
               for phase, run in fastest.items()}
        summary[size] = {"seconds": best, "cpu_s": cpu, "peak_rss_mb": peak, "ratio": round(ratio, 3),
                         "dry_ratio": round(dry, 3), "azurite_ms": measured["azurite_ms"]}
        label, probe = f"{int(size):,}", measured["azurite_ms"]
        rows += [
            (f"{label}: ours / baseline",
             f"{best['ours']:.1f} s / {best['baseline']:.1f} s = {ratio:.2f}x", "<= 1.25x"),
            (f"{label}: ours dry run (no writes) / baseline", f"{best['ours_dry']:.1f} s = {dry:.2f}x", ""),
            (f"{label}: peak RSS ours / dry / baseline",
             f"{peak['ours']:.0f} / {peak['ours_dry']:.0f} / {peak['baseline']:.0f} MB", "< 300 MB"),
            (f"{label}: CPU s, process / Azurite / sandbox: ours", _cpu(fastest["ours"]), ""),
            (f"{label}:   dry run", _cpu(fastest["ours_dry"]), ""),
            (f"{label}:   baseline", _cpu(fastest["baseline"]), ""),
            (f"{label}: drifted, repaired", f"{measured['drifted']}, {measured['ours'][0]['repaired']}", ""),
            (f"{label}: Azurite point read / transaction", f"{probe['point_read']} / {probe['transaction']} ms", ""),
        ]
        if "pointreads" in best:
            rows.append((f"{label}: point reads instead (bare I/O)", f"{best['pointreads']:.1f} s", "(not taken)"))
    sizes = sorted(summary, key=int)
    if len(sizes) == 2:
        growth = {phase: summary[sizes[1]]["seconds"][phase] / summary[sizes[0]]["seconds"][phase]
                  for phase in ("ours", "baseline")}
        summary["growth_10x"] = {phase: round(value, 2) for phase, value in growth.items()}
        rows.append(("10x subscriptions: time ours / baseline", f"{growth['ours']:.1f}x / {growth['baseline']:.1f}x",
                     "<= 12x"))
    write("reconcile", {"summary": summary, "runs": figures}, rows)
    return summary


def _cpu(run: dict[str, Any]) -> str:
    return f"{run['cpu_s']:.1f} / {run['azurite_cpu_s']:.1f} / {run['sandbox_cpu_s']:.1f}"


if __name__ == "__main__":
    print(json.dumps(_phase(sys.argv[1], json.loads(sys.stdin.read()))))
