"""The acceptance scenario: `lifecycle serve` in a subprocess, driven through the CLI like a person.

The stack runs on free ports with a temporary state dir; every step is a `lifecycle ...
--json` subprocess pointed at that dir, so discovery, the CLI, the local server, the
queue, the processing loops, Azurite and the sandbox are all the real ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "lifecycle"
# The console script once the project is installed (`make` does it); the module otherwise.
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "lifecycle.cli.main"]


class ServedStack:
    """One `lifecycle serve` process on `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.env = {**os.environ, "LIFECYCLE_STATE_DIR": str(state_dir)}
        self.log = state_dir.parent / f"{state_dir.name}-serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def start(self, timeout: float = 30.0) -> ServedStack:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([*CLI, "serve", "--port", "0"], stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early:\n{self.log.read_text()[-3000:]}"
            if self._healthy():
                return self
            time.sleep(0.05)
        raise AssertionError(f"no healthy stack within {timeout:g} s:\n{self.log.read_text()[-3000:]}")

    def _healthy(self) -> bool:
        try:
            self.info = json.loads((self.state_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return False
        if self.process is None or self.info.get("pid") != self.process.pid:
            return False  # a record left by the previous run
        try:
            return httpx.get(self.info["url"] + "/api/health", trust_env=False, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def children(self) -> set[int]:
        assert self.process is not None
        found: set[int] = set()
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
                found.update(int(pid) for pid in (task / "children").read_text().split())
        return found

    def stop(self) -> float:
        """SIGINT, as Ctrl-C; the seconds until the process exited, asserting a clean exit."""
        assert self.process is not None
        children = self.children()
        assert children, "Azurite should run as a child of the stack"
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        returncode = self.process.wait(timeout=10)
        seconds = time.monotonic() - started
        assert returncode == 0, self.log.read_text()[-3000:]
        assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
        assert not (self.state_dir / "stack.json").exists()
        self.process = None
        return seconds

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str) -> Any:
        done = subprocess.run([*CLI, *args, "--json"], capture_output=True, env=self.env, cwd=ROOT, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr.decode()
        return json.loads(done.stdout)

    def ours(self, subscription_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> Any:
        """`subscriptions show` once `until` holds for it (processing runs behind the webhook)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.cli("subscriptions", "show", subscription_id)
            if until(shown["subscription"]) or time.monotonic() > deadline:
                return shown
            time.sleep(0.2)

    def operation(self, operation_id: str) -> Any:
        return httpx.get(f"{self.info['sandbox_control_url']}/operations/{operation_id}", trust_env=False).json()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedStack]:
    stack = ServedStack(tmp_path / "state")
    yield stack
    stack.kill()


def same_as_truth(ours: dict[str, Any], truth: dict[str, Any]) -> bool:
    term = truth["term"]
    return (ours["status"], ours["plan_id"], ours.get("quantity"), ours["term"]) == (
        truth["saasSubscriptionStatus"], truth["planId"], truth.get("quantity"),
        {"unit": term["termUnit"], "start": term["startDate"][:10], "end": term["endDate"][:10]},
    )


def test_the_acceptance_scenario_through_the_cli(served: ServedStack) -> None:
    served.start()
    bought = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "5",
                        "--activated")
    sid = bought["subscriptionId"]
    assert (bought["status"], bought["token"]) == ("Subscribed", bought["token"] or None)

    plan = served.cli("sandbox", "change-plan", sid, "business")
    assert (plan["webhookStatus"], plan["status"], plan["decidedBy"]) == (200, "Succeeded", "publisher-ack")
    seats = served.cli("sandbox", "change-quantity", sid, "20")
    assert (seats["webhookStatus"], seats["status"], seats["decidedBy"]) == (200, "Succeeded", "publisher-ack")
    before = served.ours(sid, lambda ours: ours["quantity"] == 20)["subscription"]

    above = served.cli("sandbox", "change-quantity", sid, "60", "--force")  # business allows 5-50
    assert (above["webhookStatus"], above["status"], above["decidedBy"]) == (400, "Failed", "publisher-4xx")
    rejected = served.ours(sid, lambda ours: True)
    assert rejected["subscription"] == before
    assert rejected["history"][0]["operation_id"] == above["operationId"]
    assert (rejected["history"][0]["outcome"], rejected["history"][0]["changes"]) == ("rejected", [])

    for action in ("suspend", "reinstate", "renew"):
        done = served.cli("sandbox", action, sid)
        assert (done["webhookStatus"], done["status"]) == (200, "Succeeded"), action
    renewed = served.ours(sid, lambda ours: same_as_truth(ours, served.cli("sandbox", "show", sid)))

    again = served.cli("sandbox", "redeliver", seats["operationId"], "--times", "3")
    assert again["webhookStatuses"] == [200, 200, 200]
    assert served.cli("subscriptions", "show", sid) == renewed  # nothing changed, nothing recorded

    gone = served.cli("sandbox", "unsubscribe", sid)
    assert (gone["webhookStatus"], gone["status"]) == (200, "Succeeded")
    truth = served.cli("sandbox", "show", sid)
    final = served.ours(sid, lambda ours: ours["status"] == "Unsubscribed")
    assert same_as_truth(final["subscription"], truth)

    changes = [(c["field"], c["before"], c["after"]) for e in final["history"] for c in e["changes"]]
    for change in [("plan_id", "team", "business"), ("quantity", "5", "20"), ("status", "Subscribed", "Suspended"),
                   ("status", "Suspended", "Subscribed"), ("status", "Subscribed", "Unsubscribed")]:
        assert changes.count(change) == 1, change
    assert len([c for c in changes if c[0] == "term" and c[1]]) == 1  # the renewal; the first term was learnt
    applied = [e["operation_id"] for e in final["history"] if e["outcome"] == "applied"]
    assert len(applied) == len(set(applied)) == 6  # each real change once: plan, seats, suspend ... unsubscribe
    operations = [plan, seats, above, gone]
    assert all(served.operation(op["operationId"])["protocol_errors"] == [] for op in operations)

    assert served.stop() < 5


def test_a_restart_on_the_same_state_dir_keeps_our_state_and_the_marketplaces(served: ServedStack) -> None:
    served.start()
    sid = served.cli("sandbox", "purchase", "--offer", "contoso-seats", "--plan", "team", "--quantity", "3",
                     "--activated")["subscriptionId"]
    assert served.cli("sandbox", "change-quantity", sid, "7")["status"] == "Succeeded"
    served.ours(sid, lambda ours: ours["quantity"] == 7)
    second = subprocess.run([*CLI, "serve", "--port", "0"], capture_output=True, env=served.env, cwd=ROOT,
                            timeout=30, check=False)
    assert second.returncode == 1
    assert b"already running" in second.stderr
    served.stop()

    served.start()
    assert served.cli("subscriptions", "show", sid)["subscription"]["quantity"] == 7
    truth = served.cli("sandbox", "show", sid)
    assert (truth["saasSubscriptionStatus"], truth["quantity"]) == ("Subscribed", 7)
    # The same tenant, app and secret: the worker still authenticates the sandbox's webhooks and API.
    change = served.cli("sandbox", "change-quantity", sid, "8")
    assert (change["webhookStatus"], change["status"], change["decidedBy"]) == (200, "Succeeded", "publisher-ack")
    served.stop()
