"""A soak run's figures as JSON (soak/results/latest.json) and as a table on the terminal."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from soak.run import SoakResult

RESULTS = Path(__file__).resolve().parent / "results"
SHOWN_VIOLATIONS = 30


def write(result: SoakResult, path: Path = RESULTS / "latest.json") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "config": result.config,
        "figures": result.figures,
        "violations": result.violations,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def show(result: SoakResult, path: Path) -> None:
    figures = result.figures
    table = Table(title=f"soak (written to {path.name})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in ("events", "kills", "seconds", "event_seconds", "redelivered_after_sender_gave_up",
                 "etag_conflicts", "abandoned", "rescheduled", "dead_letters", "rejected_on_purpose", "log_lines",
                 "api_faults_unhit"):
        table.add_row(name, str(figures.get(name, "")))
    for kind, count in sorted(figures.get("injected", {}).items()):
        table.add_row(f"injected: {kind}", str(count))
    for status, count in figures.get("webhook_answers", {}).items():
        table.add_row(f"webhook answered {status}", str(count))
    for name, count in sorted(figures.get("checked", {}).items()):
        table.add_row(f"checked: {name}", str(count))
    reconcile = figures.get("reconcile", {})
    table.add_row("reconcile repaired", str(reconcile.get("repaired", "")))
    table.add_row("violations", str(len(result.violations)), style="bold red" if result.violations else "bold green")
    console = Console()
    console.print(table)
    for violation in result.violations[:SHOWN_VIOLATIONS]:
        console.print(f"[red]violation[/red] {violation}", highlight=False)
    if len(result.violations) > SHOWN_VIOLATIONS:
        console.print(f"... and {len(result.violations) - SHOWN_VIOLATIONS} more in {path}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
