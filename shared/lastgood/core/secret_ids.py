"""Where a declared source's secrets live in AWS Secrets Manager (one naming convention).

The config names each secret (`url_secret = "DATABASE_URL"`); locally that name is an
environment variable. In a deployment every secret of source S lives at

    <stack>/S/url            the connection URL (Upstash: the REST URL)
    <stack>/S/token          Upstash only: the REST token
    <stack>/S/scratch-url    the restore-drill target (optional)
    <stack>/S/scratch-token  the drill target's REST token (optional, https Upstash scratch)

so template.yaml grants each function the roles it needs with one wildcard scoped to the
stack's prefix (backup and health: url/token; verify: scratch-url/scratch-token) and no
source needs a parameter. `LASTGOOD_SECRETS_PREFIX` (`<stack>/`, set in Globals) turns the
convention on; an explicit `<NAME>_SECRET_ARN` / `<NAME>_SSM_PARAM` still wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lastgood.core.config import LastgoodConfig

PREFIX_VARIABLE = "LASTGOOD_SECRETS_PREFIX"
# Source roles → Secrets Manager name suffix, and the SourceConfig field naming the secret.
ROLES: dict[str, str] = {
    "url": "url_secret",
    "token": "token_secret",
    "scratch-url": "scratch_url_secret",
    "scratch-token": "scratch_token_secret",
}
# The roles each function may read (template.yaml grants exactly these).
SOURCE_ROLES = ("url", "token")
DRILL_ROLES = ("scratch-url", "scratch-token")


def declared_secret_ids(config: LastgoodConfig) -> dict[str, str]:
    """Secret name (as the config spells it) → `<source>/<role>` for every declared secret."""
    ids: dict[str, str] = {}
    for source in config.sources:
        for role, field in ROLES.items():
            name = getattr(source, field)
            if name and name not in ids:
                ids[name] = f"{source.name}/{role}"
    return ids


def secret_id(name: str, prefix: str) -> str | None:
    """The Secrets Manager id of the declared secret `name`, or None when no source names it."""
    from lastgood.core.config import get_config

    found = declared_secret_ids(get_config()).get(name)
    return f"{prefix}{found}" if found else None
