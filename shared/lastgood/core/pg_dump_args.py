"""`pg_dump_args`: an allow-list, parsed with pg_dump's own option grammar.

pg_dump reads its argv with getopt_long: long options may be abbreviated to any
unambiguous prefix (`--form=p` is `--format=p`), take their value as `--opt=v`
or `--opt v`, and short options bundle with an attached value (`-sf/tmp/x` is
`-s -f /tmp/x`); `--` ends the options and anything not an option is a
positional argument (the database name). A deny-list of spellings cannot keep
up with that grammar, so every argument is parsed here exactly as pg_dump
would, resolved to its canonical long name, and checked against
`ALLOWED`: options that select what is dumped or tune it without changing the
dump's format, output file, connection or snapshot. Anything else is refused
at config load with the option as written, what pg_dump would read it as, and
why. pg_dump then receives only the normalised form (`--name` / `--name=value`),
so what was checked is exactly what runs.

The option table is pg_dump 18's (the bundled binary's `pg_dump --help`, its
short-option string `abBcCd:e:E:f:F:h:j:n:N:Op:RsS:t:T:U:vwWxXZ:` and the
undocumented aliases); `tests/unit/test_pg_dump_args.py` checks it against the
binary. docs/configuration.md lists the allowed options.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lastgood.core.errors import ConfigError

# --------------------------------------------------------------------------- pg_dump 18's grammar

# Long name → (short letter or None, takes a value).
LONG_OPTIONS: dict[str, tuple[str | None, bool]] = {
    "attribute-inserts": (None, False),
    "binary-upgrade": (None, False),
    "blobs": (None, False),
    "clean": ("c", False),
    "column-inserts": (None, False),
    "compress": ("Z", True),
    "create": ("C", False),
    "data-only": ("a", False),
    "dbname": ("d", True),
    "disable-dollar-quoting": (None, False),
    "disable-triggers": (None, False),
    "enable-row-security": (None, False),
    "encoding": ("E", True),
    "exclude-extension": (None, True),
    "exclude-schema": ("N", True),
    "exclude-table": ("T", True),
    "exclude-table-and-children": (None, True),
    "exclude-table-data": (None, True),
    "exclude-table-data-and-children": (None, True),
    "extension": ("e", True),
    "extra-float-digits": (None, True),
    "file": ("f", True),
    "filter": (None, True),
    "format": ("F", True),
    "help": ("?", False),
    "host": ("h", True),
    "if-exists": (None, False),
    "include-foreign-data": (None, True),
    "inserts": (None, False),
    "jobs": ("j", True),
    "large-objects": ("b", False),
    "load-via-partition-root": (None, False),
    "lock-wait-timeout": (None, True),
    "no-acl": (None, False),
    "no-blobs": (None, False),
    "no-comments": (None, False),
    "no-data": (None, False),
    "no-large-objects": ("B", False),
    "no-owner": ("O", False),
    "no-password": ("w", False),
    "no-policies": (None, False),
    "no-privileges": ("x", False),
    "no-publications": (None, False),
    "no-reconnect": ("R", False),
    "no-schema": (None, False),
    "no-security-labels": (None, False),
    "no-statistics": (None, False),
    "no-subscriptions": (None, False),
    "no-sync": (None, False),
    "no-table-access-method": (None, False),
    "no-tablespaces": (None, False),
    "no-toast-compression": (None, False),
    "no-unlogged-table-data": (None, False),
    "on-conflict-do-nothing": (None, False),
    "password": ("W", False),
    "port": ("p", True),
    "quote-all-identifiers": (None, False),
    "restrict-key": (None, True),
    "role": (None, True),
    "rows-per-insert": (None, True),
    "schema": ("n", True),
    "schema-only": ("s", False),
    "section": (None, True),
    "sequence-data": (None, False),
    "serializable-deferrable": (None, False),
    "snapshot": (None, True),
    "statistics": (None, False),
    "statistics-only": (None, False),
    "strict-names": (None, False),
    "superuser": ("S", True),
    "sync-method": (None, True),
    "table": ("t", True),
    "table-and-children": (None, True),
    "use-set-session-authorization": (None, False),
    "username": ("U", True),
    "verbose": ("v", False),
    "version": ("V", False),
}
# Undocumented spellings pg_dump maps onto the same option (same getopt value or flag).
ALIASES: dict[str, str] = {
    "attribute-inserts": "column-inserts",
    "blobs": "large-objects",
    "no-acl": "no-privileges",
    "no-blobs": "no-large-objects",
}
# Short letters of the getopt string with no long name of their own. (`-V` and `-?` are
# recognised only as pg_dump's first argument, never after lastgood's own switches.)
SHORT_ONLY: dict[str, bool] = {"X": False}
SHORT_OPTIONS: dict[str, tuple[str, bool]] = {
    letter: (name, takes) for name, (letter, takes) in LONG_OPTIONS.items() if letter and letter not in "V?"
} | {letter: (f"-{letter}", takes) for letter, takes in SHORT_ONLY.items()}


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


# --------------------------------------------------------------------------- the policy

_PATTERN = re.compile(r"^\S.*$")
_COMPRESS = re.compile(r"^(?:[0-9]|none|gzip(?::(?:[0-9]|level=[0-9]))?)$")
_TIMEOUT = re.compile(r"^\d+(?:\.\d+)?\s*(?:us|ms|s|min|h|d)?$")


def _float_digits(value: str) -> bool:
    return bool(re.fullmatch(r"-?\d{1,2}", value)) and -15 <= int(value) <= 3


# Allowed canonical names → a check of the value (None: the option takes no value).
ALLOWED: dict[str, tuple[Callable[[str], object], str] | None] = {
    "table": (_PATTERN.match, "a table pattern"),
    "exclude-table": (_PATTERN.match, "a table pattern"),
    "schema": (_PATTERN.match, "a schema pattern"),
    "exclude-schema": (_PATTERN.match, "a schema pattern"),
    "exclude-table-data": (_PATTERN.match, "a table pattern"),
    "extension": (_PATTERN.match, "an extension pattern"),
    "exclude-extension": (_PATTERN.match, "an extension pattern"),
    "compress": (
        _COMPRESS.match,
        "a gzip level 0-9, `gzip[:N]` or `none` (the bundled pg_dump/pg_restore read gzip only)",
    ),
    "lock-wait-timeout": (_TIMEOUT.match, "a timeout such as 5000 or 10s"),
    "extra-float-digits": (_float_digits, "an integer from -15 to 3"),
    "large-objects": None,
    "no-large-objects": None,
    "no-comments": None,
    "no-owner": None,
    "no-privileges": None,
    "no-policies": None,
    "no-publications": None,
    "no-subscriptions": None,
    "no-security-labels": None,
    "no-tablespaces": None,
    "no-table-access-method": None,
    "no-toast-compression": None,
    "quote-all-identifiers": None,
    "load-via-partition-root": None,
    "disable-dollar-quoting": None,
    "use-set-session-authorization": None,
    "sequence-data": None,
    "statistics": None,
    "no-statistics": None,
    "strict-names": None,
    "verbose": None,
}

_NO_DATA = "makes a dump without table data, which would be committed as if it were a complete backup"
_NO_SCHEMA = "makes a dump without the schema: not restorable as a full backup"
_CONNECTION = "changes the connection (it comes from the source's url_secret)"
_INSERTS = "stores the data as INSERT statements instead of COPY: a different dump, far slower to restore"
_CHILDREN = (
    "selects partitions in a way lastgood's row counts do not follow (use include/exclude, or "
    "--table/--exclude-table per partition)"
)
_NO_EFFECT = "has no effect on, or is not meant for, the custom-format dump lastgood streams"
REFUSED: dict[str, str] = {
    "file": "writes the dump to a file instead of lastgood's stream",
    "format": "changes the dump's format (lastgood stores pg_dump's custom format, read by pg_restore)",
    "jobs": "parallel dumps need the directory format, which lastgood does not store",
    "dbname": _CONNECTION,
    "host": _CONNECTION,
    "port": _CONNECTION,
    "username": _CONNECTION,
    "password": _CONNECTION,
    "no-password": _CONNECTION,
    "role": _CONNECTION,
    "snapshot": "changes the snapshot (lastgood dumps and counts rows on one exported snapshot)",
    "serializable-deferrable": "changes the snapshot (lastgood dumps and counts rows on one exported snapshot)",
    "schema-only": _NO_DATA,
    "no-data": _NO_DATA,
    "statistics-only": _NO_DATA,
    "data-only": _NO_SCHEMA,
    "no-schema": _NO_SCHEMA,
    "section": "dumps only part of the database: not restorable as a full backup",
    "table-and-children": _CHILDREN,
    "exclude-table-and-children": _CHILDREN,
    "exclude-table-data-and-children": _CHILDREN,
    "filter": "reads the selection from a local file lastgood cannot check (use include/exclude)",
    "include-foreign-data": "reads data from other servers",
    "enable-row-security": "row security can silently leave rows out of the backup",
    "no-unlogged-table-data": "leaves out rows that lastgood's row counts include",
    "inserts": _INSERTS,
    "column-inserts": _INSERTS,
    "rows-per-insert": _INSERTS,
    "on-conflict-do-nothing": _INSERTS,
    "encoding": "changes the dump's text encoding",
    "binary-upgrade": "is for upgrade utilities only",
    "disable-triggers": "is for data-only dumps",
    "help": "prints help instead of dumping",
    "version": "prints the version instead of dumping",
}
for _name in ("clean", "create", "if-exists", "superuser", "restrict-key", "no-sync", "sync-method"):
    REFUSED[_name] = _NO_EFFECT
REFUSED["no-reconnect"] = "is obsolete (a no-op)"
REFUSED["-X"] = "is not a pg_dump 18 option"


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class PgDumpOption:
    """One option as pg_dump reads it: canonical long name, value, and how it was written."""

    name: str
    value: str | None
    written: str
    shown: str  # `-s (--schema-only)`, `--format`, `--no-comments (written --no-comm)`

    def argv(self) -> str:
        return f"--{self.name}" if self.value is None else f"--{self.name}={self.value}"


def _refuse(written: str, why: str) -> ConfigError:
    return ConfigError(f"pg_dump_args: {written!r} {why}")


def _resolve_long(name: str, written: str) -> str:
    """getopt_long's lookup: an exact name, else the one option every matching prefix means."""
    if name in LONG_OPTIONS:
        return name
    matches = sorted(n for n in LONG_OPTIONS if n.startswith(name)) if name else []
    meanings = {canonical(n) for n in matches}
    if not matches:
        raise _refuse(written, f"is not allowed: --{name} is not a pg_dump option")
    if len(meanings) > 1:
        shown = ", ".join(f"--{n}" for n in matches)
        raise _refuse(written, f"is ambiguous: it abbreviates {shown} (write the option in full)")
    return matches[0]


def parse_pg_dump_args(args: Sequence[str]) -> list[PgDumpOption]:
    """Read `args` as pg_dump's getopt_long would; ConfigError on a syntax error or a positional."""
    out: list[PgDumpOption] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            if i + 1 < len(args):
                raise _refuse(
                    args[i + 1], "is not allowed: after `--` it is a positional argument (the database name)"
                )
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            long = _resolve_long(name, arg)
            takes = LONG_OPTIONS[long][1]
            shown = f"--{long}" if long == name else f"--{long} (written --{name})"
            if eq and not takes:
                raise _refuse(arg, f"is not allowed: {shown} takes no value")
            if takes and not eq:
                if i + 1 >= len(args):
                    raise _refuse(arg, f"is not allowed: {shown} needs a value")
                i += 1
                value = args[i]
                arg = f"{arg} {value}"
            out.append(PgDumpOption(canonical(long), value if takes else None, arg, shown))
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                letter = arg[j]
                if letter not in SHORT_OPTIONS:
                    raise _refuse(arg, f"is not allowed: -{letter} is not a pg_dump option")
                long, takes = SHORT_OPTIONS[letter]
                shown = f"-{letter}" if long.startswith("-") else f"-{letter} (--{long})"
                if not takes:
                    out.append(PgDumpOption(canonical(long), None, arg, shown))
                    j += 1
                    continue
                value = arg[j + 1 :]
                written = arg
                if not value:
                    if i + 1 >= len(args):
                        raise _refuse(arg, f"is not allowed: {shown} needs a value")
                    i += 1
                    value = args[i]
                    written = f"{arg} {value}"
                out.append(PgDumpOption(canonical(long), value, written, shown))
                break
        else:
            raise _refuse(
                arg, "is not allowed: a positional argument is the database name (lastgood sets it)"
            )
        i += 1
    return out


def check_pg_dump_args(args: Sequence[str]) -> list[PgDumpOption]:
    """The parsed options, every one allowed (ConfigError naming the first that is not)."""
    options = parse_pg_dump_args(args)
    for option in options:
        if option.name not in ALLOWED:
            why = REFUSED.get(option.name, "is not on lastgood's allow-list (see docs/configuration.md)")
            raise _refuse(option.written, f"is not allowed: {option.shown} {why}")
        check = ALLOWED[option.name]
        if check is not None and not check[0](option.value or ""):
            raise _refuse(option.written, f"is not allowed: {option.shown} needs {check[1]}")
    return options


def normalise_pg_dump_args(args: Sequence[str]) -> list[str]:
    """The allowed options in pg_dump's canonical spelling (`--name` / `--name=value`)."""
    return [option.argv() for option in check_pg_dump_args(args)]
