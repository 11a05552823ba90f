"""No log line of a soak run holds a bearer token, the client secret, personal data or a whole payload.

The soak (tests/soak/small.py: every fault kind, SIGKILLs) scans every worker log with
`soak.logscan`; these tests check that scan found nothing, and that the scan itself
catches each kind of leak, so a clean result means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from soak.logscan import scan
from tests.soak.small import small_soak

LEAKS = {
    "a bearer token": '{"event": "x", "auth": "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4eHh4eCJ9.c2lnbmF0dXJl"}',
    "the client secret": '{"event": "x", "note": "s3cr3t-value-of-the-app"}',
    "a whole payload": '{"event": "x", "raw": "{\\"activityId\\": \\"a\\", \\"subscriptionId\\": \\"s\\"}"}',
    "a traceback": "Traceback (most recent call last):",
    "a logged exception": '{"event": "message.abandoned", "exception": "Traceback ... KeyError"}',
}


@pytest.mark.azurite
@pytest.mark.e2e
def test_no_log_line_of_a_soak_run_holds_a_token_a_secret_or_a_payload() -> None:
    result = small_soak()
    assert result.figures["log_lines"] > 1000  # the scan read the logs of every worker run
    leaks = [v for v in result.violations if "log" in v or "payload" in v or "exception" in v]
    assert leaks == []


@pytest.mark.parametrize("line", LEAKS.values(), ids=LEAKS.keys())
def test_the_scan_catches_each_kind_of_leak(tmp_path: Path, line: str) -> None:
    log = tmp_path / "worker.log"
    log.write_text('{"event": "fine"}\n' + line + "\n")
    found = scan([log], cut_short=set(), secrets=["s3cr3t-value-of-the-app"])
    assert len(found.violations) == 1, found.violations


def test_only_the_last_line_of_a_killed_workers_log_may_be_cut_short(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text('{"event": "fine"}\n{"event": "cut sh')
    assert scan([log], cut_short={log}, secrets=[]).violations == []
    assert len(scan([log], cut_short=set(), secrets=[]).violations) == 1
