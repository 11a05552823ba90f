"""Processing throughput: our path against the bare I/O it needs, in one run.

2,000 events over 200 subscriptions (10 each: quantity and plan changes that we
acknowledge, suspend, reinstate, renew) against Azurite and the sandbox over loopback.
The baseline does the same I/O per event without our logic: two point reads (delivery
record, state), GET operation, PATCH when the operation is pending, GET subscription for
Renew, one index row upsert when the event changes an indexed value (a plan or a status:
the write the ops index needs before the commit), and one entity group transaction (state
+ history + delivery). Ours and the
baseline work on separate subscriptions and alternate in rounds of 200 events, so both
see the same machine. CPU is the processing thread's own time (`time.thread_time`):
the sandbox serves from other threads.

Goals: our events/s >= 0.8 x the baseline's; our own CPU per event (ours - baseline) < 1 ms.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from bench.report import write
from lifecycle.bootstrap import build
from lifecycle.domain.events import Action, Source
from lifecycle.domain.history import FieldChange, HistoryEntry, Outcome
from lifecycle.domain.records import Commit, DeliveryRecord, DeliveryStatus
from lifecycle.local.azurite import Azurite, find_executable
from lifecycle.logs import configure
from lifecycle.marketplace.auth import MsalTokenProvider
from lifecycle.parsing import load_json, parse_subscription, parse_webhook
from lifecycle.sandbox import Sandbox
from lifecycle.settings import Settings
from lifecycle.store import codec, keys, table_service

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTIONS = 200
CYCLE: list[tuple[str, Any]] = [
    ("change_quantity", 6), ("change_plan", "business"), ("change_quantity", 7), ("suspend", None),
    ("reinstate", None), ("change_quantity", 8), ("renew", None), ("change_plan", "team"),
    ("change_quantity", 9), ("suspend", None),
]
API = "api-version=2018-08-31"
INDEXED_ACTIONS = frozenset({"ChangePlan", "Suspend", "Reinstate", "Unsubscribe"})  # a plan or a status moves


def run(subscriptions: int = SUBSCRIPTIONS) -> dict[str, Any]:
    configure("INFO", json=True, stream=io.StringIO())  # log as in production, to nowhere
    with Azurite(find_executable(ROOT)) as azurite, Sandbox(auto_accept_seconds=None) as sandbox:
        prefix = "bench" + uuid.uuid4().hex[:8]
        env = sandbox.settings_env() | {"STORAGE_CONNECTION_STRING": azurite.connection_string,
                                        "TABLE_PREFIX": prefix, "LOCAL_QUEUE_PATH": "/dev/null"}
        settings = Settings.from_env(env)
        worker = build(settings, queue=_NoQueue())
        ours_ids = _purchase(sandbox, subscriptions)
        base_ids = _purchase(sandbox, subscriptions)
        for sid in ours_ids:  # both sides start from a known subscription: the steady state
            worker.store.commit(Commit(subscription=parse_subscription(sandbox.marketplace.get(sid)), expected=None))
        baseline = _Baseline(azurite.connection_string, prefix, sandbox, MsalTokenProvider(settings).token())
        for sid in base_ids:
            baseline.seed(sid)

        def ours(operation: dict[str, Any]) -> None:
            # The body as the queue hands it over: parsing it is part of our path.
            worker.processing.process(parse_webhook(load_json(operation["payload"])))

        timing = {"ours": _Timing(), "baseline": _Timing()}
        for round_number, (action, argument) in enumerate(CYCLE):
            sides = [("ours", ours_ids, ours), ("baseline", base_ids, baseline.process)]
            if round_number % 2:
                sides.reverse()
            for name, ids, handle in sides:
                for sid in ids:
                    operation = _start(sandbox, sid, action, argument)
                    operation["payload"] = json.dumps(sandbox.marketplace.webhook_payload(operation["id"]))
                    timing[name].measure(handle, operation)
        baseline.close()
    return _report(timing, subscriptions)


class _NoQueue:
    def send(self, message: Any) -> None:
        raise AssertionError("processing never enqueues")


class _Timing:
    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu = 0.0

    def measure(self, handle: Callable[[dict[str, Any]], None], operation: dict[str, Any]) -> None:
        cpu, start = time.thread_time(), time.perf_counter()
        handle(operation)
        self.wall.append(time.perf_counter() - start)
        self.cpu += time.thread_time() - cpu

    @property
    def rate(self) -> float:
        return len(self.wall) / sum(self.wall)


def _purchase(sandbox: Sandbox, count: int) -> list[str]:
    return [str(sandbox.marketplace.purchase("contoso-seats", "team", 5, activated=True)[0]["id"])
            for _ in range(count)]


def _start(sandbox: Sandbox, sid: str, action: str, argument: Any) -> dict[str, Any]:
    method = getattr(sandbox.marketplace, action)
    operation: dict[str, Any] = method(sid, argument, deliver=False) if argument else method(sid, deliver=False)
    return operation


_AT = datetime(2026, 1, 1, tzinfo=UTC)
_HISTORY = codec.encode_history(HistoryEntry(
    subscription_id="s", operation_id="o", activity_id=str(uuid.uuid4()), action=Action.CHANGE_QUANTITY,
    source=Source.WEBHOOK, outcome=Outcome.APPLIED, recorded_at=_AT, event_time=_AT,
    changes=(FieldChange("quantity", "5", "6"),)), 1)
_DELIVERY = codec.encode_delivery(DeliveryRecord(
    subscription_id="s", operation_id="o", action="ChangeQuantity", status=DeliveryStatus.APPLIED,
    received_at=_AT, updated_at=_AT, activity_id=str(uuid.uuid4()), attempts=1, outcome="applied"))


class _Baseline:
    """The same I/O as one processed event, with none of our logic."""

    def __init__(self, connection_string: str, prefix: str, sandbox: Sandbox, token: str) -> None:
        self._service = table_service.from_connection_string(connection_string)  # built as our store's
        self._table = self._service.create_table_if_not_exists(f"{prefix}baseline")
        self._index = self._service.create_table_if_not_exists(f"{prefix}baselineindex")
        self._sandbox = sandbox
        self._http = httpx.Client(base_url=sandbox.api_url, headers={"authorization": f"Bearer {token}"})
        self._seq: dict[str, int] = {}

    def seed(self, sid: str) -> None:
        state = codec.encode_state(parse_subscription(self._sandbox.marketplace.get(sid)), 0)
        self._table.upsert_entity(state)
        self._seq[sid] = 0

    def process(self, operation: dict[str, Any]) -> None:
        sid, oid, action = operation["subscriptionId"], operation["id"], operation["action"]
        with contextlib.suppress(ResourceNotFoundError):
            self._table.get_entity(sid, keys.delivery_row(oid))
        state = self._table.get_entity(sid, keys.STATE_ROW)
        path = f"/saas/subscriptions/{sid}/operations/{oid}?{API}"
        self._http.get(path).raise_for_status()
        if action in ("ChangePlan", "ChangeQuantity", "Reinstate"):
            self._http.patch(path, json={"status": "Success"}).raise_for_status()
        if action == "Renew":
            self._http.get(f"/saas/subscriptions/{sid}?{API}").raise_for_status()
        self._seq[sid] += 1
        if action in INDEXED_ACTIONS:
            self._index.upsert_entity({"PartitionKey": f"status|{action}", "RowKey": sid, "SubscriptionId": sid,
                                       "Version": self._seq[sid]}, mode=UpdateMode.REPLACE)
        now = datetime.now(UTC)
        updated = dict(state) | {"LastOperationId": oid, "Version": self._seq[sid]}
        # Rows of the same shape and size as ours (the delivery row keeps the payload).
        history = _HISTORY | {"PartitionKey": sid, "RowKey": keys.history_row(self._seq[sid]), "Action": action,
                              "OperationId": oid, "RecordedAt": now}
        record = _DELIVERY | {"PartitionKey": sid, "RowKey": keys.delivery_row(oid), "Action": action,
                              "OperationId": oid, "UpdatedAt": now, "Payload": operation["payload"]}
        self._table.submit_transaction([
            ("update", updated, {"mode": UpdateMode.REPLACE, "etag": state.metadata["etag"],
                                 "match_condition": MatchConditions.IfNotModified}),
            ("create", history),
            ("upsert", record),
        ])

    def close(self) -> None:
        self._http.close()
        self._service.close()


def _report(timing: dict[str, _Timing], subscriptions: int) -> dict[str, Any]:
    ours, base = timing["ours"], timing["baseline"]
    events = len(ours.wall)
    ratio = ours.rate / base.rate
    own_cpu_ms = (ours.cpu - base.cpu) / events * 1000
    figures = {
        "events_per_side": events,
        "subscriptions_per_side": subscriptions,
        "ours_events_per_second": round(ours.rate, 1),
        "baseline_events_per_second": round(base.rate, 1),
        "throughput_ratio": round(ratio, 3),
        "ours_p50_ms": round(statistics.median(ours.wall) * 1000, 2),
        "baseline_p50_ms": round(statistics.median(base.wall) * 1000, 2),
        "ours_cpu_ms_per_event": round(ours.cpu / events * 1000, 3),
        "baseline_cpu_ms_per_event": round(base.cpu / events * 1000, 3),
        "own_cpu_ms_per_event": round(own_cpu_ms, 3),
    }
    write("processing", figures, [
        ("events (each side)", f"{events:,} over {subscriptions} subscriptions", ""),
        ("ours events/s", f"{ours.rate:,.1f}", ""),
        ("baseline events/s", f"{base.rate:,.1f}", ""),
        ("throughput ratio", f"{ratio:.2f}", ">= 0.80"),
        ("p50 per event ours / baseline", f"{figures['ours_p50_ms']} / {figures['baseline_p50_ms']} ms", ""),
        ("CPU per event ours / baseline", f"{figures['ours_cpu_ms_per_event']} / "
                                          f"{figures['baseline_cpu_ms_per_event']} ms", ""),
        ("our own CPU per event", f"{own_cpu_ms:.3f} ms", "< 1 ms"),
    ])
    return figures
