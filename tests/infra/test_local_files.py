"""The files for the Functions Core Tools: local.settings.json.example and .funcignore."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from tests.infra import HOST_SETTINGS, ROOT, settings_the_worker_reads

EXAMPLE = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
# The local host needs these two; in Azure the Flex Consumption plan sets the runtime itself.
LOCAL_HOST_SETTINGS = {"AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME"}


def test_the_example_runs_the_host_on_the_storage_emulator() -> None:
    assert EXAMPLE["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert EXAMPLE["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_the_example_names_only_settings_the_worker_or_host_reads() -> None:
    known = settings_the_worker_reads() | HOST_SETTINGS | LOCAL_HOST_SETTINGS
    assert set(EXAMPLE) <= known, sorted(set(EXAMPLE) - known)


def test_the_example_gives_the_trigger_its_connection_and_queue() -> None:
    assert "SERVICEBUS__fullyQualifiedNamespace" in EXAMPLE
    assert "SERVICEBUS_QUEUE" in EXAMPLE


def test_the_example_holds_no_secret() -> None:
    assert EXAMPLE["MARKETPLACE_CLIENT_SECRET"] == ""
    for name, value in EXAMPLE.items():
        assert not re.search(r"AccountKey=|SharedAccessKey=|sig=", value, re.IGNORECASE), name


def test_git_ignores_the_real_local_settings_but_not_the_example() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "local.settings.json" in ignored
    assert "local.settings.json.example" not in ignored


def _funcignore() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    """gitignore matching, as far as .funcignore uses it: `name/` names a directory anywhere, `*.x` a file."""
    parts = path.split("/")
    for pattern in _funcignore():
        if pattern.endswith("/"):
            if any(fnmatch.fnmatch(part, pattern[:-1]) for part in parts[:-1]):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


@pytest.mark.parametrize(
    "path",
    [".venv/bin/python", "node_modules/azurite/package.json", "tests/conftest.py", "bench/__main__.py",
     ".local/queue.db", "infra/main.bicep", "lifecycle/__pycache__/settings.cpython-311.pyc",
     ".mypy_cache/x.json", ".ruff_cache/x", ".pytest_cache/x", ".hypothesis/x", "local.settings.json",
     ".env", ".azure/dev/.env", ".git/HEAD"],
)
def test_development_files_stay_out_of_the_package(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path",
    ["function_app.py", "host.json", "requirements.txt", "functions/webhook.py", "lifecycle/settings.py",
     "lifecycle/domain/lifecycle.py"],
)
def test_the_app_goes_into_the_package(path: str) -> None:
    assert not ignored(path)
