"""Shared fixtures. Azurite is started once per test session unless one is given.

Set AZURITE_TABLE_CONNECTION_STRING to run against an Azurite (or a real account) you
started yourself; otherwise the session starts Azurite in memory on a free port and
stops it at the end. Tests use random ids and table names so they can share it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from lifecycle.local.azurite import Azurite, find_executable
from lifecycle.retry import set_testing

ROOT = Path(__file__).resolve().parent.parent

# Retry back-offs never sleep in tests (stamina-style test mode); the few tests that
# measure a real pause (Retry-After) turn it off for themselves.
set_testing(True)


@pytest.fixture(autouse=True)
def structlog_defaults() -> None:
    """Each test starts from structlog's defaults. `configure` is process-wide: a level left
    by an earlier test (the soak configures WARNING) would filter out the INFO lines a later
    test captures with `capture_logs`, so such tests failed or passed by the order they ran in."""
    structlog.reset_defaults()


@pytest.fixture(scope="session", autouse=True)
def no_settings_files(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A `.env` or `local.settings.json` in the checkout must not reach the `lifecycle` processes
    tests start: they read their settings files from an empty directory of their own."""
    os.environ["LIFECYCLE_CONFIG_DIR"] = str(tmp_path_factory.mktemp("no-settings-files"))


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    given = os.environ.get("AZURITE_TABLE_CONNECTION_STRING")
    if given:
        yield given
        return
    with Azurite(find_executable(ROOT)) as azurite:
        yield azurite.connection_string


@pytest.fixture
def table_prefix() -> str:
    """A fresh table-name prefix per test (letters and digits only, as tables require)."""
    return "t" + uuid.uuid4().hex[:10]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for Azurite, however indirectly, is marked `azurite`, so `-m "not azurite"`
    runs exactly the tests that need no emulator (a hand-written mark is easily forgotten)."""
    for item in items:
        if "azurite_connection_string" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.azurite)
