"""Which tables a PostgreSQL dump takes: `include` / `exclude` / `pg_dump_args` as pg_dump switches.

Entries with a dot are table patterns (`-t` / `-T`, e.g. `public.users`,
`audit.*`), others schema patterns (`-n` / `-N`). `pg_dump_args` is parsed with
pg_dump's own option grammar and checked against the allow-list
(`lastgood.core.pg_dump_args`); pg_dump gets the normalised spelling. The same
rules decide which tables are counted: `--table` / `--exclude-table` /
`--schema` / `--exclude-schema` from `pg_dump_args` select like include/exclude
(a table pattern without a schema counts as `public.<pattern>`, pg_dump's
default search path), and `--exclude-table-data` tables count as empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from lastgood.core.pg_dump_args import check_pg_dump_args
from lastgood.engines.base import EngineOptions


def _qualified(pattern: str) -> str:
    return pattern if "." in pattern else f"public.{pattern}"


@dataclass(frozen=True)
class Selection:
    """include/exclude/pg_dump_args from the config, as pg_dump switches and as a filter for counts."""

    include_schemas: tuple[str, ...] = ()
    exclude_schemas: tuple[str, ...] = ()
    include_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    exclude_data: tuple[str, ...] = ()
    switches: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_options(cls, options: EngineOptions) -> Selection:
        """ConfigError naming the first pg_dump_args option that is not allowed."""
        include, exclude = options.include, options.exclude
        parsed = check_pg_dump_args(options.pg_dump_args)
        include_schemas = [p for p in include if "." not in p]
        exclude_schemas = [p for p in exclude if "." not in p]
        include_tables = [p for p in include if "." in p]
        exclude_tables = [p for p in exclude if "." in p]
        switches = [f"--schema={p}" for p in include_schemas]
        switches += [f"--exclude-schema={p}" for p in exclude_schemas]
        switches += [f"--table={p}" for p in include_tables]
        switches += [f"--exclude-table={p}" for p in exclude_tables]
        switches += [option.argv() for option in parsed]
        exclude_data: list[str] = []
        for option in parsed:
            value = option.value or ""
            if option.name == "schema":
                include_schemas.append(value)
            elif option.name == "exclude-schema":
                exclude_schemas.append(value)
            elif option.name == "table":
                include_tables.append(_qualified(value))
            elif option.name == "exclude-table":
                exclude_tables.append(_qualified(value))
            elif option.name == "exclude-table-data":
                exclude_data.append(_qualified(value))
        return cls(
            include_schemas=tuple(include_schemas),
            exclude_schemas=tuple(exclude_schemas),
            include_tables=tuple(include_tables),
            exclude_tables=tuple(exclude_tables),
            exclude_data=tuple(exclude_data),
            switches=tuple(switches),
        )

    def pg_dump_switches(self) -> list[str]:
        return list(self.switches)

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
        return not any(_match(p, name) for p in self.exclude_data)


def _match(pattern: str, name: str) -> bool:
    # pg_dump patterns: shell-like wildcards; unquoted identifiers fold to lower case.
    folded = pattern.replace('"', "") if '"' in pattern else pattern.lower()
    return fnmatchcase(name, folded)
