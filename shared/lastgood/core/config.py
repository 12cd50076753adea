"""The product config: datasets to publish and sources to back up.

One validated JSON file ships with the layer (`config/default.json`);
`LASTGOOD_CONFIG` points at another. Connection strings are never in this file:
a source names the secret (environment variable / Secrets Manager / SSM) that
holds its URL, resolved by `lastgood.core.settings.get_secret`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lastgood.core.errors import ConfigError
from lastgood.core.pg_dump_args import check_pg_dump_args
from lastgood.core.settings import get_settings, package_dir

_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_duration_seconds(text: str) -> int:
    """Parse `5m`, `1h`, `24h`, `7d`, `1d12h` into seconds (rejects empty/zero/garbage)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groupdict().values()):
        raise ValueError(f"expected a duration like '5m', '1h', '7d', got {text!r}")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    seconds = parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(_Strict):
    """A dataset regenerated to static JSON and read by the fallback loader."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    collection: str = Field(min_length=1)
    filter: dict[str, Any] = Field(default_factory=dict)
    projection: dict[str, Any] | None = None
    sort: list[tuple[str, Literal[1, -1]]] = Field(default_factory=list)
    min_count: int = Field(1, ge=1)
    max_shrink: float = Field(0.5, gt=0, le=1)
    # max_shrink is measured against the largest count published within this window.
    shrink_window: str = "7d"
    item_schema: dict[str, Any] | None = Field(None, alias="schema")
    freshness: str = "2h"

    @field_validator("freshness", "shrink_window")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration_seconds(value)
        return value

    @property
    def freshness_seconds(self) -> int:
        return parse_duration_seconds(self.freshness)

    @property
    def shrink_window_seconds(self) -> int:
        return parse_duration_seconds(self.shrink_window)


# Seed 003: RPO/RTO per data category.
CATEGORY_OBJECTIVES: dict[str, tuple[str, str]] = {
    "critical": ("5m", "1h"),
    "user_data": ("1h", "4h"),
    "operational": ("24h", "8h"),
    "auxiliary": ("24h", "12h"),
}


class SourceConfig(_Strict):
    """A database backed up on a schedule."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    engine: Literal["postgres", "mongodb", "upstash", "redis"]
    # Name of the secret holding the connection URL (env var locally; <NAME>_SECRET_ARN in AWS).
    url_secret: str = Field(min_length=1)
    # Upstash only: the secret holding the REST token.
    token_secret: str | None = None
    category: Literal["critical", "user_data", "operational", "auxiliary"] = "user_data"
    rpo: str | None = None
    rto: str | None = None
    schedule: str = "rate(1 hour)"
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    pg_dump_args: list[str] = Field(default_factory=list)
    database: str | None = None
    retention: dict[str, Any] = Field(default_factory=dict)
    scratch_url_secret: str | None = None
    # The scratch target's own REST token (an https Upstash scratch); never the source's token_secret.
    scratch_token_secret: str | None = None
    client_side_encryption: bool = False
    storage_budget_bytes: int | None = Field(None, gt=0)
    # A backup whose record count / size is below this share of the median of the source's
    # recent good backups is committed as `suspect` (0 turns the check off; an empty dump — no
    # tables, collections or keys — is always suspect). See lastgood.backups.suspect.
    suspect_min_count_ratio: float = Field(0.5, ge=0, lt=1)
    suspect_min_size_ratio: float = Field(0.5, ge=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        for text in (self.rpo, self.rto):
            if text is not None:
                parse_duration_seconds(text)
        if self.engine == "upstash" and not self.token_secret:
            raise ValueError("an upstash source needs token_secret (the REST token's secret name)")
        if self.pg_dump_args:
            if self.engine != "postgres":
                raise ValueError(f"pg_dump_args is for postgres sources, not {self.engine}")
            try:  # pg_dump's own option grammar against the allow-list (lastgood.core.pg_dump_args)
                check_pg_dump_args(self.pg_dump_args)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return self

    @property
    def rpo_seconds(self) -> int:
        return parse_duration_seconds(self.rpo or CATEGORY_OBJECTIVES[self.category][0])

    @property
    def rto_seconds(self) -> int:
        return parse_duration_seconds(self.rto or CATEGORY_OBJECTIVES[self.category][1])


class LastgoodConfig(_Strict):
    datasets: list[DatasetConfig] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> LastgoodConfig:
        for kind, names in (
            ("dataset", [d.name for d in self.datasets]),
            ("source", [s.name for s in self.sources]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} names: {', '.join(dupes)}")
        return self

    def dataset(self, name: str) -> DatasetConfig:
        for ds in self.datasets:
            if ds.name == name:
                return ds
        valid = ", ".join(d.name for d in self.datasets) or "(none)"
        raise ConfigError(f"unknown dataset {name!r}; configured datasets: {valid}")

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        valid = ", ".join(s.name for s in self.sources) or "(none)"
        raise ConfigError(f"unknown source {name!r}; configured sources: {valid}")


def default_config_path() -> Path:
    return package_dir() / "config" / "default.json"


def load_config_file(path: Path) -> LastgoodConfig:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"LASTGOOD_CONFIG: config file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
    try:
        return LastgoodConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"config file {path} is invalid: {problems}") from None


@lru_cache(maxsize=1)
def get_config() -> LastgoodConfig:
    """The process-wide config (read once, lazily)."""
    path = get_settings().config_path
    return load_config_file(Path(path) if path else default_config_path())


def reset_config() -> None:
    get_config.cache_clear()
