"""A reconciliation run's record, as ops read it, and the tombstones that runs leave alone.

The judgement itself (findings, remedies, repairs) is `lifecycle.domain.reconcile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from lifecycle.domain.reconcile import Finding, FindingKind


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One reconciliation run as ops see it: when, how far it got, what drift it found."""

    run_id: str
    started_at: datetime
    dry_run: bool
    status: RunStatus = RunStatus.RUNNING
    finished_at: datetime | None = None
    pages: int = 0  # pages of the marketplace's list read
    listed: int = 0  # subscriptions the marketplace listed (tombstoned ones excluded)
    known: int = 0  # subscriptions of ours compared (tombstoned ones excluded)
    skipped: int = 0  # tombstoned subscriptions left alone
    counts: Mapping[FindingKind, int] = field(default_factory=dict)
    repaired: int = 0  # subscriptions whose state this run changed
    errors: int = 0  # subscriptions that could not be examined
    error: str = ""  # why the run failed
    problems: tuple[str, ...] = ()  # the first per-subscription errors
    sample: tuple[Finding, ...] = ()  # the first findings, so ops see which subscriptions drifted


@dataclass(frozen=True, slots=True, kw_only=True)
class Tombstone:
    """A subscription deleted here on purpose (a test purchase): reconciliation leaves it alone."""

    subscription_id: str
    reason: str
    created_at: datetime
