"""The operations book: pending changes, their acknowledgements and the 10-second rule.

Rules, as Microsoft applies them to an operation:

* ChangePlan, ChangeQuantity and Reinstate start InProgress. The publisher answers with
  PATCH Success (the change is applied) or Failure (nothing changes); a 4xx answer to a
  ChangePlan/ChangeQuantity webhook is a rejection too. Without an answer the change is
  auto-accepted `auto_accept_seconds` after the webhook went out (after creation if it
  never did).
* Renew, Suspend and Unsubscribe are notify-only: final at once; PATCHing them is 400.
* A PATCH on a final operation is 409 (a late Failure is thus ignored, as at Microsoft).

Deadlines are checked lazily, at the start of every marketplace call (`settle`), so a
test with a manual clock decides exactly when time has passed. Not thread-safe on its
own: the marketplace's lock guards every call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from lifecycle.sandbox.errors import SandboxError, bad_request, conflict, not_found
from lifecycle.sandbox.records import Decider, DeliveryAttempt, Entry, Json, OperationRecord, PatchReceived

ACKNOWLEDGED = frozenset({"ChangePlan", "ChangeQuantity", "Reinstate"})
NOTIFY_ONLY = frozenset({"Renew", "Suspend", "Unsubscribe"})
REJECTED_BY_4XX = frozenset({"ChangePlan", "ChangeQuantity"})

log = structlog.get_logger("lifecycle.sandbox.operations")

Apply = Callable[[Json, datetime], str | None]
"""Applies a succeeded operation to the truth; returns why it could not, or None."""


class OperationBook:
    """Every operation with its webhook payload and record, in creation order."""

    def __init__(self, apply: Apply, auto_accept_seconds: float | None) -> None:
        self._apply = apply
        self.auto_accept_seconds = auto_accept_seconds
        self._entries: dict[str, Entry] = {}
        self._pending: set[str] = set()

    def add(self, operation: Json, payload: Json, source: str, now: datetime) -> Entry:
        entry = Entry(operation=operation, payload=payload, source=source)
        self._entries[entry.id] = entry
        if entry.pending:
            entry.deadline = self._deadline(now)
            self._pending.add(entry.id)
        else:
            entry.decide(str(operation["status"]), Decider.MARKETPLACE, now)
        return entry

    def entry(self, operation_id: str) -> Entry:
        try:
            return self._entries[operation_id]
        except KeyError:
            raise not_found(f"Operation {operation_id} not found", "operationId") from None

    def find(self, subscription_id: str, operation_id: str) -> Entry:
        entry = self._entries.get(operation_id)
        if entry is None or entry.operation["subscriptionId"] != subscription_id:
            raise not_found(f"Operation {operation_id} not found for subscription {subscription_id}", "operationId")
        return entry

    def outstanding(self, subscription_id: str) -> list[Json]:
        entries = (self._entries[op_id] for op_id in self._pending)
        found = [e for e in entries if e.operation["subscriptionId"] == subscription_id]
        return [e.copy() for e in sorted(found, key=lambda e: str(e.operation["timeStamp"]))]

    def records(self) -> list[OperationRecord]:
        return [entry.snapshot() for entry in self._entries.values()]

    def settle(self, now: datetime) -> None:
        """Auto-accept every pending operation whose deadline has passed."""
        due = [self._entries[op_id] for op_id in self._pending]
        due = [entry for entry in due if entry.deadline is not None and entry.deadline <= now]
        for entry in sorted(due, key=lambda entry: entry.deadline or now):  # in the order time decided them
            self._succeed(entry, Decider.AUTO_ACCEPT, entry.deadline or now)

    def patch(self, subscription_id: str, operation_id: str, status: object, now: datetime) -> None:
        """The publisher's PATCH: returns for 200, raises SandboxError for 400/404/409."""
        entry = self.find(subscription_id, operation_id)
        try:
            self._acknowledge(entry, status, now)
        except SandboxError as refusal:
            entry.patches.append(PatchReceived(str(status), now, refusal.status))
            raise
        entry.patches.append(PatchReceived(str(status), now, 200))

    def _acknowledge(self, entry: Entry, status: object, now: datetime) -> None:
        if status not in ("Success", "Failure"):
            raise bad_request("Expected Success or Failure", "status", "InvalidValue")
        if entry.action in NOTIFY_ONLY:
            raise bad_request(f"{entry.action} operations do not take an acknowledgement", "operation")
        if entry.in_flight:
            entry.protocol_errors.append(f"PATCH {status} arrived before the webhook's HTTP response had returned")
        if not entry.pending:
            raise conflict(f"Operation {entry.id} is already {entry.operation['status']}", "operation")
        if status == "Success":
            self._succeed(entry, Decider.PUBLISHER_ACK, now)
        else:
            self._fail(entry, Decider.PUBLISHER_ACK, now, "The publisher reported a failure")

    def delivery_started(self, operation_id: str, now: datetime) -> Json:
        """A webhook attempt is about to go out; its payload. The 10 s start at the first one."""
        entry = self.entry(operation_id)
        if entry.pending and not entry.deliveries and not entry.in_flight:
            entry.deadline = self._deadline(now)
        entry.in_flight += 1
        return copy.deepcopy(entry.payload)

    def delivery_finished(self, operation_id: str, attempt: DeliveryAttempt) -> None:
        entry = self.entry(operation_id)
        entry.in_flight = max(0, entry.in_flight - 1)
        entry.deliveries.append(attempt)
        status = attempt.status
        rejected = status is not None and 400 <= status < 500
        if rejected and entry.pending and entry.action in REJECTED_BY_4XX:
            self._fail(entry, Decider.PUBLISHER_4XX, attempt.at, f"The publisher's webhook answered {status}")

    def _deadline(self, now: datetime) -> datetime | None:
        if self.auto_accept_seconds is None:
            return None
        return now + timedelta(seconds=self.auto_accept_seconds)

    def _succeed(self, entry: Entry, by: Decider, now: datetime) -> None:
        problem = self._apply(entry.operation, now)
        if problem is None:
            self._final(entry, "Succeeded", by, now)
        else:
            self._final(entry, "Conflict", by, now, problem)

    def _fail(self, entry: Entry, by: Decider, now: datetime, message: str) -> None:
        self._final(entry, "Failed", by, now, message)

    def _final(self, entry: Entry, status: str, by: Decider, now: datetime, message: str = "") -> None:
        entry.decide(status, by, now, message)
        self._pending.discard(entry.id)
        log.info(
            "operation decided",
            operation_id=entry.id,
            subscription_id=entry.operation["subscriptionId"],
            action=entry.action,
            status=status,
            decided_by=by.value,
        )
