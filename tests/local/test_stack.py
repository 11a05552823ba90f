"""Starting the stack: refused beside a running one, and cleaned up when a part cannot start."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from lifecycle.local import state
from lifecycle.local.stack import AlreadyRunning, LocalStack, StackOptions


def children() -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            found.update(int(pid) for pid in (task / "children").read_text().split())
    return found


def test_a_second_stack_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    running = state.StackInfo(pid=os.getpid(), url="http://127.0.0.1:7071", sandbox_api_url="",
                              sandbox_control_url="", storage_connection_string="", table_prefix="lifecycle")
    state.write_info(tmp_path, running)

    with pytest.raises(AlreadyRunning, match="already running"):
        LocalStack(StackOptions(state_dir=tmp_path)).start()
    assert state.read_info(tmp_path) == running  # the running stack's record is left alone


def test_a_start_that_fails_stops_what_it_had_started(tmp_path: Path) -> None:
    before = children()
    with socket.socket() as taken, capture_logs():
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        stack = LocalStack(StackOptions(state_dir=tmp_path, port=taken.getsockname()[1]))
        with pytest.raises(OSError, match="in use"):
            stack.start()

    assert children() == before  # Azurite was started, and stopped again
    assert state.read_info(tmp_path) is None
    assert (tmp_path / "azurite").is_dir()  # the state dir itself stays for the next start
