"""`lifecycle subscriptions list|show|history|reindex`: our state, as the ops API answers it.

Read from the target's tables (the local stack's Azurite by default), so it shows what the
worker committed, whatever the marketplace says (`lifecycle sandbox show`).
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from lifecycle.cli.output import CliError, Context, console, emit_json, fields_table
from lifecycle.cli.queries import query_service
from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Status, Subscription
from lifecycle.plain import plain

json_option = click.option("--json", "json_out", is_flag=True, help="Print JSON.")


@click.group()
def subscriptions() -> None:
    """Our state of the subscriptions: list with filters, show one, follow its history."""


@subscriptions.command(name="list")
@click.option("--status", type=click.Choice([s.value for s in Status], case_sensitive=False))
@click.option("--offer", help="Offer id.")
@click.option("--plan", help="Plan id.")
@click.option("--tenant", help="The beneficiary's tenant id (the customer using it).")
@click.option("--purchaser", help="The purchaser's tenant id (a CSP partner, or the customer).")
@click.option("--free-trial/--no-free-trial", default=None, help="Only free trials, or none.")
@click.option("--test/--no-test", default=None, help="Only test purchases, or none.")
@click.option("--renewals-at-risk", "renewal_days", type=int, metavar="DAYS",
              help="Active, autoRenew off, and the term ends within DAYS days.")
@click.option("--limit", type=int, help="Subscriptions per page [default: 25, at most 200].")
@click.option("--continuation", help="The token a previous page printed.")
@json_option
@click.pass_obj
def list_(obj: Context, /, json_out: bool, **chosen: Any) -> None:
    """The subscriptions matching every filter given, a page at a time."""
    from lifecycle.entrypoints.ops import page_json
    from lifecycle.services.query_filter import parse_query

    names = {"free_trial": "freeTrial", "renewal_days": "renewalsWithinDays"}
    params = {names.get(name, name): _param(value) for name, value in chosen.items() if value is not None}
    with query_service(obj) as service:
        page = service.subscriptions(parse_query(params))
    if json_out:
        emit_json(page_json(page))
        return
    out = console()
    out.print(_list_table(page.subscriptions))
    if page.continuation:
        out.print(f"More: repeat with --continuation {page.continuation}")


@subscriptions.command()
@click.argument("subscription_id")
@json_option
@click.pass_obj
def show(obj: Context, subscription_id: str, json_out: bool) -> None:
    """Our state of SUBSCRIPTION_ID and every history entry, newest first."""
    from lifecycle.errors import InvalidQuery

    with query_service(obj) as service:
        try:
            found, version = service.subscription(subscription_id)
        except InvalidQuery as error:
            raise CliError(f"subscription {subscription_id} is not known here ({error})") from None
        history = service.history(subscription_id)
    if json_out:
        emit_json({"subscription": found, "version": version, "history": history})
        return
    out = console()
    out.print(fields_table(f"Our state: {subscription_id} (version {version})", plain(found)))
    out.print(_history_table(history))


@subscriptions.command()
@click.argument("subscription_id")
@json_option
@click.pass_obj
def history(obj: Context, subscription_id: str, json_out: bool) -> None:
    """Every change of SUBSCRIPTION_ID, newest first: what changed, its source and operation id."""
    from lifecycle.entrypoints.ops import history_json

    with query_service(obj) as service:
        entries = service.history(subscription_id)
    if json_out:
        emit_json(history_json(subscription_id, entries))
        return
    console().print(_history_table(entries))


@subscriptions.command()
@json_option
@click.pass_obj
def reindex(obj: Context, json_out: bool) -> None:
    """Rebuild the ops index from the state rows (after an upgrade, or to mend a crash's leftovers)."""
    from lifecycle.cli import target

    with target.worker(obj) as built:
        done = built.store.reindex()
    if json_out:
        emit_json(done)
        return
    click.echo(f"{done.subscriptions} subscriptions: {done.written} index rows written, {done.removed} removed")


def _param(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _list_table(found: tuple[Subscription, ...]) -> Table:
    table = Table("id", "status", "offer", "plan", "qty", "term end", "renew", "tenant", title_justify="left",
                  title=f"Subscriptions ({len(found)})")
    for s in found:
        table.add_row(s.id, s.status.value, s.offer_id, s.plan_id, "-" if s.quantity is None else str(s.quantity),
                      s.term.end.isoformat() if s.term.end else "-", "yes" if s.auto_renew else "no",
                      s.beneficiary_tenant_id or "-")
    return table


def _history_table(history: list[HistoryEntry]) -> Table:
    table = Table("recorded", "action", "source", "outcome", "operation", "changes", "reason",
                  title="History (newest first)", title_justify="left")
    for entry in history:
        table.add_row(
            entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.action.value,
            entry.source.value,
            entry.outcome.value,
            entry.operation_id or "-",
            "\n".join(_change(c.field, c.before, c.after) for c in entry.changes) or "-",
            entry.reason or "-",
        )
    return table


def _change(name: str, before: Any, after: Any) -> str:
    return f"{name}: {before or '-'} -> {after or '-'}"
