"""The state directory: discovery of a running stack, a stable identity, the sandbox's truth kept."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.local import state
from lifecycle.sandbox import ManualClock, Marketplace
from lifecycle.sandbox.records import Decider


def info(pid: int) -> state.StackInfo:
    return state.StackInfo(pid=pid, url="http://127.0.0.1:1", sandbox_api_url="http://127.0.0.1:2/api",
                           sandbox_control_url="http://127.0.0.1:2/sandbox", storage_connection_string="x",
                           table_prefix="lifecycle")


def _last_pid() -> int:
    """The pid of a process that has already exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_running_stack_is_found_through_its_state_dir(tmp_path: Path) -> None:
    state.write_info(tmp_path, info(os.getpid()))
    assert state.running(tmp_path) == info(os.getpid())


def test_a_stack_whose_process_is_gone_is_not_running(tmp_path: Path) -> None:
    state.write_info(tmp_path, info(_last_pid()))
    assert state.read_info(tmp_path) is not None
    assert state.running(tmp_path) is None


def test_no_state_dir_means_no_stack(tmp_path: Path) -> None:
    assert state.running(tmp_path / "missing") is None


def test_a_garbled_stack_file_is_no_stack(tmp_path: Path) -> None:
    (tmp_path / state.STACK_FILE).write_text("{not json")
    assert state.running(tmp_path) is None


def test_only_the_stack_that_wrote_the_record_removes_it(tmp_path: Path) -> None:
    state.write_info(tmp_path, info(os.getpid()))
    state.remove_info(tmp_path, os.getpid() + 1)
    assert state.read_info(tmp_path) is not None
    state.remove_info(tmp_path, os.getpid())
    assert state.read_info(tmp_path) is None


def test_the_sandbox_identity_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = state.identity(tmp_path)
    assert state.identity(tmp_path) == first
    assert stat.S_IMODE((tmp_path / state.IDENTITY_FILE).stat().st_mode) == 0o600


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_the_marketplace_truth_survives_a_save_and_restore(tmp_path: Path, clock: ManualClock) -> None:
    market = Marketplace(clock=clock)
    subscription, token = market.purchase("contoso-seats", "team", 3, activated=True)
    sid = subscription["id"]
    acked = market.change_quantity(sid, 4, deliver=False)
    market.patch_operation(sid, acked["id"], "Success")
    suspended = market.suspend(sid, deliver=False)
    state.save_marketplace(market, tmp_path)

    again = Marketplace(clock=clock)
    assert state.restore_marketplace(again, tmp_path)

    assert again.get(sid) == market.get(sid)
    assert again.resolve(token)["id"] == sid
    assert again.record(acked["id"]) == market.record(acked["id"])
    assert again.record(suspended["id"]).decided_by is Decider.MARKETPLACE
    assert again.webhook_payload(acked["id"]) == market.webhook_payload(acked["id"])


def test_a_pending_operation_is_auto_accepted_after_a_restart_once_its_deadline_passed(
    tmp_path: Path, clock: ManualClock
) -> None:
    market = Marketplace(clock=clock)
    sid = market.purchase("contoso-seats", "team", 3, activated=True)[0]["id"]
    pending = market.change_quantity(sid, 7, deliver=False)
    state.save_marketplace(market, tmp_path)

    again = Marketplace(clock=clock)
    state.restore_marketplace(again, tmp_path)
    assert again.operations(sid)[0]["id"] == pending["id"]
    clock.advance(11)  # the stack was down past the 10 seconds

    assert again.get_operation(sid, pending["id"])["status"] == "Succeeded"
    assert again.get(sid)["quantity"] == 7


def test_nothing_saved_restores_nothing(tmp_path: Path) -> None:
    assert not state.restore_marketplace(Marketplace(), tmp_path)


def test_a_snapshot_of_another_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / state.MARKETPLACE_FILE).write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="unknown snapshot version"):
        state.restore_marketplace(Marketplace(), tmp_path)
