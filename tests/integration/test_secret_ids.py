"""In a deployment a declared source's secret is found by convention: <stack>/<source>/<role>."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lastgood.core import config as config_module
from lastgood.core.config import load_config_file
from lastgood.core.errors import ConfigError
from lastgood.core.secret_ids import declared_secret_ids
from lastgood.core.settings import get_secret, reset_settings

OWN_CONFIG = Path(__file__).resolve().parents[1] / "fixtures/config/two-postgres-one-mongo.json"
NAMES = (
    "APP_DATABASE_URL",
    "SCRATCH_APP_DATABASE_URL",
    "MONGODB_URI",
    "DATABASE_URL",
    "ANALYTICS_DATABASE_URL",
)


@pytest.fixture
def deployed(devstack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A function's environment: the shipped config, the stack prefix, secrets in (moto) Secrets Manager."""
    prefix = f"lastgood-{uuid.uuid4().hex[:8]}/"
    secrets = boto3.client(
        "secretsmanager", endpoint_url=devstack.env["AWS_ENDPOINT_URL"], region_name="us-east-1"
    )
    for secret_id in ("app-db/url", "app-db/scratch-url", "docs/url"):
        secrets.create_secret(Name=prefix + secret_id, SecretString=f"value-of-{secret_id}")
    for name in NAMES:
        for suffix in ("", "_SECRET_ARN", "_SSM_PARAM"):
            monkeypatch.delenv(name + suffix, raising=False)
    monkeypatch.setenv("LASTGOOD_CONFIG", str(OWN_CONFIG))
    monkeypatch.setenv("LASTGOOD_SECRETS_PREFIX", prefix)
    reset_settings()
    config_module.reset_config()
    yield prefix
    reset_settings()
    config_module.reset_config()


def test_every_declared_secret_has_its_source_and_role() -> None:
    # Given the team's config / Then each secret it names maps to <source>/<role>
    ids = declared_secret_ids(load_config_file(OWN_CONFIG))
    assert ids == {
        "APP_DATABASE_URL": "app-db/url",
        "SCRATCH_APP_DATABASE_URL": "app-db/scratch-url",
        "ANALYTICS_DATABASE_URL": "analytics_db/url",
        "MONGODB_URI": "docs/url",
        "SCRATCH_MONGODB_URI": "docs/scratch-url",
    }


def test_a_deployed_function_reads_the_declared_sources_secret_by_convention(deployed: str) -> None:
    # Given a deployment (prefix set, no per-secret ARN variables) and the secrets at <stack>/<source>/<role>
    # When backup asks for a source's URL, verify for its drill target, regenerate for MONGODB_URI
    # Then each is read from exactly <stack>/<source>/<role>
    assert get_secret("APP_DATABASE_URL") == "value-of-app-db/url"
    assert get_secret("SCRATCH_APP_DATABASE_URL") == "value-of-app-db/scratch-url"
    assert get_secret("MONGODB_URI") == "value-of-docs/url"


def test_an_undeclared_secret_is_refused_naming_the_prefix(deployed: str) -> None:
    # Given a name no declared source uses (the demo's DATABASE_URL) / Then a clear one-line error
    with pytest.raises(
        ConfigError, match=r"DATABASE_URL is not set .*no declared source names it under lastgood-"
    ):
        get_secret("DATABASE_URL")
    # And a declared secret that was never stored fails naming the secret, never a value
    with pytest.raises(ConfigError, match=r"could not read secret for ANALYTICS_DATABASE_URL"):
        get_secret("ANALYTICS_DATABASE_URL")


def test_a_local_variable_still_wins(deployed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a local override / Then it is used, not the convention
    monkeypatch.setenv("APP_DATABASE_URL", "postgresql://local/app")
    reset_settings()
    assert get_secret("APP_DATABASE_URL") == "postgresql://local/app"
