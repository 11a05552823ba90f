"""How many decisions per second the pure `decide` makes (goal: at least 100,000)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.report import write
from lifecycle.domain.events import ChangeQuantity, Suspend
from lifecycle.domain.lifecycle import Delivery, decide
from lifecycle.domain.model import OperationStatus, Status, Subscription, Term

GOAL = 100_000


def run(decisions: int = 200_000) -> dict[str, Any]:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    state = Subscription(id="s", offer_id="o", plan_id="team", quantity=5, status=Status.SUBSCRIBED,
                         term=Term("P1M"), last_operation_at=t0)
    deliveries = [
        Delivery(event=ChangeQuantity(operation_id=f"q{i}", subscription_id="s", quantity=6 + i % 3,
                                      timestamp=t0 + timedelta(seconds=i)), operation=OperationStatus.IN_PROGRESS)
        for i in range(50)
    ] + [
        Delivery(event=Suspend(operation_id=f"s{i}", subscription_id="s", timestamp=t0 + timedelta(seconds=i)),
                 operation=OperationStatus.SUCCEEDED)
        for i in range(50)
    ]
    now = t0 + timedelta(days=1)
    start = time.perf_counter()
    for i in range(decisions):
        decide(state, deliveries[i % len(deliveries)], now)
    elapsed = time.perf_counter() - start
    rate = decisions / elapsed
    figures = {"decisions": decisions, "seconds": round(elapsed, 3), "decisions_per_second": round(rate)}
    write("decide", figures, [
        ("decisions", f"{decisions:,}", ""),
        ("decisions/s", f"{rate:,.0f}", f">= {GOAL:,}"),
        ("µs per decision", f"{elapsed / decisions * 1e6:.2f}", ""),
    ])
    return figures
