"""The promise, checked for every subscription and every operation once the run has settled.

    converged      our state equals the marketplace's truth (after one reconciliation)
    decided once   each ChangePlan/ChangeQuantity is final, and we never told the marketplace
                   two things about it (Success and Failure, or a PATCH Success after a 4xx)
    zero lost      each delivery our webhook accepted is applied, ignored, rejected, or
                   failed with a reason (our dead-letter view), or in the queue's dead letters
    history        no operation changed anything twice; a failed one changed nothing; per
                   aspect the changes follow the marketplace's order; replayed, the history
                   gives the state (a change superseded by a newer one of the same aspect
                   leaves no entry, by design)
    protocol       no PATCH reached the marketplace before its webhook's answer
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from lifecycle.domain.events import Action, Source
from lifecycle.domain.history import HistoryEntry, Outcome, diff
from lifecycle.domain.model import Subscription
from lifecycle.domain.records import DeliveryStatus
from lifecycle.parsing import parse_subscription
from lifecycle.ports import SubscriptionStore
from lifecycle.sandbox import Marketplace, OperationRecord

COMPARED = ("status", "offer_id", "plan_id", "quantity", "term", "auto_renew", "is_free_trial",
            "beneficiary_tenant_id", "purchaser_tenant_id", "is_test")
CHANGES = frozenset({"ChangePlan", "ChangeQuantity"})
FINAL = frozenset({"Succeeded", "Failed", "Conflict"})
ASPECT = {Action.CHANGE_PLAN: "plan", Action.CHANGE_QUANTITY: "quantity", Action.RENEW: "term",
          Action.SUSPEND: "status", Action.REINSTATE: "status", Action.UNSUBSCRIBE: "status"}


@dataclass(slots=True)
class Verdict:
    violations: list[str] = field(default_factory=list)
    figures: Counter[str] = field(default_factory=Counter)


def check(market: Marketplace, store: SubscriptionStore, subscription_ids: Iterable[str],
          dead_letters: dict[str, str]) -> Verdict:
    """Every check over every subscription; `dead_letters` maps message id -> reason."""
    verdict = Verdict()
    by_subscription: dict[str, list[OperationRecord]] = {}
    for record in market.records():
        by_subscription.setdefault(record.subscription_id, []).append(record)
    verdict.violations += [f"protocol: {error}" for error in market.protocol_errors()]
    for sid in subscription_ids:
        records = by_subscription.get(sid, [])
        history = list(reversed(store.history(sid)))
        verdict.figures["subscriptions"] += 1
        verdict.figures["operations"] += len(records)
        verdict.figures["history_entries"] += len(history)
        _converged(sid, market, store, verdict)
        for record in records:
            _decided_once(record, history, verdict)
            _not_lost(record, store, dead_letters, verdict)
        _history(sid, history, store, verdict)
    return verdict


def _converged(sid: str, market: Marketplace, store: SubscriptionStore, verdict: Verdict) -> None:
    snapshot = store.load(sid)
    truth = parse_subscription(market.get(sid))
    if snapshot is None:
        verdict.violations.append(f"{sid}: unknown here after reconciliation")
        return
    ours = snapshot.subscription
    differ = [f for f in COMPARED if getattr(ours, f) != getattr(truth, f)]
    if differ:
        verdict.violations.append(f"{sid}: differs from the truth in {', '.join(differ)}")


def _decided_once(record: OperationRecord, history: list[HistoryEntry], verdict: Verdict) -> None:
    op = f"{record.subscription_id}/{record.operation_id} ({record.action})"
    # A first event of a subscription unknown here adopts the truth (RESYNCED), then applies itself.
    changed = [e for e in history
               if e.operation_id == record.operation_id and e.changes and e.outcome is not Outcome.RESYNCED]
    if len(changed) > 1:
        how = ", ".join(f"{e.outcome.value} by {e.source.value}: {[c.field for c in e.changes]}" for e in changed)
        verdict.violations.append(f"{op}: applied {len(changed)} times ({how})")
    if record.status not in FINAL:
        verdict.violations.append(f"{op}: still {record.status} at the end")
    if record.status in ("Failed", "Conflict") and changed:
        verdict.violations.append(f"{op}: {record.status} at the marketplace but changed our state")
    if record.action not in CHANGES:
        return
    sent = {patch.status for patch in record.patches}
    refused = any(d.status is not None and 400 <= d.status < 500 for d in record.deliveries)
    if len(sent) > 1:
        verdict.violations.append(f"{op}: PATCHed {' and '.join(sorted(sent))}")
    if refused and "Success" in sent:
        verdict.violations.append(f"{op}: answered 4xx and PATCHed Success")
    verdict.figures[f"decided_by_{record.decided_by.value if record.decided_by else 'nobody'}"] += 1


def _not_lost(record: OperationRecord, store: SubscriptionStore, dead_letters: dict[str, str],
              verdict: Verdict) -> None:
    op = f"{record.subscription_id}/{record.operation_id} ({record.action})"
    answers = [d.status for d in record.deliveries if d.status is not None and d.status < 500]
    verdict.figures["deliveries"] += len(record.deliveries)
    if not answers:
        verdict.violations.append(f"{op}: never accepted nor refused by our webhook")
        return
    stored = store.delivery(record.subscription_id, record.operation_id)
    if stored is None:
        verdict.violations.append(f"{op}: answered {answers[0]} but no delivery record")
    elif stored.status.is_final:
        verdict.figures[f"delivery_{stored.status.value}"] += 1
    elif stored.status is DeliveryStatus.FAILED and stored.reason:
        verdict.figures["delivery_failed_with_reason"] += 1
    elif record.operation_id in dead_letters:
        verdict.figures["dead_lettered"] += 1
    else:
        verdict.violations.append(f"{op}: lost: its delivery record is {stored.status.value}")


def _history(sid: str, history: list[HistoryEntry], store: SubscriptionStore, verdict: Verdict) -> None:
    last_time: dict[str, object] = {}
    replayed: dict[str, str] = {}
    for entry in history:
        for change in entry.changes:
            replayed[change.field] = change.after
        aspect = ASPECT.get(entry.action)
        if not entry.changes or aspect is None or entry.event_time is None:
            continue
        if entry.source not in (Source.WEBHOOK, Source.REPLAY) or entry.outcome is Outcome.RESYNCED:
            continue
        previous = last_time.get(aspect)
        if previous is not None and entry.event_time < previous:  # type: ignore[operator]
            verdict.violations.append(f"{sid}: history out of order: {entry.operation_id} ({entry.action.value}) "
                                      f"after a newer {aspect} change")
        last_time[aspect] = entry.event_time
    snapshot = store.load(sid)
    if snapshot is None:
        return
    expected = {change.field: change.after for change in diff(None, snapshot.subscription)}
    if {k: v for k, v in replayed.items() if v} != expected:
        verdict.violations.append(f"{sid}: the history does not add up to the state")


def same(ours: Subscription, truth: Subscription) -> bool:
    return all(getattr(ours, f) == getattr(truth, f) for f in COMPARED)
