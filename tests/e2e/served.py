"""`lifecycle serve` in a subprocess, driven through the CLI like a person.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

NEVER_DURING_A_TEST = "0 0 0 1 1 *"
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "lifecycle"
# The console script once the project is installed (`make` does it); the module otherwise.
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "lifecycle.cli.main"]


class ServedStack:
    """One `lifecycle serve` process on `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        # The stack's own reconcile timer stays out of the way (New Year's midnight) unless a test
        # sets another: a run at :00 or :30 would add history entries that tests count exactly.
        self.env = {**os.environ, "RECONCILE_SCHEDULE": NEVER_DURING_A_TEST, "LIFECYCLE_STATE_DIR": str(state_dir)}
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
        """`lifecycle ARGS --json`, asserting success; the parsed output."""
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`lifecycle ARGS` as is: for exit codes, error messages and terminal output."""
        return subprocess.run([*CLI, *args], capture_output=True, text=True, env=self.env, cwd=ROOT,
                              timeout=timeout, check=False)

    def ours(self, subscription_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> Any:
        """`subscriptions show` once `until` holds for it (processing runs behind the webhook);
        AssertionError with the last state if it does not within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.cli("subscriptions", "show", subscription_id)
            if until(shown["subscription"]):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {timeout:g} s; ours: {shown['subscription']}")
            time.sleep(0.2)

    def operation(self, operation_id: str) -> Any:
        return httpx.get(f"{self.info['sandbox_control_url']}/operations/{operation_id}", trust_env=False).json()


def same_as_truth(ours: dict[str, Any], truth: dict[str, Any]) -> bool:
    term = truth["term"]
    return (ours["status"], ours["plan_id"], ours.get("quantity"), ours["term"]) == (
        truth["saasSubscriptionStatus"], truth["planId"], truth.get("quantity"),
        {"unit": term["termUnit"], "start": term["startDate"][:10], "end": term["endDate"][:10]},
    )
