"""What `lifecycle reconcile` shows a person: progress while it pages, then the summary and the findings.

On a terminal the progress is one live line (rich) that counts as pages arrive; elsewhere
(a log file, CI) one plain line per phase, so the output stays readable as text.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.output import fields_table
from lifecycle.domain.reconcile import Finding, FindingKind, Remedy
from lifecycle.domain.reconcile_runs import RunRecord

if TYPE_CHECKING:  # the service (and the Azure SDK behind it) loads only when a run starts
    from lifecycle.services.reconcile import ReconcileProgress

PHASES = {"index": "reading our table", "listing": "paging the marketplace's list",
          "absent": "checking ours the list lacks", "done": "done"}
FINDINGS_SHOWN = 100  # beyond this the table is a sample: --json has them all


class Display:
    """Progress of one run: `with display:` around the run, `update` from its progress callback."""

    def __init__(self, out: Console, *, dry_run: bool) -> None:
        self._out = out
        self._label = "dry run" if dry_run else "reconcile"
        self._live: Progress | None = None
        self._task: TaskID | None = None
        self._phase = ""

    def __enter__(self) -> Display:
        if self._out.is_terminal:
            self._live = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=self._out)
            self._task = self._live.add_task(f"{self._label}: starting", total=None)
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, step: ReconcileProgress, findings: int) -> None:
        text = (f"{self._label}: {PHASES.get(step.phase, step.phase)} - {step.pages} pages, {step.listed} listed, "
                f"{step.known} ours, {findings} findings")
        if self._live is not None and self._task is not None:
            self._live.update(self._task, description=text)
        elif step.phase != self._phase:
            self._out.print(text)
        self._phase = step.phase


def summary_table(run: RunRecord, found: list[Finding]) -> RenderableType:
    """The run's figures, then its findings counted per class: repaired (or would be) vs reported."""
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    figures = {
        "status": run.status.value + (" (dry run: nothing changed)" if run.dry_run else ""),
        "run id": run.run_id,
        "duration": None if seconds is None else f"{seconds:.1f} s",
        "pages": run.pages,
        "listed by the marketplace": run.listed,
        "ours compared": run.known,
        "tombstoned, left alone": run.skipped,
        "subscriptions repaired": run.repaired,
        "could not be examined": run.errors,
    }
    if run.error:
        figures["error"] = run.error
    title = "Dry run" if run.dry_run else "Reconcile run"
    per_class = Table("class", "found", "would repair" if run.dry_run else "repaired", "next run", "reported",
                      title="Findings per class", title_justify="left")
    fixed = Counter(f.kind for f in found if f.remedy in (Remedy.ADOPT, Remedy.REPAIR))
    waiting = Counter(f.kind for f in found if f.remedy is Remedy.WAIT)
    reported = Counter(f.kind for f in found if f.remedy is Remedy.REPORT)
    for kind in FindingKind:
        total = run.counts.get(kind, 0)
        if total:
            per_class.add_row(kind.value, str(total), str(fixed[kind]), str(waiting[kind]), str(reported[kind]))
    if not run.counts:
        per_class.add_row("(none)", "0", "0", "0", "0")
    problems = [fields_table("Problems", {str(n): p for n, p in enumerate(run.problems, 1)})] if run.problems else []
    return Group(fields_table(title, figures), per_class, *problems)


def findings_table(found: list[Finding], *, dry_run: bool) -> RenderableType:
    """One row per finding: which subscription (whole, to paste into the next command), which
    class, both values, what was (or would be) done."""
    grid = Grid(Col("subscription", ident=True), Col("class"), Col("ours"), Col("marketplace"), Col("done"),
                Col("detail", spare=1), title="Findings")
    for finding in found[:FINDINGS_SHOWN]:
        grid.add_row(finding.subscription_id, finding.kind.value, finding.ours or "-", finding.theirs or "-",
                     outcome(finding.remedy, dry_run=dry_run), finding.detail or "-")
    if len(found) > FINDINGS_SHOWN:
        return Group(grid, f"the first {FINDINGS_SHOWN} of {len(found)}: --json lists them all")
    return grid


def outcome(remedy: Remedy, *, dry_run: bool) -> str:
    if remedy is Remedy.REPORT:
        return "reported"
    if remedy is Remedy.WAIT:
        return "next run"
    verb = "adopt" if remedy is Remedy.ADOPT else "repair"
    return f"would {verb}" if dry_run else {"adopt": "adopted", "repair": "repaired"}[verb]
