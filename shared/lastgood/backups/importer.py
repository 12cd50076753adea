"""`lastgood import`: bring a backup made by the database's own tool into the catalog.

Teams arrive with backups from old cron scripts: a `mongodump` directory or a
`pg_dump -Fc` file. Imported, such a backup is an ordinary lastgood backup of the named
source — checksummed objects and a manifest, listed, verified, drilled, pruned and
restored like the others (`extra.imported` says where it came from).

- MongoDB: a mongodump directory (`--gzip` or not): `<db>/<coll>.bson[.gz]` and
  `<db>/<coll>.metadata.json[.gz]`. Plain files are gzipped on the way, so the stored
  layout is always `mongodump --gzip`'s. Documents are counted while uploading (the
  drill compares them after a restore). Any other file is refused by name: nothing is
  committed unless the whole directory is understood.
- PostgreSQL: one custom-format dump (`pg_dump -Fc`, checked with `pg_restore --list`),
  stored as `<database>.dump`. Row counts are not in a dump file, so the manifest has none.
"""

from __future__ import annotations

import subprocess
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lastgood import __version__
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.store import BackupStore
from lastgood.core.config import get_config
from lastgood.core.errors import BackupError, ConfigError
from lastgood.core.observability import logger
from lastgood.engines.base import ObjectWriter, validate_relpath

CHUNK = 1024 * 1024
_BSON = (".bson.gz", ".bson")
_META = (".metadata.json.gz", ".metadata.json")


def import_backup(
    source_name: str,
    path: Path,
    *,
    database: str | None = None,
    pin: bool = False,
    reason: str | None = None,
    store: BackupStore | None = None,
) -> BackupManifest:
    """Upload `path` as a new backup of `source_name`; returns the committed manifest."""
    if pin and not reason:
        raise ConfigError("a pinned import needs --reason (what it protects)")
    source = get_config().source(source_name)
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    if source.engine == "mongodb":
        plan = _mongodump_plan(path)
    elif source.engine == "postgres":
        plan = [(_pg_relpath(path, database), path, "application/octet-stream")]
    else:
        raise ConfigError(
            f"import supports mongodb (a mongodump directory) and postgres (a pg_dump -Fc file); "
            f"source {source.name!r} is {source.engine}"
        )
    store = store or BackupStore.from_settings()
    started = datetime.now(UTC)
    backup_id = store.new_backup_id(started)
    writer = store.writer(source.name, backup_id, client_side_encryption=source.client_side_encryption)
    counts: dict[str, int] = {}
    try:
        for relpath, file, content_type in plan:
            with writer.open_object(relpath, content_type=content_type) as out:
                docs = _upload(file, relpath, out)
                if docs is not None:
                    out.count = docs
                    db, coll = relpath.removesuffix(".bson.gz").split("/", 1)
                    counts[f"{db}.{coll}"] = docs
        manifest = BackupManifest.build(
            backup_id=backup_id,
            source=source.name,
            engine=source.engine,
            started_at=started,
            finished_at=datetime.now(UTC),
            objects=writer.entries,
            counts=counts or None,
            tool_versions={"lastgood": __version__},
            pinned=pin,
            pin_reason=reason,
            kms_key_id=store.kms_key_id,
            client_side=source.client_side_encryption,
            extra={"imported": {"from": str(path), "tool": "mongodump" if counts else "pg_dump"}},
        )
        writer.commit(manifest)
    except BaseException:
        writer.discard()
        raise
    logger.info("backup imported", extra={"source": source.name, "backup_id": backup_id, "from": str(path)})
    return manifest


def _mongodump_plan(folder: Path) -> list[tuple[str, Path, str]]:
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a directory: give the folder mongodump wrote (--out)")
    plan: list[tuple[str, Path, str]] = []
    unknown: list[str] = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = file.relative_to(folder).as_posix()
        if rel.count("/") != 1:
            unknown.append(rel)
        elif rel.endswith(_BSON):
            plan.append(
                (_valid(rel.removesuffix(".gz").removesuffix(".bson") + ".bson.gz"), file, "application/gzip")
            )
        elif rel.endswith(_META):
            stem = rel.removesuffix(".gz").removesuffix(".metadata.json")
            plan.append((_valid(stem + ".metadata.json.gz"), file, "application/gzip"))
        else:
            unknown.append(rel)
    if unknown:
        raise ConfigError(
            f"{folder} is not a mongodump directory lastgood can import: it does not know "
            f"{', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''} (expected <db>/<coll>.bson[.gz] and "
            "<db>/<coll>.metadata.json[.gz]; an --oplog or --archive dump is not supported)"
        )
    if not any(rel.endswith(".bson.gz") for rel, _, _ in plan):
        raise ConfigError(f"{folder} holds no <db>/<coll>.bson[.gz] file: nothing to import")
    return plan


def _valid(relpath: str) -> str:
    try:
        return validate_relpath(relpath)
    except ValueError:
        raise ConfigError(f"{relpath!r} cannot be a backup object name (characters or path)") from None


def _pg_relpath(file: Path, database: str | None) -> str:
    if not file.is_file():
        raise ConfigError(f"{file} is not a file: give a pg_dump -Fc file")
    from lastgood.engines.pg_tools import pg_bin_dir

    listed = subprocess.run(
        [str(pg_bin_dir() / "pg_restore"), "--list", str(file)], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        raise ConfigError(
            f"{file} is not a pg_dump custom-format (-Fc) archive: pg_restore --list said "
            f"{listed.stderr.strip()[:200] or 'nothing'}"
        )
    name = database or file.name.split(".", 1)[0]
    return _valid(f"{name}.dump")


def _chunks(file: Path) -> Iterator[bytes]:
    with file.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _upload(file: Path, relpath: str, out: ObjectWriter) -> int | None:
    """Copy `file` to `out` (gzipping plain mongodump files); the document count for `.bson.gz`."""
    source_gzipped = file.name.endswith(".gz")
    counter = _BsonCounter() if relpath.endswith(".bson.gz") else None
    inflate = zlib.decompressobj(wbits=31) if source_gzipped and counter else None
    compress = (
        None if source_gzipped or not relpath.endswith(".gz") else zlib.compressobj(6, zlib.DEFLATED, 31)
    )
    for chunk in _chunks(file):
        if counter is not None:
            counter.feed(inflate.decompress(chunk) if inflate else chunk)
        out.write(compress.compress(chunk) if compress else chunk)
    if compress is not None:
        out.write(compress.flush())
    if counter is None:
        return None
    if inflate is not None:
        counter.feed(inflate.flush())
    return counter.finish(relpath)


class _BsonCounter:
    """Counts concatenated BSON documents from a byte stream (int32 little-endian lengths)."""

    def __init__(self) -> None:
        self.count = 0
        self._need = 0  # bytes still to skip of the current document
        self._head = b""

    def feed(self, data: bytes) -> None:
        view: Any = memoryview(data)
        while len(view):
            if self._need:
                step = min(self._need, len(view))
                self._need -= step
                view = view[step:]
                continue
            take = 4 - len(self._head)
            self._head += bytes(view[:take])
            view = view[take:]
            if len(self._head) == 4:
                length = int.from_bytes(self._head, "little")
                if length < 5:
                    raise BackupError(f"malformed BSON: a document of length {length}")
                self._need, self._head = length - 4, b""
                self.count += 1

    def finish(self, relpath: str) -> int:
        if self._need or self._head:
            raise BackupError(f"{relpath}: the last BSON document is truncated; the dump is incomplete")
        return self.count
