"""`.env` and `local.settings.json` for a local `lifecycle`: the environment wins, then .env, then
local.settings.json; an unreadable file is refused naming the file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lifecycle.settings import CONFIG_DIR, SettingsError, load_local_files
from lifecycle.settings_files import SettingsFileError, complete


def functions_settings(directory: Path, values: object) -> None:
    (directory / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))


def test_dotenv_settings_complete_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('LOG_LEVEL=DEBUG\nexport TABLE_PREFIX="ours"\n# a comment\n\nOPS_API_KEY=\'k=1\'\n')
    env: dict[str, str] = {}

    read = complete(env, tmp_path)

    assert env == {"LOG_LEVEL": "DEBUG", "TABLE_PREFIX": "ours", "OPS_API_KEY": "k=1"}
    assert read == (tmp_path / ".env",)


def test_a_variable_already_set_wins_over_the_files(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\n")
    functions_settings(tmp_path, {"TABLE_PREFIX": "fromjson"})
    env = {"LOG_LEVEL": "ERROR", "TABLE_PREFIX": "shell"}

    complete(env, tmp_path)

    assert env == {"LOG_LEVEL": "ERROR", "TABLE_PREFIX": "shell"}


def test_dotenv_wins_over_local_settings_json_and_both_are_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TABLE_PREFIX=fromdotenv\n")
    functions_settings(tmp_path, {"TABLE_PREFIX": "fromjson", "RECONCILE_SCHEDULE": "0 0 * * * *"})
    env: dict[str, str] = {}

    read = complete(env, tmp_path)

    assert env == {"TABLE_PREFIX": "fromdotenv", "RECONCILE_SCHEDULE": "0 0 * * * *"}
    assert set(read) == {tmp_path / ".env", tmp_path / "local.settings.json"}


def test_a_bare_name_in_dotenv_sets_nothing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL\n")
    env: dict[str, str] = {}

    complete(env, tmp_path)

    assert env == {}


def test_no_files_read_nothing(tmp_path: Path) -> None:
    env: dict[str, str] = {}

    assert complete(env, tmp_path) == ()
    assert env == {}


def test_a_dotenv_line_that_is_not_name_equals_value_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\nthis is not a setting\n")

    with pytest.raises(SettingsFileError, match=r"\.env: line 2 is not NAME=value"):
        complete({}, tmp_path)


def test_a_local_settings_json_that_is_not_json_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"Values": {\n"A": "1",\n}}')

    with pytest.raises(SettingsFileError, match=r"local\.settings\.json: not JSON \(.* at line 3\)"):
        complete({}, tmp_path)


@pytest.mark.parametrize("document", [{"Values": ["A=1"]}, ["A"], {"Values": "A=1"}])
def test_local_settings_json_values_must_be_an_object(tmp_path: Path, document: object) -> None:
    (tmp_path / "local.settings.json").write_text(json.dumps(document))

    with pytest.raises(SettingsFileError, match='"Values" must be an object'):
        complete({}, tmp_path)


def test_a_local_settings_json_value_that_is_not_a_string_is_refused_by_name(tmp_path: Path) -> None:
    functions_settings(tmp_path, {"MARKETPLACE_API_MAX_ATTEMPTS": 3, "LOG_LEVEL": "INFO", "DEBUG_ON": True})

    with pytest.raises(SettingsFileError, match="DEBUG_ON, MARKETPLACE_API_MAX_ATTEMPTS must be a string"):
        complete({}, tmp_path)


def test_local_settings_json_without_values_sets_nothing(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text('{"IsEncrypted": false}')
    env: dict[str, str] = {}

    complete(env, tmp_path)

    assert env == {}


def test_the_files_are_looked_for_in_the_configured_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured, default = tmp_path / "configured", tmp_path / "default"
    configured.mkdir()
    default.mkdir()
    (configured / ".env").write_text("LIFECYCLE_TEST_SETTING=configured\n")
    (default / ".env").write_text("LIFECYCLE_TEST_SETTING=default\n")
    monkeypatch.setenv(CONFIG_DIR, str(configured))
    monkeypatch.setenv("LIFECYCLE_TEST_SETTING", "")  # so the test's end removes what the files set
    monkeypatch.delenv("LIFECYCLE_TEST_SETTING")

    assert load_local_files(default) == (configured / ".env",)
    assert os.environ["LIFECYCLE_TEST_SETTING"] == "configured"


def test_an_unreadable_file_is_a_settings_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("not a setting\n")
    monkeypatch.setenv(CONFIG_DIR, str(tmp_path))

    with pytest.raises(SettingsError, match=r"\.env: line 1"):
        load_local_files(tmp_path / "elsewhere")

