"""The typed documents of point-in-time recovery (no I/O).

`PitrBase` is what a PITR base backup's manifest records under `extra["pitr"]`: the slot it
was taken on, the slot's consistent point (the LSN where its change stream starts), the
exported snapshot pg_dump ran in, the time just after the slot was consistent, the
publication and the shape of every published table. `SegmentManifest` is one committed change
segment (`segment.json`, written last: `lastgood.backups.segment_keys`). Both are read and
written only through these models.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lastgood.backups.manifest import BackupManifest
from lastgood.core.errors import BackupIntegrityError
from lastgood.core.timefmt import parse_time
from lastgood.pitr.pgoutput import Relation, parse_lsn

SEGMENT_FORMAT = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RelationShape(_Model):
    """A published table as replay needs it: names, column (name, type oid, typmod)."""

    namespace: str
    name: str
    columns: list[tuple[str, int, int]]

    @classmethod
    def of(cls, rel: Relation) -> RelationShape:
        return cls(
            namespace=rel.namespace,
            name=rel.name,
            columns=[(c.name, c.type_oid, c.typmod) for c in rel.columns],
        )

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"

    def matches(self, rel: Relation) -> bool:
        return self == RelationShape.of(rel)


class PitrBase(_Model):
    """`extra["pitr"]` of a PITR base backup's manifest."""

    slot: str
    publication: str
    consistent_lsn: str
    snapshot: str
    consistent_at: str
    relations: dict[str, RelationShape] = Field(default_factory=dict)  # by relation oid

    @property
    def consistent_time(self) -> datetime:
        return parse_time(self.consistent_at)

    @property
    def start_lsn(self) -> int:
        return parse_lsn(self.consistent_lsn)

    @classmethod
    def of(cls, manifest: BackupManifest) -> PitrBase | None:
        raw = manifest.extra.get("pitr")
        if raw is None:
            return None
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise BackupIntegrityError(
                f"backup {manifest.source}/{manifest.backup_id}: unreadable PITR record: {str(exc)[:200]}"
            ) from None


class SegmentPart(_Model):
    name: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    plaintext_bytes: int = Field(ge=0)


class SchemaChange(_Model):
    """A relation message whose columns differ from what the chain knows: replay stops before it."""

    relation: str
    relid: int
    commit_lsn: str
    commit_time: str
    before: RelationShape | None
    after: RelationShape


class LastTransaction(_Model):
    xid: int
    commit_lsn: str
    end_lsn: str
    commit_time: str


class SegmentManifest(_Model):
    """One committed change segment: every published transaction with commit LSN in
    [start_lsn, end_lsn), in commit order, split into parts of at most `pitr_part_bytes`."""

    format: int = SEGMENT_FORMAT
    source: str
    base_id: str
    seq: int = Field(ge=1)
    slot: str
    start_lsn: str
    end_lsn: str
    first_commit_time: str | None = None
    last_commit_time: str | None = None
    last: LastTransaction | None = None
    transactions: int = Field(0, ge=0)
    changes: int = Field(0, ge=0)
    wal_bytes: int = Field(0, ge=0)  # decoded pgoutput bytes
    parts: list[SegmentPart] = Field(default_factory=list)
    relations: dict[str, RelationShape] = Field(default_factory=dict)  # the chain's view at the end
    schema_change: SchemaChange | None = None
    client_side: bool = False
    compression: str = "zlib"
    created_at: str

    @property
    def start(self) -> int:
        return parse_lsn(self.start_lsn)

    @property
    def end(self) -> int:
        return parse_lsn(self.end_lsn)

    @property
    def created_time(self) -> datetime:
        return parse_time(self.created_at)

    def to_bytes(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str) -> SegmentManifest:
        try:
            doc: Any = json.loads(data)
            manifest = cls.model_validate(doc)
        except (ValueError, ValidationError) as exc:
            raise BackupIntegrityError(f"{where} is unreadable: {str(exc)[:300]}") from None
        if manifest.format != SEGMENT_FORMAT:
            raise BackupIntegrityError(f"{where}: unsupported segment format {manifest.format}")
        return manifest
