"""`lifecycle product pending`: the product events not yet acknowledged, for ops.

Each row shows where a subscription's events are stuck: attempts, the last error and the
next attempt. Later events of the same subscription wait behind the first pending one.
"""

from __future__ import annotations

from typing import Any

import click

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.output import CliError, Context, console, emit_json
from lifecycle.cli.target import worker
from lifecycle.errors import StorageUnavailable


@click.group()
def product() -> None:
    """Events for the publisher's product (PRODUCT_EVENTS_URL)."""


@product.command()
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def pending(obj: Context, json_out: bool) -> None:
    """Events waiting for the product's acknowledgement, oldest first per subscription."""
    with worker(obj) as built:
        if built.outbox is None:  # a question with an answer, not an error: exit 0
            if json_out:
                emit_json({"pending": [], "configured": False})
            else:
                click.echo("no product is configured (PRODUCT_EVENTS_URL is not set): nothing is sent, "
                           "so nothing is pending")
            return
        try:
            rows = sorted(built.outbox.pending(), key=lambda e: (e.subscription_id, e.sequence))
        except StorageUnavailable as error:
            raise CliError(f"the tables do not answer: {error}") from None
    found: list[dict[str, Any]] = [
        {"subscriptionId": e.subscription_id, "sequence": e.sequence, "eventId": e.event_id, "type": e.type,
         "attempts": e.attempts, "lastError": e.last_error, "createdAt": e.created_at.isoformat(),
         "nextAttemptAt": e.next_attempt_at.isoformat() if e.next_attempt_at else None}
        for e in rows
    ]
    if json_out:
        emit_json({"pending": found, "configured": True})
        return
    table = Grid(Col("subscription", ident=True), Col("seq"), Col("type"), Col("attempts", spare=2),
                 Col("last error"), Col("next attempt", spare=1), title=f"Pending product events: {len(found)}")
    for row in found:
        table.add_row(row["subscriptionId"], str(row["sequence"]), row["type"], str(row["attempts"]),
                      row["lastError"] or "-", row["nextAttemptAt"] or "-")
    console().print(table)
