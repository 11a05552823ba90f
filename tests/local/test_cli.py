"""The CLI through click's runner: against a real sandbox in this process, found via a stack.json."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from structlog.testing import capture_logs

from lifecycle.cli.main import main
from lifecycle.cli.output import error_message
from lifecycle.domain.events import Action, Source
from lifecycle.domain.history import FieldChange, HistoryEntry, Outcome
from lifecycle.domain.records import Commit
from lifecycle.local import state
from lifecycle.sandbox import Sandbox
from lifecycle.store.table import TableSubscriptionStore
from tests.sandbox.receiver import Receiver
from tests.unit.builders import subscription


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[Sandbox]:
    # A short auto-accept: the CLI's wait for a final status is then short too.
    with Sandbox(receiver.url, auto_accept_seconds=0.3, retry_delays=()) as running:
        yield running


def write_stack(state_dir: Path, sandbox: Sandbox, connection_string: str = "", prefix: str = "lifecycle") -> None:
    state.write_info(state_dir, state.StackInfo(
        pid=os.getpid(), url="http://127.0.0.1:9", sandbox_api_url=sandbox.api_url,
        sandbox_control_url=sandbox.control_url, storage_connection_string=connection_string, table_prefix=prefix,
        settings_env={**{k: v for k, v in sandbox.settings_env().items() if k != "MARKETPLACE_CLIENT_SECRET"},
                      "STORAGE_CONNECTION_STRING": connection_string, "TABLE_PREFIX": prefix,
                      "LOCAL_QUEUE_PATH": str(state_dir / "queue.sqlite")},
    ))


@pytest.fixture
def state_dir(tmp_path: Path, sandbox: Sandbox) -> Path:
    write_stack(tmp_path, sandbox)
    return tmp_path


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    with capture_logs():  # the sandbox runs in this process: its log lines must not mix into the output
        yield


def run(state_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--state-dir", str(state_dir), *args])


def run_json(state_dir: Path, *args: str) -> Any:
    result = run(state_dir, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def bought(state_dir: Path, *extra: str) -> str:
    purchase = run_json(state_dir, "sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team",
                        "--quantity", "5", "--activated", *extra)
    return str(purchase["subscriptionId"])


def test_without_a_running_stack_it_says_how_to_start_one(tmp_path: Path) -> None:
    result = run(tmp_path, "sandbox", "plans")
    assert result.exit_code == 1
    assert "no running stack found" in result.output
    assert "make run" in result.output
    assert "Traceback" not in result.output


def test_plans_lists_the_catalog_with_seat_bounds(state_dir: Path) -> None:
    plans = run_json(state_dir, "sandbox", "plans")
    team = next(p for p in plans if (p["offerId"], p["planId"]) == ("contoso-seats", "team"))
    assert (team["isPricePerSeat"], team["minQuantity"], team["maxQuantity"]) == (True, 1, 10)


def test_plans_prints_a_table_without_json(state_dir: Path) -> None:
    result = run(state_dir, "sandbox", "plans")
    assert result.exit_code == 0
    assert "contoso-seats" in result.output
    assert "1-10" in result.output


def test_a_purchase_prints_its_id_and_token_and_show_prints_the_truth(state_dir: Path, sandbox: Sandbox) -> None:
    purchase = run_json(state_dir, "sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team",
                        "--quantity", "5")
    assert purchase["status"] == "PendingFulfillmentStart"
    assert sandbox.marketplace.resolve(purchase["token"])["id"] == purchase["subscriptionId"]
    assert run_json(state_dir, "sandbox", "show", purchase["subscriptionId"]) == sandbox.marketplace.get(
        purchase["subscriptionId"])


def test_a_refused_purchase_is_one_line_with_the_sandboxs_message(state_dir: Path) -> None:
    result = run(state_dir, "sandbox", "purchase", "--offer", "contoso-seats", "--plan", "gold")
    assert result.exit_code == 1
    assert "Plan 'gold' is not part of offer 'contoso-seats'" in result.output
    assert "HTTP 400" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_quantity_that_is_not_a_number_is_a_usage_error(state_dir: Path) -> None:
    result = run(state_dir, "sandbox", "change-quantity", "some-id", "many")
    assert result.exit_code == 2
    assert "'many' is not a valid integer" in result.output


def test_a_change_reports_the_webhooks_answer_and_the_final_status(state_dir: Path) -> None:
    sid = bought(state_dir)
    change = run_json(state_dir, "sandbox", "change-quantity", sid, "7")
    assert (change["action"], change["webhookStatus"], change["status"]) == ("ChangeQuantity", 200, "Succeeded")
    assert (change["decidedBy"], change["final"]) == ("auto-accept", True)


def test_no_deliver_changes_the_truth_without_a_webhook(state_dir: Path, receiver: Receiver) -> None:
    sid = bought(state_dir)
    change = run_json(state_dir, "sandbox", "change-plan", sid, "business", "--no-deliver")
    assert (change["webhookStatus"], change["status"]) == (None, "Succeeded")
    assert receiver.deliveries == []


def test_force_sends_a_change_the_marketplace_would_refuse_and_a_4xx_fails_it(
    state_dir: Path, receiver: Receiver
) -> None:
    sid = bought(state_dir)
    assert run(state_dir, "sandbox", "change-quantity", sid, "11").exit_code == 1  # team allows 1-10
    receiver.default = 400
    change = run_json(state_dir, "sandbox", "change-quantity", sid, "11", "--force")
    assert (change["webhookStatus"], change["status"], change["decidedBy"]) == (400, "Failed", "publisher-4xx")
    assert run_json(state_dir, "sandbox", "show", sid)["quantity"] == 5


def test_force_still_needs_a_subscribed_subscription(state_dir: Path) -> None:
    sid = bought(state_dir)
    run_json(state_dir, "sandbox", "suspend", sid, "--no-deliver")
    result = run(state_dir, "sandbox", "change-quantity", sid, "11", "--force")
    assert result.exit_code == 1
    assert "not allowed while the subscription is Suspended" in result.output


def test_show_of_an_unknown_subscription_is_the_sandboxs_404(state_dir: Path) -> None:
    result = run(state_dir, "sandbox", "show", "no-such-subscription")
    assert result.exit_code == 1
    assert "Subscription no-such-subscription not found (HTTP 404)" in result.output


def test_notify_only_actions_and_redelivery(state_dir: Path, receiver: Receiver) -> None:
    sid = bought(state_dir)
    suspend = run_json(state_dir, "sandbox", "suspend", sid)
    assert (suspend["webhookStatus"], suspend["status"], suspend["decidedBy"]) == (200, "Succeeded", "marketplace")

    again = run_json(state_dir, "sandbox", "redeliver", suspend["operationId"], "--times", "3")

    assert again == {"operationId": suspend["operationId"], "webhookStatuses": [200, 200, 200],
                     "webhookAnswers": ["", "", ""], "status": "Succeeded"}  # the receiver answers no body
    assert len(receiver.deliveries) == 4


def test_an_unknown_subscription_is_the_sandboxs_404_message(state_dir: Path) -> None:
    result = run(state_dir, "sandbox", "suspend", "no-such-subscription")
    assert result.exit_code == 1
    assert "not found" in result.output
    assert "HTTP 404" in result.output


def test_a_stack_whose_sandbox_does_not_answer_is_reported(tmp_path: Path) -> None:
    with Sandbox() as stopped_soon:
        write_stack(tmp_path, stopped_soon)
    result = run(tmp_path, "sandbox", "plans")
    assert result.exit_code == 1
    assert "does not answer" in result.output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"code": "BadArgument", "message": "bad plan"}}, "bad plan (HTTP 400)"),
        ({"message": "not here", "code": "NotFound"}, "not here (HTTP 400)"),
        ({"Error": {"Code": "Conflict", "Message": "already final"}}, "already final (HTTP 400)"),
        (["odd"], "HTTP 400"),
    ],
)
def test_error_messages_are_found_in_every_shape_the_sandbox_answers(body: object, message: str) -> None:
    assert error_message(httpx.Response(400, json=body)) == message


@pytest.mark.azurite
def test_subscriptions_show_prints_our_state_and_history_newest_first(
    tmp_path: Path, sandbox: Sandbox, azurite_connection_string: str, table_prefix: str
) -> None:
    write_stack(tmp_path, sandbox, azurite_connection_string, table_prefix)
    ours = subscription()
    entries = [
        HistoryEntry(subscription_id=ours.id, operation_id=f"op-{n}", action=Action.CHANGE_QUANTITY,
                     source=Source.WEBHOOK, outcome=Outcome.APPLIED, recorded_at=datetime(2026, 11, 1, n, tzinfo=UTC),
                     changes=(FieldChange("quantity", str(n), str(n + 1)),))
        for n in (1, 2)
    ]
    with TableSubscriptionStore.from_connection_string(azurite_connection_string, table_prefix) as store:
        store.commit(Commit(subscription=ours, expected=None, history=tuple(entries)))

    shown = run_json(tmp_path, "subscriptions", "show", ours.id)

    assert (shown["subscription"]["id"], shown["subscription"]["status"]) == (ours.id, "Subscribed")
    assert shown["version"] == 2
    assert shown["subscription"]["term"] == {"unit": "P1M", "start": "2026-11-01", "end": "2026-11-30"}
    assert [e["operation_id"] for e in shown["history"]] == ["op-2", "op-1"]
    assert shown["history"][0]["changes"] == [{"field": "quantity", "before": "2", "after": "3"}]
    table = run(tmp_path, "subscriptions", "show", ours.id)
    assert table.exit_code == 0
    assert "History (newest first)" in table.output


@pytest.mark.azurite
def test_subscriptions_show_of_an_unknown_subscription_says_how_one_becomes_known(
    tmp_path: Path, sandbox: Sandbox, azurite_connection_string: str, table_prefix: str
) -> None:
    write_stack(tmp_path, sandbox, azurite_connection_string, table_prefix)
    unknown = str(uuid.uuid4())
    result = run(tmp_path, "subscriptions", "show", unknown)
    assert result.exit_code == 1
    assert f"subscription {unknown} is not known here" in result.output
    assert "after its first webhook, its activation, or a `lifecycle reconcile` run" in result.output


def test_subscriptions_show_of_an_id_that_is_no_guid_says_only_that(tmp_path: Path) -> None:
    result = run(tmp_path, "subscriptions", "show", "nope")
    assert result.exit_code == 2
    assert "Invalid value for 'SUBSCRIPTION_ID': 'nope' is not a GUID" in result.output
    assert "not known here" not in result.output


def test_a_fault_makes_the_next_matching_api_calls_fail_and_clear_ends_it(state_dir: Path, sandbox: Sandbox) -> None:
    sid = bought(state_dir)
    url = f"{sandbox.api_url}/saas/subscriptions/{sid}?api-version=2018-08-31"

    def status() -> int:
        return httpx.get(url, trust_env=False, timeout=5).status_code

    shown = run(state_dir, "sandbox", "fault", "--status", "403", "--path", sid, "--method", "GET", "--times", "5")
    assert (shown.exit_code, shown.output) == (0, f"the next 5 GET call(s) on paths containing {sid} answer 403\n")
    assert status() == 403
    assert run(state_dir, "sandbox", "fault", "--clear").exit_code == 0
    assert status() == 401  # served again: refused only for want of a token
    assert run(state_dir, "sandbox", "fault").exit_code == 2  # neither --status nor --clear


@pytest.mark.parametrize(("level", "exit_code"), [("warn", 1), ("Fatal", 1), ("INFO", 1), ("loud", 2)])
def test_the_cli_takes_log_level_as_the_worker_does(tmp_path: Path, level: str, exit_code: int) -> None:
    # 1: past the option, to the missing stack; 2: the option itself refused.
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path), "sandbox", "plans"], env={"LOG_LEVEL": level})
    assert result.exit_code == exit_code, result.output
