"""`lifecycle subscriptions list|show|history|reindex`: our state, as the ops API answers it.

Read from the target's tables (the local stack's Azurite by default), so it shows what the
worker committed, whatever the marketplace says (`lifecycle sandbox show`).
"""

from __future__ import annotations

from typing import Any

import click

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.output import Context, console, emit_json, fields_table
from lifecycle.cli.queries import checked, guid, query_service
from lifecycle.domain.history import HistoryEntry
from lifecycle.domain.model import Status, Subscription
from lifecycle.plain import plain
from lifecycle.services.query_filter import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_RENEWAL_DAYS,
    parse_id,
    parse_query,
    parse_status,
)

json_option = click.option("--json", "json_out", is_flag=True, help="Print JSON.")


@click.group()
def subscriptions() -> None:
    """Our state of the subscriptions: list with filters, show one, follow its history."""


@subscriptions.command(name="list")
@click.option("--status", metavar="STATUS", callback=checked(parse_status),
              help=f"{', '.join(s.value for s in Status)} (any case).")
@click.option("--offer", callback=checked(lambda text: parse_id(text, "offer")), help="Offer id.")
@click.option("--plan", callback=checked(lambda text: parse_id(text, "plan")), help="Plan id.")
@click.option("--tenant", metavar="GUID", callback=guid, help="The beneficiary's tenant id (the customer using it).")
@click.option("--purchaser", metavar="GUID", callback=guid,
              help="The purchaser's tenant id (a CSP partner, or the customer).")
@click.option("--free-trial/--no-free-trial", default=None, help="Only free trials, or none.")
@click.option("--test/--no-test", default=None, help="Only test purchases, or none.")
@click.option("--renewals-at-risk", "renewal_days", type=click.IntRange(0, MAX_RENEWAL_DAYS), metavar="DAYS",
              help="Active, autoRenew off, and the term ends within DAYS days.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT),
              help=f"Subscriptions per page [default: {DEFAULT_LIMIT}, at most {MAX_LIMIT}].")
@click.option("--continuation", help="The token a previous page printed.")
@json_option
@click.pass_obj
def list_(obj: Context, /, json_out: bool, **chosen: Any) -> None:
    """The subscriptions matching every filter given, a page at a time."""
    from lifecycle.entrypoints.ops import page_json

    names = {"free_trial": "freeTrial", "renewal_days": "renewalsWithinDays"}
    params = {names.get(name, name): _param(value) for name, value in chosen.items() if value is not None}
    with query_service(obj) as service:
        page = service.subscriptions(parse_query(params))
    if json_out:
        emit_json(page_json(page))
        return
    console().print(_list_table(page.subscriptions))
    if page.continuation:  # not through rich: it would wrap the token at the terminal's width
        click.echo(f"More: repeat with --continuation {page.continuation}")


@subscriptions.command()
@click.argument("subscription_id", metavar="SUBSCRIPTION_ID", callback=guid)
@json_option
@click.pass_obj
def show(obj: Context, subscription_id: str, json_out: bool) -> None:
    """Our state of SUBSCRIPTION_ID and every history entry, newest first."""
    with query_service(obj) as service:
        found, version = service.subscription(subscription_id)
        history = service.history(subscription_id)
    if json_out:
        emit_json({"subscription": found, "version": version, "history": history})
        return
    out = console()
    out.print(fields_table(f"Our state: {subscription_id} (version {version})", plain(found)))
    out.print(_history_table(history))


@subscriptions.command()
@click.argument("subscription_id", metavar="SUBSCRIPTION_ID", callback=guid)
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


def _list_table(found: tuple[Subscription, ...]) -> Grid:
    table = Grid(Col("id", ident=True), Col("status"), Col("offer", spare=4), Col("plan"), Col("qty"),
                 Col("term end", spare=3), Col("renew", spare=2), Col("tenant", ident=True, spare=1),
                 title=f"Subscriptions ({len(found)})")
    for s in found:
        table.add_row(s.id, s.status.value, s.offer_id, s.plan_id, "-" if s.quantity is None else str(s.quantity),
                      s.term.end.isoformat() if s.term.end else "-", "yes" if s.auto_renew else "no",
                      s.beneficiary_tenant_id or "-")
    return table


def _history_table(history: list[HistoryEntry]) -> Grid:
    table = Grid(Col("recorded"), Col("action"), Col("source", spare=2), Col("outcome", spare=3),
                 Col("operation", ident=True), Col("changes"), Col("reason", spare=1),
                 title="History (newest first)")
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
