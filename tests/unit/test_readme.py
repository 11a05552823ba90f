"""The README's generated lifecycle diagram matches the table it is drawn from."""

from __future__ import annotations

from pathlib import Path

from lifecycle.docs import diagram_block, with_diagram

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_diagram_is_generated_from_the_current_table() -> None:
    text = README.read_text()
    assert diagram_block() in text, "run `python -m lifecycle.docs` to regenerate the diagram"


def test_regenerating_replaces_an_outdated_diagram() -> None:
    outdated = "intro\n" + diagram_block().replace("Suspend", "Freeze") + "\noutro\n"
    assert with_diagram(outdated) == "intro\n" + diagram_block() + "\noutro\n"


def test_every_setting_the_worker_reads_is_in_the_configuration_table() -> None:
    import inspect
    import re

    from lifecycle.settings import Settings

    read = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', inspect.getsource(Settings.from_env)))
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = sorted(name for name in read if f"`{name}`" not in section)
    assert read, "no setting names found in Settings.from_env"
    assert missing == [], f"add these to the README's Configuration table: {missing}"
