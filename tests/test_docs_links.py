"""Every relative link in the README and the docs leads to a file of the repository, and a link to a
section of a Markdown file to a heading it has (GitHub's anchors): an operator following the docs
never lands on nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_alerts import github_anchors

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").rglob("README.md")]
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _links(markdown: str) -> list[str]:
    """The link targets outside fenced code, without the external ones."""
    outside, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            outside.append(line)
    return [
        target
        for target in LINK.findall("\n".join(outside))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_a_heading_it_has(document: Path) -> None:
    broken = []
    for target in _links(document.read_text()):
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in github_anchors(file.read_text()):
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_a_broken_link_is_found() -> None:
    assert _links("see [a](docs/nowhere.md#x) and [b](https://example.com/) ") == [
        "docs/nowhere.md#x"
    ]
