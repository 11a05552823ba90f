"""`.env` and `local.settings.json` reach a local `lifecycle` as DESIGN.md promises: the options
read them too, `make run`'s stack takes its settings from them, and a broken one is named."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.served import CLI, ROOT, ServedStack

pytestmark = pytest.mark.e2e


def lifecycle(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != "LIFECYCLE_STATE_DIR"}
    env["LIFECYCLE_CONFIG_DIR"] = str(config_dir)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False)


def test_an_option_s_variable_set_in_dotenv_counts(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / ".env").write_text(f"LIFECYCLE_STATE_DIR={elsewhere}\n")

    done = lifecycle(tmp_path, "subscriptions", "list")

    assert done.returncode == 1
    assert f"no running stack found in {elsewhere}" in done.stderr


def test_a_broken_local_settings_json_stops_every_command_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"Values": {"LOG_LEVEL": "INFO",}}')

    done = lifecycle(tmp_path, "sandbox", "plans")

    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: configuration: {tmp_path / 'local.settings.json'}: not JSON")


def test_the_local_stack_takes_its_settings_from_the_files(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / ".env").write_text("OPS_API_KEY=key-from-dotenv\n")
    (config / "local.settings.json").write_text(json.dumps({"Values": {"OPS_API_KEY": "key-from-json"}}))
    stack = ServedStack(tmp_path / "state")
    stack.env["LIFECYCLE_CONFIG_DIR"] = str(config)
    try:
        stack.start()
        api = stack.info["url"] + "/api/subscriptions"

        def status(key: str) -> int:
            return httpx.get(api, headers={"x-functions-key": key}, trust_env=False, timeout=10).status_code

        assert (status("key-from-dotenv"), status("key-from-json")) == (200, 401)
    finally:
        stack.kill()
    assert f"Settings files: {config / 'local.settings.json'}, {config / '.env'}" in stack.log.read_text()
