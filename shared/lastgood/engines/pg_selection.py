"""Which tables a PostgreSQL dump takes: `include` / `exclude` / `pg_dump_args` as pg_dump switches.

Entries with a dot are table patterns (`-t` / `-T`, e.g. `public.users`,
`audit.*`), others schema patterns (`-n` / `-N`). The same rules decide which
tables are counted (and which count as empty: `--exclude-table-data`,
`--schema-only`). `pg_dump_args` may not change the output file/format,
connection, jobs or snapshot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from lastgood.core.errors import ConfigError
from lastgood.engines.base import EngineOptions

# pg_dump arguments a source may not pass: they would redirect or reformat the
# output, change the connection, or break the shared snapshot.
_FORBIDDEN_ARGS = re.compile(
    r"^(-f|--file|-F|--format|-d|--dbname|-h|--host|-p|--port|-U|--username|-W|--password|"
    r"-j|--jobs|--snapshot|-V|--version|-\?|--help)(=.*)?$|^-[fFdhpUj].+$"
)


@dataclass(frozen=True)
class Selection:
    """include/exclude from the config, as pg_dump switches and as a filter for counts."""

    include_schemas: tuple[str, ...] = ()
    exclude_schemas: tuple[str, ...] = ()
    include_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    exclude_data: tuple[str, ...] = ()
    schema_only: bool = False
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_options(cls, options: EngineOptions) -> Selection:
        include, exclude, extra = options.include, options.exclude, list(options.pg_dump_args)
        validate_pg_dump_args(extra)
        exclude_data: list[str] = []
        schema_only = False
        it = iter(extra)
        for arg in it:
            if arg in {"-s", "--schema-only"}:
                schema_only = True
            elif arg == "--exclude-table-data":
                exclude_data.append(next(it, ""))
            elif arg.startswith("--exclude-table-data="):
                exclude_data.append(arg.split("=", 1)[1])
        return cls(
            include_schemas=tuple(p for p in include if "." not in p),
            exclude_schemas=tuple(p for p in exclude if "." not in p),
            include_tables=tuple(p for p in include if "." in p),
            exclude_tables=tuple(p for p in exclude if "." in p),
            exclude_data=tuple(p for p in exclude_data if p),
            schema_only=schema_only,
            extra_args=tuple(extra),
        )

    def pg_dump_switches(self) -> list[str]:
        args: list[str] = []
        args += [f"--schema={p}" for p in self.include_schemas]
        args += [f"--exclude-schema={p}" for p in self.exclude_schemas]
        args += [f"--table={p}" for p in self.include_tables]
        args += [f"--exclude-table={p}" for p in self.exclude_tables]
        return args + list(self.extra_args)

    def dumps_table(self, schema: str, table: str) -> bool:
        """Whether pg_dump (with these switches) dumps this table (-t wins over -n/-N, as in pg_dump)."""
        name = f"{schema}.{table}"
        if any(_match(p, name) for p in self.exclude_tables):
            return False
        if self.include_tables:
            return any(_match(p, name) for p in self.include_tables)
        if self.include_schemas and not any(_match(p, schema) for p in self.include_schemas):
            return False
        return not any(_match(p, schema) for p in self.exclude_schemas)

    def dumps_rows(self, schema: str, table: str) -> bool:
        name = f"{schema}.{table}"
        return not self.schema_only and not any(_match(p, name) for p in self.exclude_data)


def _match(pattern: str, name: str) -> bool:
    # pg_dump patterns: shell-like wildcards; unquoted identifiers fold to lower case.
    folded = pattern.replace('"', "") if '"' in pattern else pattern.lower()
    return fnmatchcase(name, folded)


def validate_pg_dump_args(args: list[str]) -> None:
    for arg in args:
        if _FORBIDDEN_ARGS.match(arg):
            raise ConfigError(
                f"pg_dump_args: {arg!r} is not allowed (output file, format, connection, jobs and "
                "snapshot are set by lastgood)"
            )
