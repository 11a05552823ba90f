"""What every command shares: finding the running stack, its sandbox's control surface, output.

Expected failures (no stack, the sandbox refusing a change) become a `CliError`: one line
on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

from lifecycle.local import state
from lifecycle.plain import plain


class Target(StrEnum):
    """Which deployment a command talks to (see lifecycle.cli.target)."""

    LOCAL = "local"  # the stack `make run` started on the state dir
    AZURE = "azure"  # the app settings in the environment


@dataclass(frozen=True, slots=True)
class Context:
    """What the `lifecycle` group hands its commands (`ctx.obj`)."""

    state_dir: Path
    target: Target = Target.LOCAL
    log_level: str | None = None  # LOG_LEVEL or --log-level, when given
    settings_files: tuple[Path, ...] = ()  # the .env / local.settings.json that completed the environment


class CliError(click.ClickException):
    """An expected failure: its message is all the user sees."""


def stack(state_dir: Path) -> state.StackInfo:
    """The running stack of `state_dir`, or a CliError that says how to start one."""
    info = state.running(state_dir)
    if info is None:
        raise CliError(f"no running stack found in {state_dir}: start it with `make run`")
    return info


class SandboxControl:
    """The running sandbox's control surface (`/sandbox/...`), JSON in and out."""

    def __init__(self, info: state.StackInfo, *, timeout: float = 30.0) -> None:
        self._base = info.sandbox_control_url
        # trust_env off: loopback calls must never go through a proxy from the environment.
        self._client = httpx.Client(trust_env=False, timeout=timeout)

    def get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._call("POST", path, dict(body or {}))

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path, None)

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            response = self._client.request(method, self._base + path, json=body)
        except httpx.HTTPError as error:
            raise CliError(f"the sandbox at {self._base} does not answer ({type(error).__name__})") from None
        if response.status_code >= 400:
            raise CliError(f"the sandbox refused: {error_message(response)}")
        return response.json() if response.content else None


def error_message(response: httpx.Response) -> str:
    """The message of any of the error shapes the sandbox (like Microsoft) answers with."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        inner = body.get("error") or body.get("Error") or body
        if isinstance(inner, dict):
            text = inner.get("message") or inner.get("Message")
            if text:
                return f"{text} (HTTP {response.status_code})"
    return f"HTTP {response.status_code}"


def wait_for(read: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float, interval: float = 0.1) -> Any:
    """Poll `read` until `done` holds or `timeout` passes; the last value read either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(plain(data), indent=2))


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def fields_table(title: str, rows: Mapping[str, Any]) -> Table:
    """A two-column table of name and value; nested values on one line, long ones folded, never cut."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in rows.items():
        table.add_row(name, _cell(value))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)
