"""The config file's typed model: datasets to publish, sources to back up (no I/O).

Every field is checked here, so `lastgood config check` and every function start refuse the
same files: schedules are EventBridge Scheduler expressions (`lastgood.core.schedule`),
secrets are named in a form lastgood can resolve (`secret_kind`), a retention policy keeps
something, a collection name is a MongoDB one. Loading, locating and line-precise messages:
`lastgood.core.config`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lastgood.core.errors import ConfigError, RetentionError
from lastgood.core.pg_dump_args import check_pg_dump_args
from lastgood.core.schedule import check_schedule
from lastgood.core.within import Within

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


# Where a secret lives: an environment variable name (resolved as NAME, NAME_SECRET_ARN or
# NAME_SSM_PARAM by lastgood.core.settings.get_secret), a Secrets Manager ARN, or an SSM
# parameter (its `/hierarchical/name` or ARN).
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRETS_MANAGER_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]+$")
_SSM_NAME = re.compile(r"^/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
SecretKind = Literal["env", "secretsmanager", "ssm"]


def secret_kind(ref: str) -> SecretKind:
    """`env` (a variable name), `secretsmanager` (an ARN) or `ssm` (a name or ARN); else ValueError."""
    if _ENV_NAME.match(ref):
        return "env"
    if _SECRETS_MANAGER_ARN.match(ref):
        return "secretsmanager"
    if _SSM_ARN.match(ref) or _SSM_NAME.match(ref):
        return "ssm"
    raise ValueError(
        f"{ref!r} does not name a secret: expected an environment variable name (DATABASE_URL), "
        "a Secrets Manager ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>) or an SSM "
        "parameter (/path/name or its arn:aws:ssm:… ARN)"
    )


# The keys of lastgood.backups.retention.RetentionPolicy (a unit test holds them equal).
RETENTION_COUNT_RULES = (
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
)
RETENTION_WINDOW_RULES = (
    "keep_within",
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
)


def check_retention(raw: dict[str, Any]) -> None:
    """A policy prune can apply and that keeps something; ValueError naming the rule otherwise."""
    known = (*RETENTION_COUNT_RULES, *RETENTION_WINDOW_RULES)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"unknown retention rule {', '.join(unknown)}; known: {', '.join(known)}")
    keeps = False
    for key in RETENTION_COUNT_RULES:
        value = raw.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < -1:
            raise ValueError(f"{key} must be a whole number >= 0 (or -1 for unlimited), got {value!r}")
        keeps = keeps or value != 0
    for key in RETENTION_WINDOW_RULES:
        if key not in raw:
            continue
        value = raw[key]
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a duration such as 2d, 36h, 1y6m; got {value!r}")
        try:
            Within.parse(value, key)
        except RetentionError as exc:
            raise ValueError(str(exc)) from None
        keeps = True
    if not keeps:
        raise ValueError(
            "this retention policy keeps nothing (every rule is 0 or missing): prune would refuse it; "
            "keep at least one backup (e.g. keep_daily = 7), or leave retention out to keep every backup"
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(_Strict):
    """A dataset regenerated to static JSON and read by the fallback loader."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    collection: str
    filter: dict[str, Any] = Field(default_factory=dict)
    projection: dict[str, Any] | None = None
    sort: list[tuple[str, Literal[1, -1]]] = Field(default_factory=list)
    min_count: int = Field(1, ge=1)
    max_shrink: float = Field(0.5, gt=0, le=1)
    # max_shrink is measured against the largest count published within this window.
    shrink_window: str = "7d"
    item_schema: dict[str, Any] | None = Field(None, alias="schema")
    freshness: str = "2h"

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        # Whether the collection exists is the database's to say: health and regenerate report it.
        if not value.strip() or value != value.strip():
            raise ValueError(
                "a dataset needs the name of its MongoDB collection (not empty, no leading/trailing "
                "spaces); whether it exists is reported by health and regenerate"
            )
        if "$" in value or "\x00" in value or value.startswith("system."):
            raise ValueError(f"{value!r} is not a MongoDB collection name (no '$', no 'system.' prefix)")
        return value

    @field_validator("freshness", "shrink_window")
    @classmethod
    def _check_freshness(cls, value: str) -> str:
        parse_duration_seconds(value)
        return value

    @property
    def shrink_window_seconds(self) -> int:
        return parse_duration_seconds(self.shrink_window)

    @property
    def freshness_seconds(self) -> int:
        return parse_duration_seconds(self.freshness)


# Seed 003: RPO/RTO per data category.
CATEGORY_OBJECTIVES: dict[str, tuple[str, str]] = {
    "critical": ("5m", "1h"),
    "user_data": ("1h", "4h"),
    "operational": ("24h", "8h"),
    "auxiliary": ("24h", "12h"),
}
SECRET_FIELDS = ("url_secret", "token_secret", "scratch_url_secret", "scratch_token_secret")


class SourceConfig(_Strict):
    """A database backed up on a schedule."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    engine: Literal["postgres", "mongodb", "upstash", "redis"]
    # Where the connection URL lives (see `secret_kind`; a variable name becomes
    # <NAME>_SECRET_ARN / <NAME>_SSM_PARAM in AWS).
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
    # Point-in-time recovery (PostgreSQL, `lastgood.pitr`): bases on a logical slot's snapshot +
    # change segments captured every `capture_interval`. Slot lag past `pitr_lag_alarm_bytes`
    # is a health reason; past `pitr_max_lag_bytes` lastgood drops its own slot (loudly) and
    # takes a new base. `pitr_part_bytes`: the most change bytes in one stored segment part.
    pitr: bool = False
    capture_interval: str = "5m"
    pitr_lag_alarm_bytes: int = Field(1024**3, gt=0)
    pitr_max_lag_bytes: int = Field(16 * 1024**3, gt=0)
    pitr_part_bytes: int = Field(16 * 1024**2, ge=1024)

    @field_validator("capture_interval")
    @classmethod
    def _check_capture_interval(cls, value: str) -> str:
        if parse_duration_seconds(value) < 60:
            raise ValueError(
                f"capture_interval must be at least 1m (EventBridge's finest rate), got {value!r}"
            )
        return value

    @property
    def capture_interval_seconds(self) -> int:
        return parse_duration_seconds(self.capture_interval)

    # Where the scheduled backup runs: the Lambda (15 minutes) or Fargate (FargateRunner; docs/limits.md).
    runner: Literal["lambda", "fargate"] = "lambda"
    fargate_shards: int = Field(1, ge=1, le=64)  # MongoDB on Fargate: tasks (lastgood.backups.shard)

    @field_validator("rpo", "rto")
    @classmethod
    def _check_objective(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration_seconds(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        check_schedule(value)
        return value

    @field_validator(*SECRET_FIELDS)
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value is not None:
            secret_kind(value)
        return value

    @field_validator("retention")
    @classmethod
    def _check_retention(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_retention(value)  # runs only for a declared policy: leaving it out keeps every backup
        return value

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        if self.engine == "upstash" and not self.token_secret:
            raise ValueError("an upstash source needs token_secret (the REST token's secret name)")
        if self.pg_dump_args:
            if self.engine != "postgres":
                raise ValueError(f"pg_dump_args is for postgres sources, not {self.engine}")
            try:  # pg_dump's own option grammar against the allow-list (lastgood.core.pg_dump_args)
                check_pg_dump_args(self.pg_dump_args)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if self.fargate_shards > 1 and (self.engine != "mongodb" or self.runner != "fargate"):
            raise ValueError(
                f'fargate_shards is for mongodb on "fargate", not {self.engine} on {self.runner}'
            )
        if self.pitr and self.engine != "postgres":
            raise ValueError(f"pitr (point-in-time recovery) is for postgres sources, not {self.engine}")
        if self.pitr and self.pitr_max_lag_bytes <= self.pitr_lag_alarm_bytes:
            raise ValueError("pitr_max_lag_bytes (drop the slot) must be above pitr_lag_alarm_bytes (alarm)")
        return self

    @property
    def rpo_seconds(self) -> int:
        return parse_duration_seconds(self.rpo or CATEGORY_OBJECTIVES[self.category][0])

    @property
    def rto_seconds(self) -> int:
        return parse_duration_seconds(self.rto or CATEGORY_OBJECTIVES[self.category][1])

    def secrets(self) -> list[tuple[str, str]]:
        """(field, secret reference) of every secret this source names."""
        return [(f, str(getattr(self, f))) for f in SECRET_FIELDS if getattr(self, f)]


# --------------------------------------------------------------------------- cross-region replica
# The optional `[replica]` table (issue 19): a backup bucket in another region that S3 Replication
# (or `lastgood replicate`, its stand-in where S3 does not replicate) fills with copies of the
# committed backups. Health and the summary report each source's newest committed copy there
# against `max_age`; the replica's prune applies its own `retention`; `restore/verify --from
# replica` read it (lastgood.backups.replica).
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
_KMS_KEY = re.compile(
    r"^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key/[0-9a-f-]+|alias/[A-Za-z0-9/_-]+)"
    r"|alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
# With no `max_age`, a source's replica copy may be this much older than its RPO.
REPLICA_DEFAULT_ALLOWANCE_S = 3600


class ReplicaConfig(_Strict):
    """The cross-region replica bucket: where copies live and how long they are kept there."""

    bucket: str
    region: str
    # The replica bucket's KMS key (ARN, alias or key id); None = the bucket's default key.
    kms_key_id: str | None = None
    # Alarm when a source's newest committed copy in the replica is older than this
    # (default: the source's RPO + 1 h, so a daily source is not late after 2 hours).
    max_age: str | None = None
    # The replica's own retention policy (lastgood.backups.retention); empty keeps every copy.
    retention: dict[str, Any] = Field(default_factory=dict)

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if not _BUCKET_NAME.match(value) or ".." in value:
            raise ValueError(f"{value!r} is not an S3 bucket name (3-63 of a-z 0-9 . -)")
        return value

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name (e.g. eu-west-1)")
        return value

    @field_validator("kms_key_id")
    @classmethod
    def _check_key(cls, value: str | None) -> str | None:
        if value is not None and not _KMS_KEY.match(value):
            raise ValueError(
                f"{value!r} does not name a KMS key: expected its ARN (arn:aws:kms:<region>:<account>:key/<id>), "
                "an alias (alias/name) or a key id"
            )
        return value

    @field_validator("max_age")
    @classmethod
    def _check_max_age(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration_seconds(value)
        return value

    @field_validator("retention")
    @classmethod
    def _check_retention(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:
            check_retention(value)
        return value

    @model_validator(mode="after")
    def _key_region(self) -> ReplicaConfig:
        key = self.kms_key_id or ""
        if key.startswith("arn:") and key.split(":")[3] != self.region:
            raise ValueError(
                f"kms_key_id is in {key.split(':')[3]}, the replica bucket in {self.region}: S3 re-encrypts "
                "replicas with a key of the replica's own region"
            )
        return self

    def max_age_seconds(self, source: SourceConfig) -> int:
        if self.max_age is not None:
            return parse_duration_seconds(self.max_age)
        return source.rpo_seconds + REPLICA_DEFAULT_ALLOWANCE_S


class LastgoodConfig(_Strict):
    # The project folder holding the bundled dataset copies (`lastgood bundle` writes them, the
    # build ships them), relative to the config file.
    bundled_dir: str = Field("bundled", min_length=1)
    datasets: list[DatasetConfig] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)
    replica: ReplicaConfig | None = None  # the cross-region replica (ReplicaConfig above)

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
