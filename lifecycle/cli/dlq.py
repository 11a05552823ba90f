"""`lifecycle dlq list|replay`: deliveries given up on, of both kinds, and sending them back.

`dead-lettered`: the queue's dead letters (locally the stack's queue file; with `--target
azure`, the Service Bus queue's dead-letter sub-queue). `failed`: delivery records whose
processing failed for good, read from the store's index (in Azure the message itself was
completed). An operation that is both shows once. A replay goes through the same
processing as any delivery, marked as source "replay" in the history: one whose operation
was applied meanwhile changes nothing (`lifecycle.services.dead_letters`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from lifecycle.cli.grid import Col, Grid
from lifecycle.cli.output import CliError, Context, console, emit_json
from lifecycle.errors import LifecycleError
from lifecycle.services.dead_letters import DeadLetterService

SCAN = 1000  # entries of each kind read to find the ones a replay names


@contextmanager
def given_up(obj: Context) -> Iterator[DeadLetterService]:
    from lifecycle.cli import target  # the worker (and the Azure SDKs) load only when a command runs

    with target.worker(obj) as built:
        try:
            yield built.dead_letter_service
        except LifecycleError as error:
            raise CliError(f"the queue or the store does not answer: {type(error).__name__}: {error}") from None


@click.group()
def dlq() -> None:
    """Deliveries given up on (dead-lettered or failed): list them, replay them through processing."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, SCAN), default=100, show_default=True,
              help="How many of each kind, oldest first.")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj: Context, limit: int, json_out: bool) -> None:
    """Each one: kind, subscription, operation, action, why, how often it was tried, since when."""
    with given_up(obj) as service:
        rows = service.list(limit)
    if json_out:
        emit_json(rows)
        return
    table = Grid(Col("kind"), Col("message id", ident=True), Col("subscription", ident=True, spare=4), Col("action"),
                 Col("reason", spare=5), Col("attempt", spare=2), Col("deliveries", spare=1), Col("since", spare=3),
                 title=f"Given up on ({len(rows)}, oldest first)")
    for row in rows:
        table.add_row(row.kind.value, row.message_id, row.subscription_id, row.action, row.reason, str(row.attempt),
                      str(row.deliveries), row.enqueued_at.strftime("%Y-%m-%d %H:%M:%S"))
    console().print(table)
    if rows:
        click.echo("Replay one with `lifecycle dlq replay MESSAGE_ID` (or its operation id), all with --all.")


@dlq.command()
@click.argument("message_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every one listed.")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def replay(obj: Context, message_id: str | None, replay_all: bool, json_out: bool) -> None:
    """Send MESSAGE_ID (a dead letter's message id, or an operation id) back through processing."""
    if replay_all == (message_id is not None):
        raise click.UsageError("name one dead letter or failed delivery (MESSAGE_ID) or pass --all")
    with given_up(obj) as service:
        rows = service.list(SCAN)
        chosen = rows if replay_all else [r for r in rows if message_id in (r.message_id, r.operation_id)]
        if not chosen and not replay_all:
            raise CliError(f"no dead letter or failed delivery {message_id} "
                           "(already replayed? `lifecycle dlq list` shows them)")
        replayed = [r for r in chosen if service.replay(r)]
    if json_out:
        emit_json({"replayed": replayed})
        return
    for done in replayed:
        click.echo(f"replayed {done.message_id} ({done.kind.value}): {done.action} of {done.subscription_id}")
    for left in (r for r in chosen if r not in replayed):
        click.echo(f"not replayed {left.message_id}: processed meanwhile, or no payload kept to send")
    click.echo(f"{len(replayed)} sent back to processing; `lifecycle subscriptions show ID` shows what it did.")
