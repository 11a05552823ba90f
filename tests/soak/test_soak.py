"""`make soak` in small: 300 events, a fixed seed, three SIGKILLs, every fault kind; zero violations.

The full-size run is `make soak` (see README, Reliability); this one keeps the promise
checked on every `make test`.
"""

from __future__ import annotations

import pytest

from tests.soak.small import SMALL, small_soak

pytestmark = [pytest.mark.azurite, pytest.mark.e2e]


def test_a_small_soak_under_every_fault_ends_with_zero_violations() -> None:
    result = small_soak()
    assert result.violations == []


def test_the_small_soak_met_every_fault_it_claims() -> None:
    figures = small_soak().figures
    assert figures["events"] == SMALL.events
    assert figures["kills"] == SMALL.kill_count
    injected = figures["injected"]
    for kind in ("duplicate", "reordered", "late_redelivery"):
        assert injected.get(kind, 0) > 0, kind
    for kind in ("api_5xx", "api_429", "api_timeout", "api_slow_past_window"):
        queued, unhit = figures["api_faults_queued"].get(kind, 0), figures["api_faults_unhit"]
        assert injected.get(kind, 0) > 0, f"{kind}: {queued} queued, none met a call ({unhit} faults unhit)"
    assert figures["rejected_on_purpose"] > 0
    assert figures["checked"]["subscriptions"] == SMALL.subscriptions
