"""`lifecycle reconcile`: run reconciliation now, read past runs, manage tombstones.

    lifecycle reconcile [--dry-run] [--json]     one run, in this process, as the timer runs it
    lifecycle reconcile runs [--limit N]         the last runs, newest first
    lifecycle reconcile tombstone ID [--reason]  leave a subscription alone from now on
    lifecycle reconcile untombstone ID
    lifecycle reconcile tombstones

Exit codes of a run: 0 it finished (whatever it found), 1 it failed (the reason on one
line; the run is recorded as failed), 3 another run holds the lease (nothing was done).
Not 2: click already answers a usage error with 2, and a script must tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import click

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.output import CliError, Context, console, emit_json
from lifecycle.cli.queries import guid
from lifecycle.cli.reconcile_display import Display, findings_table, summary_table
from lifecycle.domain.reconcile import Finding
from lifecycle.domain.reconcile_runs import RunRecord, RunStatus
from lifecycle.errors import LifecycleError
from lifecycle.plain import plain

if TYPE_CHECKING:
    from lifecycle.bootstrap import Worker
    from lifecycle.services.reconcile import ReconcileProgress

json_option = click.option("--json", "json_out", is_flag=True, help="Print JSON (no progress display).")


class RunRefused(CliError):
    """Another run holds the lease: a distinct exit code, so a script can wait and retry."""

    exit_code = 3


@click.group(invoke_without_command=True)
@click.option("--dry-run", is_flag=True, help="Change nothing: report what a run would repair.")
@json_option
@click.pass_context
def reconcile(ctx: click.Context, dry_run: bool, json_out: bool) -> None:
    """Compare our table with the marketplace's list; repair safe drift, report the rest.

    Without a subcommand, runs once now (the local stack and Azure also run it on
    RECONCILE_SCHEDULE). Exit code 1: the run failed; 3: another run is in progress.
    """
    if ctx.invoked_subcommand is None:
        _run(ctx.obj, dry_run=dry_run, json_out=json_out)


@contextmanager
def worker(obj: Context) -> Iterator[Worker]:
    """The target's worker; imported on use, so `lifecycle --help` does not load the Azure SDKs."""
    from lifecycle.cli import target

    with target.worker(obj) as built:
        yield built


def _run(obj: Context, *, dry_run: bool, json_out: bool) -> None:
    from lifecycle.services.reconcile import RunInProgress

    found: list[Finding] = []
    display = None if json_out else Display(console(), dry_run=dry_run)

    def progress(step: ReconcileProgress) -> None:
        found.extend(step.findings)
        if display is not None:
            display.update(step, len(found))

    with worker(obj) as built:
        try:
            if display is None:
                run = built.reconcile.run(dry_run=dry_run, progress=progress)
            else:
                with display:
                    run = built.reconcile.run(dry_run=dry_run, progress=progress)
        except RunInProgress as error:
            raise RunRefused(f"not started: {error}") from None
        except LifecycleError as error:  # the lease could not even be read
            raise CliError(f"reconcile could not start: {type(error).__name__}: {error}") from None
    if json_out:
        emit_json({"run": run, "findings": found})
    else:
        out = console()
        out.print(summary_table(run, found))
        if found:
            out.print(findings_table(found, dry_run=dry_run))
    if run.status is RunStatus.FAILED:
        raise CliError(f"run {run.run_id} failed: {run.error}")


@reconcile.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many runs.")
@json_option
@click.pass_obj
def runs(obj: Context, limit: int, json_out: bool) -> None:
    """The last runs, newest first: when, how far they got, what they found."""
    with worker(obj) as built:
        records = _reading(lambda: built.reconcile.runs(limit))
    if json_out:
        emit_json(records)
        return
    table = Grid(Col("started"), Col("run", ident=True), Col("kind", spare=5), Col("status"), Col("seconds", spare=4),
                 Col("pages", spare=3), Col("listed", spare=2), Col("known", spare=1), Col("findings"),
                 Col("repaired"), Col("errors"), title="Reconcile runs (newest first)")
    for run in records:
        table.add_row(run.started_at.strftime("%Y-%m-%d %H:%M:%S"), run.run_id[:8],
                      "dry run" if run.dry_run else "run", run.status.value, _seconds(run), str(run.pages),
                      str(run.listed), str(run.known), str(sum(run.counts.values())), str(run.repaired),
                      str(run.errors))
    console().print(table)


@reconcile.command()
@click.argument("subscription_id", metavar="SUBSCRIPTION_ID", callback=guid)
@click.option("--reason", default="", help="Why, for the next person (e.g. 'test purchase, deleted').")
@json_option
@click.pass_obj
def tombstone(obj: Context, subscription_id: str, reason: str, json_out: bool) -> None:
    """Leave SUBSCRIPTION_ID alone from now on (a test purchase deleted on purpose).

    An id we do not know is accepted: reconciliation will then not adopt it.
    """
    with worker(obj) as built:
        known = _reading(lambda: built.store.load(subscription_id)) is not None
        made = _reading(lambda: built.reconcile.tombstone(subscription_id, reason))
    if json_out:
        emit_json({**plain(made), "known_here": known})
    elif known:
        click.echo(f"{subscription_id}: tombstoned; reconciliation leaves it alone")
    else:
        click.echo(f"{subscription_id}: tombstoned; not known here: reconciliation will not adopt it")


@reconcile.command()
@click.argument("subscription_id")
@click.pass_obj
def untombstone(obj: Context, subscription_id: str) -> None:
    """Reconcile SUBSCRIPTION_ID again from the next run on."""
    with worker(obj) as built:
        removed = _reading(lambda: _untombstone(built, subscription_id))
    click.echo(f"{subscription_id}: no longer tombstoned" if removed else f"{subscription_id}: was not tombstoned")


@reconcile.command()
@json_option
@click.pass_obj
def tombstones(obj: Context, json_out: bool) -> None:
    """Every tombstoned subscription, with why and since when."""
    with worker(obj) as built:
        found = _reading(built.reconcile.tombstones)
    if json_out:
        emit_json(found)
        return
    table = Grid(Col("subscription", ident=True), Col("since"), Col("reason"), title="Tombstones")
    for stone in found:
        table.add_row(stone.subscription_id, stone.created_at.strftime("%Y-%m-%d %H:%M:%S"), stone.reason or "-")
    console().print(table)


T = TypeVar("T")


def _reading(read: Callable[[], T]) -> T:
    try:
        return read()
    except LifecycleError as error:
        raise CliError(f"the tables do not answer: {type(error).__name__}: {error}") from None


def _untombstone(built: Worker, subscription_id: str) -> bool:
    """Remove the tombstones of `subscription_id`, whatever case each was typed in; False if there was none."""
    wanted = subscription_id.strip().lower()
    stones = [s.subscription_id for s in built.reconcile.tombstones() if s.subscription_id.lower() == wanted]
    for stone in stones:
        built.reconcile.untombstone(stone)
    return bool(stones)


def _seconds(run: RunRecord) -> str:
    return "-" if run.finished_at is None else f"{(run.finished_at - run.started_at).total_seconds():.1f}"

