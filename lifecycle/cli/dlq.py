"""`lifecycle dlq list|replay`: deliveries the queue gave up on, and sending them back.

Locally the dead letters are the stack's queue file's; with `--target azure`, the Service
Bus queue's dead-letter sub-queue. A replay goes through the same processing as any
delivery, marked as source "replay" in the history: one whose operation was applied
meanwhile changes nothing. The processor keys everything by the operation id in the
body, so a replay's new message id (Service Bus needs one) makes no difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import click
from rich.table import Table

from lifecycle.cli.output import CliError, Context, console, emit_json
from lifecycle.errors import InvalidPayload, LifecycleError
from lifecycle.logs import configure
from lifecycle.parsing import load_json, parse_webhook

if TYPE_CHECKING:
    from lifecycle.ports import DeadLetter, DeadLetters

SCAN = 1000  # dead letters read to find the ones a replay names


@dataclass(frozen=True, slots=True)
class Row:
    """One dead letter as ops read it."""

    message_id: str
    subscription_id: str
    operation_id: str
    action: str
    reason: str
    attempt: int  # our own re-sends (the API kept failing)
    deliveries: int  # the broker's deliveries of this message
    enqueued_at: datetime
    source: str


def row(dead: DeadLetter) -> Row:
    message = dead.message
    try:
        event = parse_webhook(load_json(message.body))
        operation_id, action = event.operation_id, event.action.value
    except InvalidPayload:
        operation_id, action = "", "(not a webhook)"
    return Row(message.message_id, message.session_id, operation_id, action, dead.reason, message.attempt,
               dead.delivery_count, dead.enqueued_at, message.source)


@contextmanager
def dead_letters(obj: Context) -> Iterator[DeadLetters]:
    from lifecycle.cli import target  # the worker (and the Azure SDKs) load only when a command runs

    configure("WARNING")  # stderr, and only what goes wrong
    with target.worker(obj) as built:
        if built.dead_letters is None:
            raise CliError("this deployment's queue keeps no dead letters we can read")
        try:
            yield built.dead_letters
        except LifecycleError as error:
            raise CliError(f"the queue does not answer: {type(error).__name__}: {error}") from None


@click.group()
def dlq() -> None:
    """Dead-lettered deliveries: list them, replay them through processing."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, SCAN), default=100, show_default=True, help="How many, oldest first.")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj: Context, limit: int, json_out: bool) -> None:
    """Each dead letter: subscription, operation, action, why, how often it was tried, since when."""
    with dead_letters(obj) as queue:
        rows = [row(dead) for dead in queue.dead_letters(limit)]
    if json_out:
        emit_json(rows)
        return
    table = Table("message id", "subscription", "action", "reason", "attempt", "deliveries", "enqueued",
                  title=f"Dead letters ({len(rows)}, oldest first)", title_justify="left")
    for dead in rows:
        table.add_row(dead.message_id, dead.subscription_id, dead.action, dead.reason, str(dead.attempt),
                      str(dead.deliveries), dead.enqueued_at.strftime("%Y-%m-%d %H:%M:%S"))
    console().print(table)
    if rows:
        click.echo("Replay one with `lifecycle dlq replay MESSAGE_ID` (or its operation id), all with --all.")


@dlq.command()
@click.argument("message_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@click.option("--json", "json_out", is_flag=True, help="Print JSON.")
@click.pass_obj
def replay(obj: Context, message_id: str | None, replay_all: bool, json_out: bool) -> None:
    """Send MESSAGE_ID (a dead letter's message id or operation id) back through processing."""
    if replay_all == (message_id is not None):
        raise click.UsageError("name one dead letter (MESSAGE_ID) or pass --all")
    with dead_letters(obj) as queue:
        rows = [row(dead) for dead in queue.dead_letters(SCAN)]
        chosen = rows if replay_all else [r for r in rows if message_id in (r.message_id, r.operation_id)]
        if not chosen and not replay_all:
            raise CliError(f"no dead letter {message_id} (already replayed? `lifecycle dlq list` shows them)")
        replayed = [r for r in chosen if queue.replay(r.message_id)]
    if json_out:
        emit_json({"replayed": replayed})
        return
    for done in replayed:
        click.echo(f"replayed {done.message_id}: {done.action} of {done.subscription_id}")
    click.echo(f"{len(replayed)} sent back to processing; `lifecycle subscriptions show ID` shows what it did.")
