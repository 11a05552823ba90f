"""The CLI's tables at any width: ids whole, nothing cut, left-out columns named."""

from __future__ import annotations

import io
import uuid

from rich.console import Console

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.reconcile_display import findings_table
from lifecycle.domain.reconcile import Finding, FindingKind, Remedy


def rendered(grid: Grid, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(grid)
    return console.export_text()


def grid_of(*ids: str) -> Grid:
    grid = Grid(Col("id", ident=True), Col("status"), Col("note", spare=2), Col("tenant", ident=True, spare=1),
                title="Things")
    for one in ids:
        grid.add_row(one, "PendingFulfillmentStart", "a rather long note that wraps", str(uuid.uuid4()))
    return grid


def test_spare_columns_are_left_out_first_and_named_under_the_table() -> None:
    one = str(uuid.uuid4())
    text = rendered(grid_of(one), 70)
    assert one in text
    assert "tenant" not in text.split("not shown")[0]
    assert "not shown at this width: tenant" in text
    assert max(len(line) for line in text.splitlines()) <= 70


def test_every_column_is_shown_when_there_is_room() -> None:
    text = rendered(grid_of(str(uuid.uuid4())), 200)
    assert "tenant" in text
    assert "not shown" not in text


def test_too_narrow_for_an_id_it_is_folded_never_cut() -> None:
    one = str(uuid.uuid4())
    text = rendered(grid_of(one), 30)
    assert "…" not in text
    folded = "".join(line.strip("│┃ ").split("│")[0].strip() for line in text.splitlines())
    assert one in folded


def test_reconcile_findings_show_each_subscription_id_whole_at_100_columns() -> None:
    sid = str(uuid.uuid4())
    finding = Finding(sid, FindingKind.TERM, Remedy.REPAIR, "term=P1M 2026-12-07..2027-01-06 is_free_trial=false",
                      "term=P1Y 2026-12-07..2027-12-06 is_free_trial=false", "")
    out = io.StringIO()
    Console(file=out, width=100).print(findings_table([finding], dry_run=True))
    assert sid in out.getvalue()
