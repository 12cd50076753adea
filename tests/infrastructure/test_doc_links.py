"""Every relative link in README.md and docs/*.md works from a fresh clone.

A link works when it resolves to a file inside the repository that git does not ignore
(an ignored file, like anything under build/, is not in a fresh clone), and, when it
names a `#fragment` of a Markdown file, that file has such a heading.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.template import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, …


def links(doc: Path) -> list[str]:
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [target for target in LINK.findall(text) if not EXTERNAL.match(target)]


def anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'."""
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", doc.read_text(encoding="utf-8")), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        found.add(slug)
    return found


def ignored(path: Path) -> bool:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", str(path)], capture_output=True, check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_relative_link_resolves_to_a_file_in_the_repository(doc: Path) -> None:
    broken = []
    for target in links(doc):
        path_part, _, fragment = target.partition("#")
        resolved = (doc.parent / path_part).resolve() if path_part else doc
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif ignored(resolved):
            broken.append(f"{target}: ignored by git, so not in a fresh clone")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: {resolved.name} has no heading #{fragment}")
    assert broken == [], f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_checker_catches_a_link_outside_the_repository_and_a_missing_file(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("[a](../shared/DESIGN.md) [b](docs/nope.md) `[c](not-a-link.md)` [d](https://x.y/)\n")
    assert links(doc) == ["../shared/DESIGN.md", "docs/nope.md"]


def test_the_readme_design_link_stays_inside_the_repository() -> None:
    assert "docs/design.md" in links(ROOT / "README.md")
    assert not any(target.startswith("..") for target in links(ROOT / "README.md"))
