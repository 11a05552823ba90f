"""Dependencies point inward: the domain imports only the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

LIFECYCLE = Path(__file__).resolve().parents[2] / "lifecycle"
PURE = [*sorted((LIFECYCLE / "domain").glob("*.py")), LIFECYCLE / "parsing.py", LIFECYCLE / "lenient.py",
        LIFECYCLE / "errors.py"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def foreign_imports(path: Path, allowed_own: tuple[str, ...]) -> list[str]:
    """What `path` imports beyond the standard library and the `allowed_own` parts of lifecycle."""
    def allowed(module: str) -> bool:
        top = module.split(".")[0]
        if top == "lifecycle":
            return module.startswith(allowed_own)
        return top in sys.stdlib_module_names or top == "__future__"

    return sorted(module for module in imported_modules(path) if not allowed(module))


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_the_domain_imports_only_the_standard_library_and_itself(path: Path) -> None:
    assert foreign_imports(path, ("lifecycle.domain", "lifecycle.errors", "lifecycle.lenient")) == []


def test_the_checker_notices_a_third_party_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import httpx\nfrom lifecycle.store import table\n")
    assert imported_modules(sample) == {"httpx", "lifecycle.store"}


SERVICES = sorted((LIFECYCLE / "services").glob("*.py"))
SERVICES_MAY_USE = ("lifecycle.domain", "lifecycle.ports", "lifecycle.errors", "lifecycle.parsing", "lifecycle.lenient",
                    "lifecycle.logs", "lifecycle.retry", "lifecycle.services")


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_services_use_the_domain_and_the_ports_never_an_adapter_or_the_settings(path: Path) -> None:
    # Adapters (store, marketplace, queue, product, webhook, telemetry) and settings are chosen
    # in bootstrap and handed in: a service that imported one would be tied to it.
    assert foreign_imports(path, SERVICES_MAY_USE) == []
