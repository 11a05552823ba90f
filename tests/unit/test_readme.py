"""The README's generated lifecycle diagram matches the table it is drawn from."""

from __future__ import annotations

from pathlib import Path

from lifecycle.docs import diagram_block, with_diagram

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_diagram_is_generated_from_the_current_table():
    text = README.read_text()
    assert diagram_block() in text, "run `python -m lifecycle.docs` to regenerate the diagram"


def test_regenerating_replaces_an_outdated_diagram():
    outdated = "intro\n" + diagram_block().replace("Suspend", "Freeze") + "\noutro\n"
    assert with_diagram(outdated) == "intro\n" + diagram_block() + "\noutro\n"
