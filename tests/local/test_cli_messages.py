"""What a person reads from the CLI: whole ids at 80 columns, errors in the CLI's own words and
nothing else on stderr, tombstones that say what they did. Click's runner against a real
sandbox and Azurite in this process, found through a stack.json as the running stack's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lifecycle.cli.main import main
from lifecycle.domain.events import Action, Source
from lifecycle.domain.history import HistoryEntry, Outcome
from lifecycle.domain.model import Status
from lifecycle.domain.records import Commit
from lifecycle.local import state
from lifecycle.local.queue import LocalQueue
from lifecycle.ports import QueueMessage
from lifecycle.sandbox import Sandbox
from lifecycle.services.reconcile import LEASE_NAME
from lifecycle.store.table import TableSubscriptionStore
from tests.local.test_cli import quiet_logs, write_stack  # noqa: F401 (quiet_logs: an autouse fixture)
from tests.sandbox.receiver import Receiver
from tests.unit.builders import subscription

WIDTH = 80  # a terminal's, and rich's width when stdout is not one


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    receiver = Receiver().start()
    who = state.identity(tmp_path)  # what the CLI signs in with, as the running stack's sandbox knows it
    with Sandbox(receiver.url, auto_accept_seconds=0.3, retry_delays=(), tenant_id=who.tenant_id,
                 client_id=who.client_id, client_secret=who.client_secret) as running:
        yield running
    receiver.stop()


@pytest.fixture
def store(azurite_connection_string: str, table_prefix: str) -> Iterator[TableSubscriptionStore]:
    with TableSubscriptionStore.from_connection_string(azurite_connection_string, table_prefix) as opened:
        yield opened


@pytest.fixture
def state_dir(tmp_path: Path, sandbox: Sandbox, azurite_connection_string: str, table_prefix: str) -> Path:
    write_stack(tmp_path, sandbox, azurite_connection_string, table_prefix)
    return tmp_path


def run(state_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--state-dir", str(state_dir), *args], env={"COLUMNS": str(WIDTH)})


def new_id() -> str:
    return str(uuid.uuid4())


def lines_with(result: Result, text: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if text in line]


# Ids are always whole, whatever the width.

@pytest.mark.azurite
def test_subscriptions_list_shows_every_id_whole_at_80_columns(state_dir: Path, store: TableSubscriptionStore) -> None:
    ours = [subscription(beneficiary_tenant_id=new_id(), purchaser_tenant_id=new_id()) for _ in range(2)]
    for sub in ours:
        store.commit(Commit(subscription=sub, expected=None))

    result = run(state_dir, "subscriptions", "list")

    assert result.exit_code == 0, result.output
    assert all(len(lines_with(result, sub.id)) == 1 for sub in ours), result.stdout
    assert "…" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= WIDTH


@pytest.mark.azurite
def test_subscriptions_history_shows_operation_ids_whole_at_80_columns(
    state_dir: Path, store: TableSubscriptionStore
) -> None:
    sub = subscription()
    operations = [new_id(), new_id()]
    entries = tuple(HistoryEntry(subscription_id=sub.id, operation_id=op, action=Action.CHANGE_QUANTITY,
                                 source=Source.RECONCILIATION, outcome=Outcome.NOT_APPLIED, reason="a long reason " * 4,
                                 recorded_at=datetime(2026, 11, 1, n, tzinfo=UTC)) for n, op in enumerate(operations))
    store.commit(Commit(subscription=sub, expected=None, history=entries))

    for command in ("history", "show"):
        result = run(state_dir, "subscriptions", command, sub.id)

        assert result.exit_code == 0, result.output
        assert all(len(lines_with(result, op)) == 1 for op in operations), result.stdout
        assert "…" not in result.stdout


@pytest.mark.azurite
def test_dlq_list_shows_message_ids_and_headers_whole_at_80_columns(state_dir: Path) -> None:
    sid, operation = new_id(), new_id()
    queue = LocalQueue(state_dir / "queue.sqlite")
    body = json.dumps({"id": operation, "activityId": new_id(), "subscriptionId": sid, "action": "Suspend",
                       "timeStamp": "2026-11-01T12:00:00Z"})
    queue.send(QueueMessage(session_id=sid, message_id=operation, body=body))
    received = queue.receive()
    assert received is not None
    queue.dead_letter(received.lock_token, "the operations API refused it: HTTP 403")

    result = run(state_dir, "dlq", "list")

    assert result.exit_code == 0, result.output
    assert len(lines_with(result, operation)) == 1, result.stdout
    header = next(line for line in result.stdout.splitlines() if "kind" in line)
    assert "message id" in header
    assert "…" not in result.stdout


@pytest.mark.azurite
def test_entitlements_and_tombstones_show_subscription_ids_whole_at_80_columns(
    state_dir: Path, store: TableSubscriptionStore
) -> None:
    tenant = new_id()
    sub = subscription(beneficiary_tenant_id=tenant)
    store.commit(Commit(subscription=sub, expected=None))
    assert run(state_dir, "reconcile", "tombstone", sub.id, "--reason", "a test purchase").exit_code == 0

    for args in (("entitlements", tenant), ("reconcile", "tombstones")):
        result = run(state_dir, *args)

        assert result.exit_code == 0, result.output
        assert len(lines_with(result, sub.id)) == 1, result.stdout


# Tombstones.

def test_tombstoning_an_id_that_is_no_guid_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, "reconcile", "tombstone", "nope", "--reason", "x")
    assert result.exit_code == 2
    assert "Invalid value for 'SUBSCRIPTION_ID': 'nope' is not a GUID" in result.output
    assert "tombstoned" not in result.output


@pytest.mark.azurite
def test_tombstoning_a_subscription_we_never_knew_says_it_will_not_be_adopted(state_dir: Path) -> None:
    unknown = new_id()
    result = run(state_dir, "reconcile", "tombstone", unknown, "--reason", "a test purchase")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{unknown}: tombstoned; not known here: reconciliation will not adopt it\n"
    assert [stone["subscription_id"] for stone in _json(run(state_dir, "reconcile", "tombstones", "--json"))] == [
        unknown]


@pytest.mark.azurite
def test_tombstoning_a_known_subscription_says_reconciliation_leaves_it_alone(
    state_dir: Path, store: TableSubscriptionStore
) -> None:
    sub = subscription()
    store.commit(Commit(subscription=sub, expected=None))
    result = run(state_dir, "reconcile", "tombstone", sub.id)
    assert result.stdout == f"{sub.id}: tombstoned; reconciliation leaves it alone\n"


@pytest.mark.azurite
def test_untombstoning_says_whether_there_was_a_tombstone(state_dir: Path) -> None:
    sid = new_id()
    assert run(state_dir, "reconcile", "untombstone", sid).stdout == f"{sid}: was not tombstoned\n"
    run(state_dir, "reconcile", "tombstone", sid)
    assert run(state_dir, "reconcile", "untombstone", sid).stdout == f"{sid}: no longer tombstoned\n"
    assert run(state_dir, "reconcile", "untombstone", sid).stdout == f"{sid}: was not tombstoned\n"


# Errors: the CLI's own words, and nothing else on stderr.

@pytest.mark.azurite
@pytest.mark.azurite
def test_a_run_refused_for_the_lease_prints_only_the_friendly_error(state_dir: Path,
                                                                   store: TableSubscriptionStore) -> None:
    assert store.acquire_lease(LEASE_NAME, "the timer", now=datetime.now(UTC), ttl=timedelta(minutes=10))
    result = run(state_dir, "reconcile")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: not started: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("subscriptions", "list", "--renewals-at-risk", "-3"), "Invalid value for '--renewals-at-risk'"),
    (("subscriptions", "list", "--limit", "0"), "Invalid value for '--limit'"),
    (("subscriptions", "list", "--tenant", "nope"), "Invalid value for '--tenant': 'nope' is not a GUID"),
    (("subscriptions", "list", "--purchaser", "nope"), "Invalid value for '--purchaser': 'nope' is not a GUID"),
    (("subscriptions", "list", "--offer", "a b"), "Invalid value for '--offer': 'a b'"),
    (("entitlements", "nope"), "Invalid value for 'TENANT_ID': 'nope' is not a GUID"),
    (("subscriptions", "history", "nope"), "Invalid value for 'SUBSCRIPTION_ID': 'nope' is not a GUID"),
])
def test_a_bad_value_is_a_usage_error_naming_the_clis_option(tmp_path: Path, args: tuple[str, ...],
                                                             message: str) -> None:
    result = run(tmp_path, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    for http_name in ("renewalsWithinDays", "tenantId", "subscription id"):
        assert http_name not in result.stderr


def test_an_unknown_status_lists_the_statuses_as_they_are_shown(tmp_path: Path) -> None:
    result = run(tmp_path, "subscriptions", "list", "--status", "Bogus")
    assert result.exit_code == 2
    assert "'Bogus' is not one of " + ", ".join(s.value for s in Status) in result.stderr


@pytest.mark.azurite
def test_a_status_in_any_case_is_accepted(state_dir: Path, store: TableSubscriptionStore) -> None:
    sub = subscription(Status.SUSPENDED)
    store.commit(Commit(subscription=sub, expected=None))
    listed = _json(run(state_dir, "subscriptions", "list", "--status", "suspended", "--json"))
    assert sub.id in [s["id"] for s in listed["subscriptions"]]


# Product.

@pytest.mark.azurite
def test_product_pending_without_a_product_is_an_answer_not_an_error(state_dir: Path) -> None:
    result = run(state_dir, "product", "pending")
    assert result.exit_code == 0, result.output
    assert "no product is configured" in result.stdout
    assert _json(run(state_dir, "product", "pending", "--json")) == {"pending": [], "configured": False}


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_damaged_local_queue_file_is_a_one_line_error_naming_it(state_dir: Path) -> None:
    (state_dir / "queue.sqlite").write_bytes(b"this is not a SQLite database, whatever its name says" * 100)

    result = run(state_dir, "dlq", "list")

    assert result.exit_code == 1
    assert f"local queue {state_dir / 'queue.sqlite'}: file is not a database" in result.stderr
    assert "Traceback" not in result.output
