"""The real parts, wired by the composition root: sandbox over loopback HTTP, Azurite tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifecycle.bootstrap import Worker, build
from lifecycle.sandbox import ManualClock, Sandbox
from lifecycle.settings import Settings
from tests.e2e.served import ServedStack


@pytest.fixture
def sandbox_clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def sandbox(sandbox_clock: ManualClock) -> Iterator[Sandbox]:
    with Sandbox(auto_accept_seconds=10.0, clock=sandbox_clock) as running:
        yield running


@pytest.fixture
def worker_env(sandbox: Sandbox, azurite_connection_string: str, table_prefix: str, tmp_path: Path) -> dict[str, str]:
    """The settings, as environment variables, of a worker on the sandbox and Azurite."""
    return sandbox.settings_env() | {
        "STORAGE_CONNECTION_STRING": azurite_connection_string,
        "TABLE_PREFIX": table_prefix,
        "LOCAL_QUEUE_PATH": str(tmp_path / "queue.sqlite"),
    }


@pytest.fixture
def worker(worker_env: dict[str, str]) -> Worker:
    return build(Settings.from_env(worker_env))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedStack]:
    """A `lifecycle serve` subprocess on a temporary state dir; `.start()` it in the test."""
    stack = ServedStack(tmp_path / "state")
    yield stack
    stack.kill()
