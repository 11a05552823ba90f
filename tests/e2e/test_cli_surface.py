"""What a newcomer following the README meets on a served stack: pages that end, a redelivery
that shows our webhook's answer, 401s that say what is wrong, log lines that say where the key
is, errors without log noise. One stack for the module; each test buys its own subscriptions."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lifecycle.cli.output import wait_for
from tests.e2e.served import ServedStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStack]:
    stack = ServedStack(tmp_path_factory.mktemp("surface") / "state")
    try:
        yield stack.start()
    finally:
        stack.kill()


def suspended(served: ServedStack) -> dict[str, Any]:
    """A purchase we learnt of through its Suspend webhook; the suspension's result."""
    sid = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "5",
                     "--activated")["subscriptionId"]
    suspend: dict[str, Any] = served.cli("sandbox", "suspend", sid)

    def shown() -> str:  # processing runs a moment behind the webhook: unknown here until it has
        return served.run("subscriptions", "show", sid, "--json").stdout

    assert '"Suspended"' in wait_for(shown, lambda out: '"Suspended"' in out, timeout=15.0)
    return suspend


def test_a_page_offers_more_only_when_more_match(served: ServedStack) -> None:
    ids = {suspended(served)["subscriptionId"] for _ in range(2)}  # this module's only suspended ones

    whole = served.run("subscriptions", "list", "--status", "Suspended", "--limit", "2")
    first = served.run("subscriptions", "list", "--status", "Suspended", "--limit", "1")
    token = first.stdout.split("--continuation ")[-1].strip()
    last = served.run("subscriptions", "list", "--status", "Suspended", "--limit", "1", "--continuation", token)

    assert all(sid in whole.stdout for sid in ids)
    assert "--continuation" not in whole.stdout
    assert "--continuation" in first.stdout
    assert "Subscriptions (1)" in last.stdout
    assert "--continuation" not in last.stdout
    assert {sid for sid in ids if sid in first.stdout + last.stdout} == ids


def test_a_redelivery_shows_what_our_webhook_answered(served: ServedStack) -> None:
    operation = suspended(served)["operationId"]

    again = served.cli("sandbox", "redeliver", operation, "--times", "3")
    shown = served.run("sandbox", "redeliver", operation)

    assert (again["webhookStatuses"], again["webhookAnswers"]) == ([200] * 3, ["already processed"] * 3)
    assert "already processed" in shown.stdout


def test_the_ops_api_says_whether_the_key_was_missing_or_wrong_and_where_it_is(served: ServedStack) -> None:
    url = served.info["url"] + "/api/subscriptions"
    key_file = str(served.state_dir / "ops-api-key")

    missing = httpx.get(url, trust_env=False, timeout=10)
    wrong = httpx.get(url, headers={"x-functions-key": "not-the-key-42"}, trust_env=False, timeout=10)

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "no function key given" in missing.json()["error"]
    assert key_file in missing.json()["error"]
    assert "does not match" in wrong.json()["error"]
    assert key_file in wrong.json()["error"]
    assert "not-the-key-42" not in wrong.text


def test_the_start_logs_where_the_ops_api_key_is_never_the_key(served: ServedStack) -> None:
    key = (served.state_dir / "ops-api-key").read_text().strip()
    log = served.log.read_text()
    [ready] = [json.loads(line) for line in log.splitlines() if '"ops_api.ready"' in line]

    assert str(served.state_dir / "ops-api-key") in ready.values()
    assert key not in log


def test_a_refused_activation_prints_the_friendly_error_alone(served: ServedStack) -> None:
    refused = served.run("activate", "garbage")

    assert refused.returncode == 1
    assert refused.stderr == "Error: the marketplace token is invalid or has expired\n"


def test_a_busy_port_names_the_option_that_picks_another(served: ServedStack) -> None:
    port = served.info["url"].rsplit(":", 1)[1]
    other = served.state_dir.parent / "other-state"

    busy: subprocess.CompletedProcess[str] = served.run("--state-dir", str(other), "serve", "--port", port)

    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "--port or LIFECYCLE_PORT picks another port" in busy.stderr
