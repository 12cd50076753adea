"""The project's config file, `lastgood.toml`: datasets to publish and sources to back up.

Resolution (`default_config_path`): `LASTGOOD_CONFIG`; else the copy the build ships in the
layer (`<package>/lastgood.toml`); else `lastgood.toml` in the working directory; else at the
project root (the checkout holding `pyproject.toml`). No file is an error naming the file to
create — there is no silent default. The demo and the tests bring their own files
(`devstack/demo/lastgood.toml`, `tests/fixtures/config/*.toml`) through `LASTGOOD_CONFIG`.

The file is TOML (a `.json` file with the same structure is read as JSON). `check_config_file`
validates it whole — syntax (with tomllib's line), types, unknown keys, schedules, secret
names, retention policies, duplicate names — and gives line-precise messages
(`lastgood.toml:12: sources[1].schedule: …`); `lastgood config check` prints them and every
function start (`get_config`) raises them as one ConfigError, so an invalid file is never
half-applied. Connection strings are never in this file: a source names where its secret
lives (`lastgood.core.config_model.secret_kind`), resolved by `lastgood.core.settings.get_secret`.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lastgood.core.config_model import (
    CATEGORY_OBJECTIVES,
    DatasetConfig,
    LastgoodConfig,
    SourceConfig,
    parse_duration_seconds,
    secret_kind,
)
from lastgood.core.errors import ConfigError
from lastgood.core.settings import get_settings, package_dir
from lastgood.core.toml_lines import Path as KeyPath
from lastgood.core.toml_lines import key_lines, line_of

__all__ = [
    "CATEGORY_OBJECTIVES",
    "ConfigCheck",
    "ConfigProblem",
    "DatasetConfig",
    "LastgoodConfig",
    "SourceConfig",
    "bundled_folder",
    "check_config_file",
    "default_config_path",
    "get_config",
    "line_of",
    "load_config_file",
    "parse_duration_seconds",
    "read_config_document",
    "require_secrets",
    "reset_config",
]

CONFIG_FILE_NAME = "lastgood.toml"
EXAMPLE_FILE_NAME = "lastgood.example.toml"
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True)
class ConfigProblem:
    """One finding of `check_config_file`: `<file>:<line>: <where>: <message>`."""

    file: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        head = f"{self.file}:{self.line}" if self.line else self.file
        return ": ".join(part for part in (head, self.where, self.message) if part)


@dataclass
class ConfigCheck:
    """What a config file holds and what is wrong with it (errors refuse it; warnings do not)."""

    path: Path
    config: LastgoodConfig | None = None
    errors: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def problem(self, loc: KeyPath, message: str) -> ConfigProblem:
        return ConfigProblem(str(self.path), line_of(self.lines, loc), render_loc(loc), message)


def render_loc(loc: KeyPath) -> str:
    """`("sources", 1, "schedule")` -> `sources[1].schedule`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def project_root() -> Path | None:
    """The source checkout holding the package (`shared/lastgood` two levels below it), if any."""
    root = package_dir().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def shipped_config_path() -> Path:
    """Where the build puts the project's `lastgood.toml` inside the layer's package."""
    return package_dir() / CONFIG_FILE_NAME


def default_config_path() -> Path:
    """The config file this process uses (see the module docstring); ConfigError when none."""
    configured = get_settings().config_path
    if configured:
        return Path(configured)
    root = project_root()
    candidates = [shipped_config_path(), Path.cwd() / CONFIG_FILE_NAME]
    candidates += [root / CONFIG_FILE_NAME] if root else []
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = root / CONFIG_FILE_NAME if root else Path.cwd() / CONFIG_FILE_NAME
    raise ConfigError(
        f"no config file: create {where} (the commented example is {EXAMPLE_FILE_NAME}; "
        "docs/configuration.md describes every field) or set LASTGOOD_CONFIG to its path"
    )


def read_config_document(path: Path) -> dict[str, Any]:
    """The file's raw document (TOML, or JSON for a `.json` file); ConfigError with the line."""
    check = ConfigCheck(path)
    raw = _parse(check)
    if raw is None:
        raise ConfigError(str(check.errors[0]))
    return raw


def _parse(check: ConfigCheck) -> dict[str, Any] | None:
    path = check.path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        check.errors.append(
            ConfigProblem(
                str(path), None, "", "config file does not exist (LASTGOOD_CONFIG, else lastgood.toml)"
            )
        )
        return None
    except (OSError, UnicodeDecodeError) as exc:
        check.errors.append(ConfigProblem(str(path), None, "", f"cannot read the config file: {exc}"))
        return None
    try:
        if path.suffix == ".json":
            raw: Any = json.loads(text)
        else:
            raw = tomllib.loads(text)
            check.lines = key_lines(text)
    except json.JSONDecodeError as exc:
        check.errors.append(ConfigProblem(str(path), exc.lineno, "", f"not valid JSON: {exc.msg}"))
        return None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = int(position[1]) if position else None
        detail = message[: position.start()].strip() if position else message
        column = f" (column {position[2]})" if position else ""
        check.errors.append(ConfigProblem(str(path), line, "", f"TOML syntax error: {detail}{column}"))
        return None
    if not isinstance(raw, dict):
        check.errors.append(
            ConfigProblem(str(path), None, "", "the config file must hold a table of settings")
        )
        return None
    return raw


def _duplicates(check: ConfigCheck, raw: dict[str, Any]) -> None:
    for kind, key in (("source", "sources"), ("dataset", "datasets")):
        entries = raw.get(key)
        if not isinstance(entries, list):
            continue
        first: dict[str, int] = {}
        for index, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str):
                continue
            if name in first:
                earlier = first[name]
                line = line_of(check.lines, (key, earlier, "name"))
                at = f"{key}[{earlier}]" + (f", line {line}" if line else "")
                check.errors.append(
                    check.problem((key, index, "name"), f"duplicate {kind} names: {name} (also {at})")
                )
            else:
                first[name] = index


def _known_keys(loc: KeyPath) -> str:
    model: type[Any] = LastgoodConfig
    if len(loc) == 3 and loc[0] == "sources":
        model = SourceConfig
    elif len(loc) == 3 and loc[0] == "datasets":
        model = DatasetConfig
    elif len(loc) == 2 and loc[0] == "replica":
        from lastgood.core.config_model import ReplicaConfig

        model = ReplicaConfig
    elif len(loc) != 1:
        return ""
    names = [f.alias or n for n, f in model.model_fields.items()]
    return f" (known keys: {', '.join(names)})"


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key" + _known_keys(loc)
    if kind == "literal_error" and loc[-1:] == ("engine",):
        return f"unknown engine {error['input']!r}: expected postgres, mongodb, upstash or redis"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def check_config_file(path: Path, *, environ: Mapping[str, str] | None = None) -> ConfigCheck:
    """Validate `path` whole. `environ` (given by `config check`) also warns about unset secrets."""
    check = ConfigCheck(path)
    raw = _parse(check)
    if raw is None:
        return check
    _duplicates(check, raw)
    if check.errors:
        return check
    try:
        check.config = LastgoodConfig.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            check.errors.append(check.problem(tuple(error["loc"]), _describe(error)))
        check.errors.sort(key=lambda p: p.line or 0)
        return check
    for index, source in enumerate(check.config.sources):
        if not source.retention:
            check.warnings.append(
                check.problem(
                    ("sources", index),
                    f"source {source.name!r} has no retention policy: prune keeps every backup",
                )
            )
    if check.config.replica is not None and not check.config.replica.retention:
        check.warnings.append(
            check.problem(("replica",), "the replica has no retention policy: its prune keeps every copy")
        )
    if environ is not None:
        check.warnings += unset_secrets(check, environ)
    return check


def _is_set(ref: str, environ: Mapping[str, str]) -> bool:
    return secret_kind(ref) != "env" or any(
        environ.get(n) for n in (ref, f"{ref}_SECRET_ARN", f"{ref}_SSM_PARAM")
    )


def unset_secrets(
    check: ConfigCheck, environ: Mapping[str, str], *, sources: list[str] | None = None, scratch: bool = True
) -> list[ConfigProblem]:
    """Secrets named as variables that `environ` does not provide (nor `_SECRET_ARN` / `_SSM_PARAM`)."""
    found = []
    for index, source in enumerate(check.config.sources if check.config else []):
        if sources is not None and source.name not in sources:
            continue
        for name, ref in source.secrets():
            if (scratch or not name.startswith("scratch_")) and not _is_set(ref, environ):
                found.append(
                    check.problem(
                        ("sources", index, name),
                        f"{ref} is not set (nor {ref}_SECRET_ARN / {ref}_SSM_PARAM): the deployment must provide it",
                    )
                )
    return found


def load_config_file(path: Path) -> LastgoodConfig:
    """The validated config of `path`; ConfigError listing every problem, one line each."""
    return _checked(path).config  # type: ignore[return-value]  # _checked raises when None


def _checked(path: Path) -> ConfigCheck:
    check = check_config_file(path)
    if check.errors or check.config is None:
        raise ConfigError("\n".join(str(p) for p in check.errors) or f"config file {path} is invalid")
    return check


@lru_cache(maxsize=1)
def loaded_config() -> ConfigCheck:
    """The process-wide config, validated once (lazily) with its key lines."""
    return _checked(default_config_path())


def get_config() -> LastgoodConfig:
    """The process-wide config (read once, lazily); an invalid file raises ConfigError."""
    config = loaded_config().config
    assert config is not None
    return config


def require_secrets(source_names: list[str], *, scratch: bool = False) -> None:
    """At a function's start: every secret these sources need is provided, else ConfigError
    naming the variable and the config line that declares it (nothing has been done yet)."""
    missing = unset_secrets(loaded_config(), os.environ, sources=source_names, scratch=scratch)
    if missing:
        raise ConfigError(
            "\n".join(str(p).replace("the deployment must provide it", "cannot start") for p in missing)
        )


def config_dir() -> Path:
    """The folder of the config file in use (project paths in the file are relative to it)."""
    return loaded_config().path.resolve().parent


def bundled_folder() -> Path:
    """The bundled copies: `LASTGOOD_BUNDLED_DIR`; else the copy the build ships in the layer
    (`<package>/bundled`); else the config's `bundled_dir` next to the config file."""
    configured = get_settings().bundled_dir
    if configured:
        return Path(configured)
    shipped = package_dir() / "bundled"
    if shipped.is_dir():
        return shipped
    return config_dir() / get_config().bundled_dir


def reset_config() -> None:
    loaded_config.cache_clear()
