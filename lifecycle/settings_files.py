"""Settings kept in files for a local run: `.env` and the Functions Core Tools' `local.settings.json`.

Only the `lifecycle` command reads them (so `make run` too), from one directory: the project
in a checkout, else the current directory, or LIFECYCLE_CONFIG_DIR. A variable set in the
environment wins, then `.env`, then `local.settings.json`'s Values: one file serves both
`make run` and `func start`, and a shell can still override it for one command. In Azure
nothing here runs: app settings are the environment.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import parse_stream

DOTENV = ".env"
FUNCTIONS_SETTINGS = "local.settings.json"


class SettingsFileError(ValueError):
    """A settings file we cannot read; the message names the file and, where it can, the line."""


def read(directory: Path) -> tuple[dict[str, str], tuple[Path, ...]]:
    """The settings of the files in `directory` (.env over local.settings.json) and the files read."""
    values: dict[str, str] = {}
    read_from: list[Path] = []
    for path, reader in ((directory / FUNCTIONS_SETTINGS, _functions_settings), (directory / DOTENV, _dotenv)):
        if path.is_file():
            values.update(reader(path))
            read_from.append(path)
    return values, tuple(read_from)


def complete(env: MutableMapping[str, str], directory: Path) -> tuple[Path, ...]:
    """Add to `env` each setting of the files that it does not set already; the files read."""
    values, read_from = read(directory)
    for name, value in values.items():
        env.setdefault(name, value)
    return read_from


def _dotenv(path: Path) -> Mapping[str, str]:
    text = _text(path)
    unreadable = [binding.original.line for binding in parse_stream(io.StringIO(text)) if binding.error]
    if unreadable:
        lines = ", ".join(str(line) for line in unreadable)
        raise SettingsFileError(f"{path}: line {lines} is not NAME=value")
    # A bare NAME (no `=`) sets nothing, as python-dotenv reads it.
    values = dotenv_values(stream=io.StringIO(text))  # the text already read, not the file again
    return {name: value for name, value in values.items() if value is not None}


def _functions_settings(path: Path) -> Mapping[str, str]:
    try:
        document = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise SettingsFileError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    values = document.get("Values", {}) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise SettingsFileError(f"{path}: \"Values\" must be an object of NAME: \"value\"")
    wrong = sorted(name for name, value in values.items() if not isinstance(value, str))
    if wrong:  # the Core Tools refuse them too
        raise SettingsFileError(f"{path}: the value of {', '.join(wrong)} must be a string")
    return values


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsFileError(f"{path}: cannot be read ({error})") from None
