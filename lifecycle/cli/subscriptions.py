"""`lifecycle subscriptions show ID`: our state of one subscription and its history, newest first.

Read straight from the running stack's tables (its Azurite, its table prefix), so it shows
what the worker committed, whatever the marketplace says (`lifecycle sandbox show`).
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from lifecycle.cli.output import CliError, Context, console, emit_json, fields_table, plain, stack
from lifecycle.domain.history import HistoryEntry
from lifecycle.errors import StorageUnavailable


@click.group()
def subscriptions() -> None:
    """Our state of the subscriptions (the full ops surface is `lifecycle subscriptions ...` to come)."""


@subscriptions.command()
@click.argument("subscription_id")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(obj: Context, subscription_id: str, json_out: bool) -> None:
    """Our state of SUBSCRIPTION_ID and every history entry, newest first."""
    from lifecycle.store.table import TableSubscriptionStore  # the Azure SDK only where it is used

    info = stack(obj.state_dir)
    # A short retry budget: the stack is local, and a person should not wait on a dead one.
    with TableSubscriptionStore.from_connection_string(
        info.storage_connection_string, info.table_prefix, retry_total=1, connection_timeout=3
    ) as store:
        try:
            snapshot = store.load(subscription_id)
            history = store.history(subscription_id) if snapshot is not None else []
        except StorageUnavailable as error:
            raise CliError(f"the stack's tables do not answer: {error}") from None
    if snapshot is None:
        raise CliError(f"subscription {subscription_id} is not known here (no webhook about it was processed)")
    if json_out:
        emit_json({"subscription": snapshot.subscription, "version": snapshot.version, "history": history})
        return
    out = console()
    out.print(fields_table(f"Our state: {subscription_id} (version {snapshot.version})",
                           plain(snapshot.subscription)))
    out.print(_history_table(history))


def _history_table(history: list[HistoryEntry]) -> Table:
    table = Table("recorded", "action", "source", "outcome", "changes", "reason", title="History (newest first)",
                  title_justify="left")
    for entry in history:
        table.add_row(
            entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.action.value,
            entry.source.value,
            entry.outcome.value,
            "\n".join(_change(c.field, c.before, c.after) for c in entry.changes) or "-",
            entry.reason or "-",
        )
    return table


def _change(name: str, before: Any, after: Any) -> str:
    return f"{name}: {before or '-'} -> {after or '-'}"
