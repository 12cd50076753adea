"""Which database a restore writes into: the target URL's, or an explicit `--db` — never the backup's keys.

`with_database(url, db)` puts a `--db NAME` into the URL (refusing one that
names another database), so every later step — emptiness check, drill wipe,
restore, counts — reads the same single answer from the URL.
`check_target_database(manifest, url)` refuses, before anything is read or
written, a MongoDB target URL that names no database: the backup's object keys
(`<db>/<coll>.bson.gz`) would otherwise decide where the data lands.
PostgreSQL and Redis URLs always name their database (libpq's default / db 0).
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

from lastgood.backups.manifest import BackupManifest
from lastgood.core.errors import RestoreError
from lastgood.core.redact import redact_url

_PATH_DATABASE = frozenset({"postgres", "postgresql", "mongodb", "mongodb+srv", "redis", "rediss"})


def with_database(url: str, database: str | None) -> str:
    """`url` with `database` as its path (`--db`); RestoreError when the URL names a different one."""
    if not database:
        return url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _PATH_DATABASE:
        raise RestoreError(f"--db does not apply to a {scheme or 'scheme-less'} target ({redact_url(url)})")
    if scheme.startswith("redis") and not database.isdigit():
        raise RestoreError(f"--db {database!r}: a Redis database is a number (0-15)")
    named = unquote(parts.path.lstrip("/"))
    if named and named != database:
        raise RestoreError(
            f"the target URL names database {named!r} but --db says {database!r}: give only one"
        )
    return urlunsplit(
        (parts.scheme, parts.netloc, "/" + quote(database, safe=""), parts.query, parts.fragment)
    )


def check_target_database(manifest: BackupManifest, url: str) -> None:
    """RestoreError unless the target URL names the database to restore into (MongoDB)."""
    if manifest.engine != "mongodb":
        return
    from lastgood.engines.mongodb_restore import require_target_database

    databases = sorted({o.key.split("/", 1)[0] for o in manifest.objects if o.key.count("/") == 1})
    require_target_database(url, databases)
