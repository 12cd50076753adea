"""PITR base backups: `pg_dump` in the exported snapshot of a new logical replication slot.

    take_base("orders")          # what `lastgood backup` and the backup function do for `pitr = true`

Steps: the publication exists (created FOR ALL TABLES if missing) → a new slot
`lastgood_<source>_<8 hex>` is created on a replication connection with an exported snapshot
→ while that connection stays open, the shapes of the published tables are read in the
snapshot and the ordinary backup run (`lastgood.backups.run.run_backup`) dumps in it, its
manifest recording `extra["pitr"]` (`PitrBase`: slot, consistent LSN, snapshot, time) → the
connection is closed. A failed or skipped run drops the new slot (nothing holds WAL for a base
that does not exist). After a commit, the previous base's slot gets a last capture (so its
chain reaches past the new base's consistent point) and is dropped.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from lastgood.backups.manifest import BackupManifest
from lastgood.backups.run import BackupResult, run_backup
from lastgood.backups.store import BackupStore
from lastgood.core.config import SourceConfig, get_config
from lastgood.core.errors import ConfigError
from lastgood.core.observability import logger
from lastgood.core.settings import get_secret
from lastgood.core.timefmt import iso_z
from lastgood.engines.pg_connect import connect
from lastgood.pitr import slot as slots
from lastgood.pitr.model import PitrBase


def pitr_source(name: str) -> SourceConfig:
    source = get_config().source(name)
    if not source.pitr:
        raise ConfigError(
            f"source {name!r} does not have pitr = true in the config (point-in-time recovery is off)"
        )
    return source


def pitr_bases(store: BackupStore, source: str) -> list[tuple[BackupManifest, PitrBase]]:
    """Committed PITR bases of `source`, newest first."""
    bases = []
    for item in store.list_backups(source):
        if item.committed and item.manifest is not None:
            info = PitrBase.of(item.manifest)
            if info is not None:
                bases.append((item.manifest, info))
    return bases


def _snapshot_shapes(url: str, snapshot: str, publication: str) -> tuple[dict[str, Any], datetime]:
    with connect(url, timeout_s=10) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        shapes = slots.published_shapes(conn, publication)
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    moment = row[0] if row else datetime.now(UTC)
    return shapes, moment


def take_base(
    source_name: str,
    *,
    slot: datetime | str | None = None,
    on_demand: bool = False,
    store: BackupStore | None = None,
    deadline: float | None = None,
    retire_previous: bool = True,
) -> BackupResult:
    source = pitr_source(source_name)
    store = store or BackupStore.from_settings()
    url = str(get_secret(source.url_secret))
    publication = slots.publication_name(source.name)
    previous = pitr_bases(store, source.name)
    with connect(url, timeout_s=10, autocommit=True) as conn:
        if slots.ensure_publication(conn, publication):
            logger.info("publication created", extra={"source": source.name, "publication": publication})
    name = slots.slot_prefix(source.name) + secrets.token_hex(4)
    try:
        with slots.create_slot_with_snapshot(url, name) as created:
            shapes, consistent_at = _snapshot_shapes(url, created.snapshot, publication)
            info = PitrBase(
                slot=created.name,
                publication=publication,
                consistent_lsn=created.consistent_lsn,
                snapshot=created.snapshot,
                consistent_at=iso_z(consistent_at),
                relations=shapes,  # type: ignore[arg-type]
            )
            result = run_backup(
                source.name,
                slot=slot,
                on_demand=on_demand,
                store=store,
                deadline=deadline,
                snapshot=created.snapshot,
                extra={"pitr": info.model_dump(mode="json")},
            )
    except BaseException:
        _drop_quietly(url, name)
        raise
    if result.status != "ok":
        _drop_quietly(url, name)
        return result
    logger.info(
        "PITR base committed",
        extra={
            "source": source.name,
            "backup_id": result.backup_id,
            "slot": name,
            "lsn": info.consistent_lsn,
        },
    )
    if retire_previous:
        for manifest, old in previous:
            _retire(store, source, manifest, old, url)
    return result


def _retire(
    store: BackupStore, source: SourceConfig, manifest: BackupManifest, old: PitrBase, url: str
) -> None:
    """A last capture of an older base's slot (its chain then reaches past the new base), then drop it."""
    from lastgood.pitr.capture import capture_base

    with connect(url, timeout_s=10) as conn:
        exists = slots.slot_status(conn, old.slot).exists
    if not exists:
        return
    try:
        capture_base(store, source, manifest, old, url)
    except Exception as exc:  # keep the slot: its changes are not captured yet (lag alarms say so)
        logger.error(
            "last capture of the previous PITR base failed; its slot is kept",
            extra={"source": source.name, "slot": old.slot, "error": str(exc)[:300]},
        )
        return
    slots.drop_slot(url, old.slot)
    logger.info("previous PITR slot dropped", extra={"source": source.name, "slot": old.slot})


def _drop_quietly(url: str, name: str) -> None:
    try:
        slots.drop_slot(url, name)
    except Exception as exc:
        logger.error("could not drop the new replication slot", extra={"slot": name, "error": str(exc)[:200]})
