"""Worker processes the soak starts, SIGKILLs and starts again; each run logs to its own file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """`python -m soak.worker` with fixed arguments; `logs` lists every run's log file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], directory: Path,
                 health_url: str | None = None) -> None:
        self.name = name
        self._args = args
        self._env = dict(env)
        self._directory = directory
        self._health_url = health_url
        self._process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        self.killed_logs: set[Path] = set()  # their last line may be cut short by the kill

    def start(self, timeout: float = 60.0) -> None:
        run = len(self.logs) + 1
        log, ready = self._directory / f"{self.name}-{run}.log", self._directory / f"{self.name}-{run}.ready"
        self.logs.append(log)
        with open(log, "wb") as output:
            self._process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
                [sys.executable, "-m", "soak.worker", *self._args, "--ready", str(ready)],
                stdout=output, stderr=subprocess.STDOUT, env=self._env, cwd=ROOT,
            )
        deadline = time.monotonic() + timeout
        while not (ready.exists() and self._healthy()):
            if self._process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited at start:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {self.name} not ready within {timeout:g} s")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        if self._health_url is None:
            return True
        try:
            return httpx.get(self._health_url, trust_env=False, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or settled."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self.killed_logs.add(self.logs[-1])
            self._process = None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, as a platform stopping the worker; SIGKILL if it outlasts `timeout`."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


def worker_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: ours minus anything that could point it elsewhere."""
    inherited = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")}
    return inherited | dict(settings_env) | {"PYTHONUNBUFFERED": "1"}
