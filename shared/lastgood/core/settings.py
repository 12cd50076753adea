"""One typed settings object, read from the environment once per process.

Every Lambda and the CLI read the same variable names. Secrets come from Secrets
Manager or SSM in AWS (`<NAME>_SECRET_ARN` / `<NAME>_SSM_PARAM`), with the plain
variable (`<NAME>`) as the local override; they are resolved lazily, on first
use, never at import time. A malformed variable fails at start with its name
and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lastgood.core.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Settings(BaseModel):
    """Process-wide settings. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    aws_region: str = Field("us-east-1", alias="AWS_REGION")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", alias="LOG_LEVEL")
    stage: str = Field("dev", alias="STAGE")

    mongodb_db_name: str = Field("lastgood", alias="MONGODB_DB_NAME", min_length=1)
    backup_bucket: str | None = Field(None, alias="BACKUP_BUCKET")
    site_bucket: str | None = Field(None, alias="SITE_BUCKET")
    kms_key_id: str | None = Field(None, alias="KMS_KEY_ID")
    distribution_id: str | None = Field(None, alias="DISTRIBUTION_ID")
    alert_topic_arn: str | None = Field(None, alias="ALERT_TOPIC_ARN")
    config_path: str | None = Field(None, alias="LASTGOOD_CONFIG")
    bundled_dir: str | None = Field(None, alias="LASTGOOD_BUNDLED_DIR")
    # Fallback loader: how long a warm process serves a dataset from memory (0 = no cache).
    loader_cache_ttl_s: Annotated[float, Field(ge=0, le=86400)] = Field(60.0, alias="LASTGOOD_CACHE_TTL_S")

    # Connections to non-loopback hosts need TLS unless this is explicitly set.
    allow_insecure_transport: bool = Field(False, alias="ALLOW_INSECURE_TRANSPORT")

    probe_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(3.0, alias="HEALTH_PROBE_TIMEOUT_S")
    # Health: the overall budget of one run (below the function's Timeout) and how long a warm
    # instance serves the public /health from its last probe results (0 = probe every call).
    health_deadline_s: Annotated[float, Field(gt=0, le=300)] = Field(10.0, alias="HEALTH_DEADLINE_S")
    health_cache_s: Annotated[float, Field(ge=0, le=3600)] = Field(15.0, alias="HEALTH_CACHE_S")
    mongo_server_selection_timeout_ms: Annotated[int, Field(gt=0, le=60000)] = Field(
        2000, alias="MONGODB_SERVER_SELECTION_TIMEOUT_MS"
    )
    mongo_max_pool_size: Annotated[int, Field(ge=1, le=100)] = Field(1, alias="MONGODB_MAX_POOL_SIZE")
    mongo_max_idle_time_ms: Annotated[int, Field(ge=0)] = Field(5000, alias="MONGODB_MAX_IDLE_TIME_MS")
    mongo_wait_queue_timeout_ms: Annotated[int, Field(gt=0)] = Field(
        3000, alias="MONGODB_WAIT_QUEUE_TIMEOUT_MS"
    )

    # Resilient KV (lastgood.kv.client): Upstash request timeout, breaker cool-downs, mirror bounds.
    kv_timeout_s: Annotated[float, Field(gt=0, le=30)] = Field(2.0, alias="KV_TIMEOUT_S")
    kv_breaker_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = Field(30.0, alias="KV_BREAKER_COOLDOWN_S")
    kv_mirror_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = Field(5.0, alias="KV_MIRROR_COOLDOWN_S")
    kv_mirror_timeout_ms: Annotated[int, Field(gt=0, le=30000)] = Field(1000, alias="KV_MIRROR_TIMEOUT_MS")
    kv_fallback_timeout_s: Annotated[float, Field(gt=0, le=30)] = Field(3.0, alias="KV_FALLBACK_TIMEOUT_S")
    kv_recover_budget_s: Annotated[float, Field(gt=0, le=300)] = Field(2.0, alias="KV_RECOVER_BUDGET_S")
    # Status page: the summary also copies it to the site bucket (served by CloudFront) when true.
    status_page_public: bool = Field(False, alias="STATUS_PAGE_PUBLIC")

    # Cross-region replica (lastgood.backups.replica): "replica" = this deployment holds the copies
    # (no backup schedules; prune applies the config's [replica].retention); the endpoint is for a
    # stand-in (the devstack) or an S3-compatible store, never needed in AWS.
    deployment_mode: Literal["primary", "replica"] = Field("primary", alias="LASTGOOD_DEPLOYMENT_MODE")
    replica_endpoint_url: str | None = Field(None, alias="LASTGOOD_REPLICA_ENDPOINT_URL")

    @field_validator("allow_insecure_transport", "status_page_public", mode="before")
    @classmethod
    def _parse_bool(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError("expected one of true/false/1/0/yes/no")
        return value

    def require(self, field: str) -> str:
        """Return a required optional setting or fail naming its variable."""
        value = getattr(self, field)
        if not value:
            alias = type(self).model_fields[field].alias or field.upper()
            raise ConfigError(f"{alias} is not set: it is required for this operation")
        return str(value)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `environ` (default: the process environment)."""
    env = dict(os.environ if environ is None else environ)
    known = {f.alias for f in Settings.model_fields.values() if f.alias}
    try:
        return Settings.model_validate({k: v for k, v in env.items() if k in known})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"][0] if err["loc"] else "?"
            problems.append(f"{loc}={env.get(str(loc), '')!r}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (parsed once; `reset_settings()` in tests)."""
    return load_settings()


def reset_settings() -> None:
    get_settings.cache_clear()
    get_secret.cache_clear()


@lru_cache(maxsize=32)
def get_secret(name: str, required: bool = True) -> str | None:
    """Resolve a secret named `name` (e.g. `DATABASE_URL`).

    Order: the plain variable `name` (local override) → `<name>_SECRET_ARN`
    (Secrets Manager, cached by Powertools) → `<name>_SSM_PARAM` (SSM
    SecureString) → in a deployment (`LASTGOOD_SECRETS_PREFIX` set), the declared
    source's secret `<prefix><source>/<role>` (lastgood.core.secret_ids). A `name` that is
    itself a Secrets Manager ARN, an SSM parameter ARN or an SSM `/path` is read from there
    directly. The value itself is never logged.
    """
    if name.startswith(("arn:", "/")):  # the config file names where it lives (config_model.secret_kind)
        arn = name if ":secretsmanager:" in name else None
        param = None if arn else name
    else:
        plain = os.environ.get(name)
        if plain:
            return plain
        arn = os.environ.get(f"{name}_SECRET_ARN")
        param = os.environ.get(f"{name}_SSM_PARAM")
        prefix = os.environ.get("LASTGOOD_SECRETS_PREFIX")
        if not (arn or param) and prefix:  # a deployment: the declared source's secret by convention
            from lastgood.core.secret_ids import secret_id

            arn = secret_id(name, prefix)
    if arn or param:
        from aws_lambda_powertools.utilities import parameters

        try:
            if arn:
                value = parameters.get_secret(arn, max_age=300)
            else:
                value = parameters.get_parameter(str(param), decrypt=True, max_age=300)
        except Exception as exc:  # the provider's own errors name the parameter, never the value
            raise ConfigError(f"could not read secret for {name}: {type(exc).__name__}") from None
        text = value.decode() if isinstance(value, bytes) else str(value)
        if not text:
            raise ConfigError(f"secret for {name} is empty")
        return text
    if required:
        where = f"; no declared source names it under {prefix}" if prefix else ""
        raise ConfigError(f"{name} is not set (nor {name}_SECRET_ARN / {name}_SSM_PARAM){where}")
    return None


def package_dir() -> Path:
    return Path(__file__).resolve().parent.parent
