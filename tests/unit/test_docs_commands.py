"""Every `lastgood …` command the README and docs/ show is one the real CLI accepts, and every
command in the runbook is one a test or `make demo` runs (issue 9: "Every command in the runbook
is one that exists and has been run in a test or in make demo")."""

from __future__ import annotations

import ast
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
from lastgood.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the docs whose commands must also have been run by a test or the demo
EXERCISED_DOCS = ("runbook.md", "rpo-rto.md", "limits.md")
COMMAND = re.compile(r"^\s*(?:\$\s*)?(?:\.venv/bin/)?lastgood\s+(?P<args>[^#|>\n]+)", re.MULTILINE)
RUNNERS = [
    *sorted((ROOT / "tests").rglob("test_*.py")),
    *sorted((ROOT / "tests" / "helpers").glob("*.py")),
    *sorted((ROOT / "devstack" / "demo_steps").glob("step*.py")),
]


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


def argv_of(args: str) -> list[str]:
    return shlex.split(args.replace("…", "x"))


def subcommand_and_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """(`["kv", "resync"]`, `["--source", …]`): the command words a parser resolved, and the flags used."""
    parser = build_parser()
    namespace = parser.parse_args(argv)
    words = []
    for token in argv:
        if token.startswith("-"):
            break
        words.append(token)
        if not _has_subcommands(parser, words):
            break
    own = argv[: argv.index("--")] if "--" in argv else argv  # after `--`: the wrapped command's own args
    flags = sorted({t.split("=", 1)[0] for t in own if t.startswith("--")})
    assert namespace is not None
    return words, flags


def _has_subcommands(parser: object, words: list[str]) -> bool:
    import argparse

    current = parser
    for word in words:
        assert isinstance(current, argparse.ArgumentParser)
        sub = next((a for a in current._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            return False
        current = sub.choices[word]
    assert isinstance(current, argparse.ArgumentParser)
    return any(isinstance(a, argparse._SubParsersAction) for a in current._actions)


@cache
def runner_words() -> dict[str, frozenset[str]]:
    """Per test/demo file: every string constant, and every word inside one (for shell strings)."""
    words: dict[str, frozenset[str]] = {}
    for path in RUNNERS:
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
                found.update(node.value.split())
        words[str(path.relative_to(ROOT))] = frozenset(found)
    return words


def test_the_docs_show_commands_at_all():
    names = {doc for doc, _ in commands()}
    assert {"README.md", "runbook.md"} <= names


@pytest.mark.parametrize("doc,args", commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_each_documented_command_parses(doc, args):
    parser = build_parser()
    try:
        parser.parse_args(argv_of(args))
    except SystemExit as exc:  # argparse exits 2 on an unknown command or flag
        raise AssertionError(f"{doc}: `lastgood {args}` is not a valid command") from exc


@pytest.mark.parametrize(
    "doc,args",
    [(d, a) for d, a in commands() if d in EXERCISED_DOCS],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_runbook_command_is_run_by_a_test_or_the_demo(doc, args):
    # Given a command the operator docs tell people to run
    words, flags = subcommand_and_flags(argv_of(args))
    # When looking for a test or demo step that runs that subcommand with those flags
    runners = [name for name, found in runner_words().items() if set(words) <= found and set(flags) <= found]
    # Then at least one exists
    assert runners, (
        f"{doc}: `lastgood {args}` — no test or demo step runs `{' '.join(words)}` with {flags or 'no flags'}"
    )
