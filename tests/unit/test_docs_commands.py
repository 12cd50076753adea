"""Every `lastgood …` command the README and docs/ show is one the real CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from lastgood.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"^\s*(?:\$\s*)?(?:\.venv/bin/)?lastgood\s+(?P<args>[^#|>\n]+)", re.MULTILINE)


def commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        in_code = False
        for line in doc.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("```"):
                in_code = not in_code
                continue
            if in_code and (m := COMMAND.match(line)):
                found.append((doc.name, m.group("args").strip()))
    return found


def test_the_docs_show_commands_at_all():
    names = {doc for doc, _ in commands()}
    assert {"README.md", "runbook.md"} <= names


@pytest.mark.parametrize("doc,args", commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_each_documented_command_parses(doc, args):
    parser = build_parser()
    argv = shlex.split(args.replace("…", "x").replace("\u2026", "x"))
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on an unknown command or flag
        raise AssertionError(f"{doc}: `lastgood {args}` is not a valid command") from exc
