"""checkov's Bicep scan of infra/ passes, and each finding we accept says why.

checkov parses Bicep in Python (pycep), so no bicep CLI is needed. It runs offline:
`--skip-download` (no guidelines from Prisma Cloud), no API key (no platform upload),
CKV_SKIP_PACKAGE_UPDATE_CHECK (no PyPI version check), BC_SKIP_MAPPING (no mapping
download), and proxies pointed at a closed loopback port so that anything it might still
try fails on this machine instead of leaving it. It is pinned in pyproject.toml: every
release adds checks, and a new finding should arrive with a version bump, not at random.

Accepted findings are `// checkov:skip=ID: reason` lines inside the resource they concern.
checkov does not look inside a conditional resource (`= if (...) {...}`): keep resources
that should be scanned unconditional, in a module called conditionally if need be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra import INFRA, ROOT

CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens, so a request fails at once, locally
SCANNED_TYPES = {
    "Microsoft.Storage/storageAccounts",
    "Microsoft.Storage/storageAccounts/blobServices/containers",
    "Microsoft.Web/sites",
    "Microsoft.Web/serverfarms",
    "Microsoft.KeyVault/vaults",
    "Microsoft.KeyVault/vaults/secrets",
}


def offline_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BC_", "PRISMA_", "CKV_"))}
    env.update(
        CKV_SKIP_PACKAGE_UPDATE_CHECK="true",
        BC_SKIP_MAPPING="TRUE",
        HTTP_PROXY=CLOSED_PORT,
        HTTPS_PROXY=CLOSED_PORT,
        http_proxy=CLOSED_PORT,
        https_proxy=CLOSED_PORT,
        NO_PROXY="",
        no_proxy="",
        LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    checkov = Path(sys.executable).parent / "checkov"
    assert checkov.exists(), "checkov is a dev dependency: pip install -e '.[dev]'"
    done = subprocess.run(
        [str(checkov), "--directory", str(INFRA), "--framework", "bicep", "--skip-download", "--compact",
         "--output", "json"],
        capture_output=True, text=True, timeout=300, env=offline_environment(), cwd=ROOT, check=False,
    )
    assert done.returncode in (0, 1), f"checkov failed to run ({done.returncode}): {done.stderr[-2000:]}"
    output = json.loads(done.stdout)
    assert isinstance(output, dict), done.stdout[:2000]  # a list would mean more than one framework ran
    assert output.get("check_type") == "bicep", done.stdout[:2000]
    return output


def _where(check: dict[str, Any]) -> str:
    return f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range'][0]})"


def test_checkov_finds_nothing_we_have_not_accepted(report: dict[str, Any]) -> None:
    failed = report["results"]["failed_checks"]
    assert not failed, "fix, or accept with a reason:\n" + "\n".join(
        f"{_where(check)}: {check['check_name']}" for check in failed
    )


def test_checkov_parses_every_bicep_file(report: dict[str, Any]) -> None:
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")


def test_checkov_scans_the_resources_that_matter(report: dict[str, Any]) -> None:
    results = report["results"]
    checked = results["passed_checks"] + results["skipped_checks"] + results["failed_checks"]
    assert {check["resource"].rsplit(".", 1)[0] for check in checked} >= SCANNED_TYPES


def test_every_accepted_finding_gives_its_reason(report: dict[str, Any]) -> None:
    for check in report["results"]["skipped_checks"]:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason.split()) >= 6, f"{_where(check)} is skipped without a reason"
