"""The Bicep files hold together: they parse, and modules, parameters and outputs match up.

There is no bicep CLI here (it is a download), so these stand in for `bicep build`'s
checks that matter most: a misspelt module parameter or output fails the deployment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra import INFRA, MAIN, BicepFile, bicep, bicep_files, main

# Found by a plain scan, so that a file pycep cannot parse fails its own test, not collection.
MODULE_CALLS = [
    (path, name)
    for path in bicep_files()
    for name in re.findall(r"^module\s+(\w+)\s+'", path.read_text(), re.MULTILINE)
]


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: str(path.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    parsed = BicepFile(path)
    assert parsed.section("resources") or parsed.section("modules")


def _called(path: Path, name: str) -> tuple[dict[str, Any], BicepFile]:
    call = bicep(path).section("modules")[name]
    target = path.parent / call["detail"]["path"]
    assert target.is_file(), f"{path.name}: module {name} points at missing {target}"
    return call["config"].get("config", call["config"]), bicep(target)


@pytest.mark.parametrize(("path", "name"), MODULE_CALLS, ids=[f"{p.name}:{n}" for p, n in MODULE_CALLS])
def test_a_module_call_passes_exactly_the_parameters_its_module_declares(path: Path, name: str) -> None:
    config, target = _called(path, name)
    declared = target.section("parameters")
    required = {param for param, spec in declared.items() if spec.get("default") is None}
    passed = set(config.get("params", {}))
    assert not passed - set(declared), f"{name}: unknown parameters {sorted(passed - set(declared))}"
    assert not required - passed, f"{name}: missing parameters {sorted(required - passed)}"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: str(path.relative_to(INFRA)))
def test_every_module_output_read_is_declared_by_that_module(path: Path) -> None:
    file = bicep(path)
    for name, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", file.text):
        _, target = _called(path, name)
        assert output in target.section("outputs"), f"{path.name}: {name}.outputs.{output} does not exist"


def test_the_parameters_file_sets_only_declared_parameters() -> None:
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(given) <= set(main().section("parameters")), sorted(set(given) - set(main().section("parameters")))


def test_every_parameter_without_a_default_comes_from_the_azd_environment() -> None:
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    required = {name for name, spec in main().section("parameters").items() if spec.get("default") is None}
    assert required <= set(given), f"azd would have no value for {sorted(required - set(given))}"
    for name in required:
        assert re.fullmatch(r"\$\{[A-Z_]+\}", given[name]["value"]), f"{name} should come from an azd variable"


def test_abbreviations_used_by_main_are_defined() -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text())
    used = set(re.findall(r"\babbrs\.(\w+)", MAIN.read_text()))
    assert used
    assert used <= set(abbreviations), sorted(used - set(abbreviations))
