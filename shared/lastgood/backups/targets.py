"""Which database a restore or a drill may write to: the one guard every path goes through.

Identity is the server's, not the URL's (`engines.base.ServerIdentity`: PostgreSQL
`system_identifier` + database, MongoDB replica set / resolved hosts + database, Redis
`run_id` + db number), so `localhost` vs `127.0.0.1` or an added `?application_name=x`
name the same target. A target is *production* when it is the server + database the
backup was taken from (recorded in its manifest, so no source secret is needed) or any
configured source that can be reached now (best effort: an unreachable source, or one
whose secret this role cannot read, is logged and skipped).

- a drill / `verify --restore-to` target (wiped before and after) is refused when it is
  production (`guard_scratch`), and a target that cannot be identified is never wiped;
- a restore into production needs `yes` (`check_restore_target`), and a restore over a
  non-empty target first takes a pinned safety backup of it (`take_safety_backup`);
- a target's REST token comes from the target's own secret, never the source's (`target_token`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lastgood.backups.manifest import BackupManifest
from lastgood.core.config import SourceConfig, get_config
from lastgood.core.errors import ConfigError, LastgoodError, RestoreError, UnsafeTarget
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text, redact_url
from lastgood.core.settings import get_secret
from lastgood.engines.base import ServerIdentity, engine_family


def is_rest_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def target_token(
    url: str, token_secret: str | None, *, how: str = "give --target-token-env NAME"
) -> str | None:
    """A target's REST token, from the target's own secret only (never the source's token)."""
    if token_secret:
        return get_secret(token_secret)
    if is_rest_url(url):
        raise ConfigError(
            f"an https (Upstash REST) target needs its own token: {how} "
            "(the source's token is never sent to a restore or drill target)"
        )
    return None


def source_identity(
    engine: str, url: str, token: str | None, *, database: str | None = None
) -> ServerIdentity:
    """The identity of a source's URL; `database` is a MongoDB source's `database` option."""
    from lastgood.engines import get_engine

    identity = get_engine(engine).identity(url, token=token)
    if database and engine == "mongodb":
        identity = identity.with_database(database)
    return identity


def target_identity(engine: str, url: str, token: str | None, *, what: str) -> ServerIdentity:
    """The target's identity; a target that cannot be identified is refused before any write."""
    from lastgood.engines import get_engine

    try:
        return get_engine(engine).identity(url, token=token)
    except LastgoodError as exc:
        detail = str(exc)
    except Exception as exc:  # a driver's own error: named, redacted
        detail = f"{type(exc).__name__}: {exc}"
    raise RestoreError(
        f"{what} {redact_url(url)} is unreachable or unusable: "
        f"{' '.join(redact_text(detail, tuple(s for s in (url, token) if s)).split())[:500]}; "
        "nothing was written to it"
    )


@dataclass(frozen=True)
class ProductionMatch:
    """The production source a target turned out to be, and how that is known."""

    source: str
    identity: ServerIdentity
    evidence: str

    def describe(self) -> str:
        return f"the production source {self.source!r} ({self.identity.describe()}; {self.evidence})"


def _reachable_identity(source: SourceConfig) -> ServerIdentity | None:
    try:
        url = get_secret(source.url_secret, required=False)
        if not url:
            logger.info(
                "source secret not readable here; skipped in the target check", extra={"source": source.name}
            )
            return None
        token = get_secret(source.token_secret) if source.token_secret else None
        return source_identity(source.engine, str(url), token, database=source.database)
    except Exception as exc:  # best effort: this source cannot be compared, the others still are
        logger.warning(
            "configured source not reachable; skipped in the target check",
            extra={"source": source.name, "error": redact_text(f"{type(exc).__name__}: {exc}")[:300]},
        )
        return None


def production_match(manifest: BackupManifest, target: ServerIdentity) -> ProductionMatch | None:
    """The production source `target` is: the backup's own (manifest) or any reachable configured one."""
    recorded = manifest.source_identity
    if recorded is not None and recorded.same_target(target):
        return ProductionMatch(
            manifest.source, recorded, f"recorded in the manifest of backup {manifest.backup_id}"
        )
    if recorded is None:
        logger.warning(
            "backup has no recorded source identity; the target is compared with reachable sources only",
            extra={"source": manifest.source, "backup_id": manifest.backup_id},
        )
    for source in get_config().sources:
        if engine_family(source.engine) != target.engine:
            continue
        identity = _reachable_identity(source)
        if identity is not None and identity.same_target(target):
            return ProductionMatch(source.name, identity, "a configured source, reached now")
    return None


def guard_scratch(manifest: BackupManifest, url: str, token: str | None) -> ServerIdentity:
    """Refuse a drill target (wiped before and after) that is a production database."""
    target = target_identity(manifest.engine, url, token, what="drill target")
    match = production_match(manifest, target)
    if match is not None:
        raise UnsafeTarget(
            f"refusing the drill target {redact_url(url)}: it is {match.describe()}. A drill wipes its "
            "target; nothing was wiped or written"
        )
    return target


@dataclass(frozen=True)
class RestorePlan:
    """A restore target, identified before the first write."""

    url: str
    target: ServerIdentity
    production: ProductionMatch | None

    def require_confirmation(self, yes: bool) -> None:
        """Restoring into a production source needs `yes` (the CLI's --yes)."""
        if self.production is not None and not yes:
            raise UnsafeTarget(
                f"target {redact_url(self.url)} is {self.production.describe()}: restoring into "
                "production needs --yes (nothing was written)"
            )


def check_restore_target(manifest: BackupManifest, url: str, token: str | None) -> RestorePlan:
    """Identify a restore target (refused when it cannot be) and whether it is production."""
    target = target_identity(manifest.engine, url, token, what="target")
    return RestorePlan(url, target, production_match(manifest, target))


def take_safety_backup(manifest: BackupManifest, url: str, token: str | None) -> str:
    """A pinned backup of what the target holds, under the backup's source name; its id."""
    from lastgood.backups.run import run_backup

    try:
        result = run_backup(
            manifest.source,
            on_demand=True,
            pin=True,
            reason=f"before restore of {manifest.backup_id}",
            url=url,
            token=token,
        )
    except LastgoodError as exc:
        raise RestoreError(
            f"the safety backup of {redact_url(url)} failed, so nothing was restored: {exc} "
            "(--no-safety-backup restores without one)"
        ) from None
    if result.backup_id is None:  # pragma: no cover - an on-demand run never skips
        raise RestoreError(f"no safety backup of {redact_url(url)} was taken, so nothing was restored")
    return result.backup_id


def undo_command(safety_id: str, url: str, *, production: bool) -> str:
    """The command that puts back exactly what the target held before a restore: the safety backup
    holds all of it, so the target is emptied first (objects the restore added go too)."""
    parts = [f"lastgood restore {safety_id} --target {redact_url(url)} --force --wipe-first"]
    if is_rest_url(url):
        parts.append("--target-token-env NAME")
    if production:
        parts.append("--yes")
    return " ".join(parts)
