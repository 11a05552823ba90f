"""The deployment read as data: infra/*.bicep, main.parameters.json, azure.yaml.

Bicep is parsed with pycep, the parser checkov itself uses (installed with checkov), so
there is no bicep CLI to download. pycep gives one dict per file: parameters, variables,
resources, modules, outputs. Two of its habits shape the helpers here:

- a conditional resource (`= if (cond) {...}`) nests its body one level deeper, under
  `config.config`; `BicepFile.resources` unwraps it;
- an identifier and a string literal both come out as plain strings, so `resolve` treats a
  string that names one of the file's variables as that variable and one that names a
  parameter as `Param(name)`. Our files use no literal that equals an identifier.

pycep also binds `a == b ? x : y` as `a == (b ? x : y)`: write `(a == b) ? x : y`; and
`!a || b` as `!(a || b)`: write `(!a) || b` (Bicep reads both the same way).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
MODULES = INFRA / "modules"


@dataclass(frozen=True, slots=True)
class Param:
    """A value left to a parameter of the file (a module's caller or azd fills it in)."""

    name: str


# Read by the Functions host or the Python worker rather than by lifecycle/settings.py.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "SERVICEBUS__fullyQualifiedNamespace",
    "SERVICEBUS__credential",
    "SERVICEBUS__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_THREADPOOL_THREAD_COUNT",
    "AZURE_CLIENT_ID",  # azure-identity's DefaultAzureCredential: which identity
    "AzureWebJobs.product_dispatch.Disabled",  # the host's switch for one function
}


def settings_the_worker_reads() -> set[str]:
    """The environment variables lifecycle/settings.py reads (the only module that reads any)."""
    source = (ROOT / "lifecycle" / "settings.py").read_text()
    return set(re.findall(r"""(?:text|number|level|env\.get)\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))


class BicepFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text()
        self.tree: Mapping[str, Any] = _parser().parse(text=self.text)

    def section(self, name: str) -> dict[str, Any]:
        return self.tree.get(name) or {}

    def resources(self, type_: str) -> list[dict[str, Any]]:
        """Bodies of the resources of this type that the file declares (not `existing` ones)."""
        found = []
        for resource in self.section("resources").values():
            if resource["type"].lower() != type_.lower() or resource["existing"]:
                continue
            body = resource["config"]
            found.append(body["config"] if "condition" in body else body)
        return found

    def resource(self, type_: str) -> dict[str, Any]:
        (body,) = self.resources(type_)
        return body

    def resolve(self, value: Any) -> Any:
        """Replace variable names by their values and parameter names by `Param`."""
        if isinstance(value, str):
            if value in self.section("variables"):
                return self.resolve(self.section("variables")[value]["value"])
            if value in self.section("parameters"):
                return Param(value)
            return value
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        return value

    def prop(self, body: dict[str, Any], path: str) -> Any:
        """`properties.siteConfig.minTlsVersion`-style lookup, resolved."""
        value: Any = body
        for key in path.split("."):
            value = value[key]
        return self.resolve(value)


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()  # building the grammar is most of the cost: once per session


@functools.cache
def bicep(path: Path) -> BicepFile:
    return BicepFile(path)


def main() -> BicepFile:
    return bicep(MAIN)


def module(name: str) -> BicepFile:
    return bicep(MODULES / f"{name}.bicep")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


# The functionapp module's parameters that choose which settings are deployed, as `app_settings`
# takes them when a test does not say: a secret credential, and no product.
SETTINGS_CHOSEN_BY = {
    "marketplaceCredential": "secret",
    "productEventsUrl": "",
    "productVetoUrl": "",
    "productSigningSecretReference": "",
}


def app_settings(credential: str = "secret", **parameters: str) -> dict[str, Any]:
    """The Function App's settings, name -> value, as deployed with these module parameters.

    `siteConfig.appSettings` is `concat(...)` of variables holding `{name, value}` lists; a
    variable may choose its list with a condition on the module's parameters (the
    marketplace credential, whether a product URL is set). Values stay as written: a
    parameter's name comes back as `Param`.
    """
    given = SETTINGS_CHOSEN_BY | {"marketplaceCredential": credential} | parameters
    functionapp = module("functionapp")
    site = functionapp.resource("Microsoft.Web/sites")
    expression = site["properties"]["siteConfig"]["appSettings"]
    settings: dict[str, Any] = {}
    for part in expression["function"]["parameters"].values():
        for entry in _chosen(functionapp.resolve(part), given):
            assert entry["name"] not in settings, f"{entry['name']} is set twice"
            settings[entry["name"]] = entry["value"]
    return settings


def _chosen(value: Any, given: Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value
    operator = value["operator"]
    assert operator["type"] == "conditional", f"unexpected expression in app settings: {operator}"
    branch = "true_value" if evaluate(operator["operands"]["condition"], given) else "false_value"
    return _chosen(operator["operands"][branch], given)


def evaluate(expression: Any, given: Mapping[str, Any]) -> Any:
    """The value of a resolved Bicep condition, each parameter taking its value from `given`.

    As much of Bicep as our conditions use: literals, parameters, `empty()`, `!`, `==`,
    `&&`, `||` and `? :`. Anything else fails the test rather than guessing.
    """
    if isinstance(expression, Param):
        assert expression.name in given, f"the test must say what {expression.name} is"
        return given[expression.name]
    if isinstance(expression, str | bool | int):
        return expression
    if "function" in expression:
        function = expression["function"]
        assert function["type"] == "empty", f"unexpected function in a condition: {function['type']}"
        (argument,) = function["parameters"].values()
        return len(evaluate(argument, given)) == 0
    operator = expression["operator"]
    operands = operator["operands"]
    match operator["type"]:
        case "not":
            return not evaluate(operands["bool_value"], given)
        case "equals":
            return evaluate(operands["operand_1"], given) == evaluate(operands["operand_2"], given)
        case "and":
            return evaluate(operands["operand_1"], given) and evaluate(operands["operand_2"], given)
        case "or":
            return evaluate(operands["operand_1"], given) or evaluate(operands["operand_2"], given)
        case "conditional":
            chosen = "true_value" if evaluate(operands["condition"], given) else "false_value"
            return evaluate(operands[chosen], given)
    raise AssertionError(f"unexpected operator in a condition: {operator['type']}")


_DURATION = re.compile(r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$")


def duration_seconds(text: str) -> int:
    """An ISO 8601 duration as Service Bus takes it (days, hours, minutes, seconds)."""
    match = _DURATION.match(text)
    assert match, f"not an ISO 8601 duration: {text!r}"
    assert text not in {"P", "PT"}, f"an empty duration: {text!r}"
    parts = {key: int(value or 0) for key, value in match.groupdict().items()}
    return ((parts["days"] * 24 + parts["hours"]) * 60 + parts["minutes"]) * 60 + parts["seconds"]


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_STRING = re.compile(r"'(?:\\.|[^'\\])*'")


def without_comments(text: str) -> str:
    """Bicep text with its comments removed (string literals kept, even ones holding //)."""
    out, position = [], 0
    for match in re.finditer(f"{_STRING.pattern}|{_COMMENT.pattern}", text, re.DOTALL):
        out.append(text[position : match.start()])
        if match.group().startswith("'"):
            out.append(match.group())
        position = match.end()
    out.append(text[position:])
    return "".join(out)
