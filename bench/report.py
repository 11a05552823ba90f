"""Write a benchmark's figures as JSON and print them as a table."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, figures: dict[str, Any], rows: list[tuple[str, str, str]]) -> Path:
    """Save `figures` to bench/results/NAME.json; print `rows` (figure, value, goal)."""
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "platform": platform.platform()},
        "figures": figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    table = Table(title=f"{name} (written to bench/results/{name}.json)")
    for column in ("figure", "value", "goal"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return path


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
