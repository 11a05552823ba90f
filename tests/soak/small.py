"""One small, deterministic soak per test session, shared by the soak and the log-hygiene tests."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from soak.config import FaultRates, SoakConfig
from soak.run import SoakResult, run

SMALL = SoakConfig(
    subscriptions=40, events=300, seed=11, kills=3,
    # Higher than the defaults, so a few hundred events meet every kind of fault.
    rates=FaultRates(duplicate=0.15, reorder=0.15, late=0.05, api_5xx=0.05, api_429=0.03, api_timeout=0.03,
                     slow_past_window=0.02, rejected_change=0.05),
)


@functools.cache
def small_soak() -> SoakResult:
    work = Path(tempfile.mkdtemp(prefix="soak-test-"))
    return run(SMALL, work, progress=lambda _: None)
