"""The documents the site capability stores, one model each, used by writer and readers.

- `PublishedMeta`: the S3 user metadata on every published object (`live/`, `last-good/`,
  `versions/`): the body's SHA-256, its item count, when it was generated and its publish
  `sequence` (one more than the live object it replaced: live writes are serialised by
  conditional writes, so the sequence orders versions without trusting clocks). Written by
  `site.publish`, read back by regenerate (what is live now), the loader and health. It is a
  *label*: regenerate checks it against the bytes (`site.publish.SiteStore.inspect`).
- `PublishHistory`: `history/<name>.json`, the counts accepted for publishing within the
  dataset's `shrink_window` (the `max_shrink` baseline is the largest of them). Written by
  `site.history` before each new version goes live, read by regenerate.
- `BundleIndex`: `bundled/_bundle.json`, written by `lastgood bundle` (`site.bundle`), read by
  the loader's last fallback to tell how old the bundled copy is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lastgood.core.errors import ConfigError
from lastgood.core.timefmt import parse_time
from lastgood.site.canonical import iso_ms
from lastgood.site.keys import BUNDLE_INDEX

# S3 user-metadata names (S3 lower-cases them; `generated-at` is the first version's spelling).
META_SHA256 = "sha256"
META_COUNT = "count"
META_GENERATED_AT = "generated-at"
META_SEQUENCE = "sequence"


class PublishedMeta(BaseModel):
    model_config = ConfigDict(frozen=True)

    sha256: str | None = None
    count: int | None = None
    generated_at: str | None = None
    sequence: int | None = None  # absent on objects written before issue 14

    def to_s3(self) -> dict[str, str]:
        """The `Metadata=` argument of a put/copy (every value a string, as S3 requires)."""
        out = {META_SHA256: self.sha256 or "", META_COUNT: "" if self.count is None else str(self.count)}
        if self.generated_at:
            out[META_GENERATED_AT] = self.generated_at
        if self.sequence is not None:
            out[META_SEQUENCE] = str(self.sequence)
        return out

    @property
    def order(self) -> tuple[int, str]:
        """Newer versions sort higher: the publish sequence, then generated_at (older objects)."""
        return (self.sequence or 0, self.generated_at or "")

    @classmethod
    def from_s3(cls, metadata: dict[str, Any] | None) -> PublishedMeta:
        """Read a HEAD/GET's `Metadata`; a missing or malformed value reads as unknown (None)."""
        meta = {str(k).lower(): str(v) for k, v in (metadata or {}).items()}
        raw_count = meta.get(META_COUNT, "")
        raw_sequence = meta.get(META_SEQUENCE, "")
        return cls(
            sha256=meta.get(META_SHA256) or None,
            count=int(raw_count) if raw_count.isdigit() else None,
            generated_at=meta.get(META_GENERATED_AT) or None,
            sequence=int(raw_sequence) if raw_sequence.isdigit() else None,
        )


class HistoryEntry(BaseModel):
    """One version accepted for publishing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    count: int = Field(ge=0)
    generated_at: str  # normalised to the `iso_ms` form, so entries and cutoffs compare as text
    sequence: int | None = None

    @field_validator("generated_at")
    @classmethod
    def _normalise(cls, value: str) -> str:
        try:
            return iso_ms(parse_time(value))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class PublishHistory(BaseModel):
    """`history/<name>.json`: newest entry last; entries older than the window are dropped on write."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    entries: tuple[HistoryEntry, ...] = ()

    @classmethod
    def parse(cls, body: bytes) -> PublishHistory:
        """Raises `ValueError` (pydantic's ValidationError is one) for a damaged document."""
        return cls.model_validate_json(body)

    def render(self) -> bytes:
        return self.model_dump_json(indent=1).encode() + b"\n"

    def since(self, cutoff: str) -> list[HistoryEntry]:
        """Entries generated at or after `cutoff` (ISO-8601 UTC, the `iso_ms` form sorts as text)."""
        return [e for e in self.entries if e.generated_at >= cutoff]

    def largest_since(self, cutoff: str) -> HistoryEntry | None:
        within = self.since(cutoff)
        return max(within, key=lambda e: e.count) if within else None

    @property
    def newest(self) -> HistoryEntry | None:
        return max(self.entries, key=lambda e: (e.sequence or 0, e.generated_at)) if self.entries else None

    def with_entry(self, entry: HistoryEntry, keep_since: str) -> PublishHistory:
        """This history plus `entry`, without entries older than `keep_since` (the newest is kept)."""
        entries = [
            e for e in self.entries if e.sha256 != entry.sha256 or e.generated_at != entry.generated_at
        ]
        entries.append(entry)
        entries.sort(key=lambda e: (e.generated_at, e.sequence or 0))
        newest = entries[-1]
        kept = [e for e in entries if e.generated_at >= keep_since or e is newest]
        return PublishHistory(dataset=self.dataset, entries=tuple(kept))


class BundleEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sha256: str
    count: int
    generated_at: str | None = None


class BundleIndex(BaseModel):
    """Per dataset, what the bundled copy is (the file's own name is `<dataset>.json`)."""

    entries: dict[str, BundleEntry] = Field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> BundleIndex:
        """The folder's index; an absent or unreadable one is empty (the files' mtimes are used)."""
        try:
            raw = json.loads((folder / BUNDLE_INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        entries = {}
        for name, value in raw.items():
            try:
                entries[str(name)] = BundleEntry.model_validate(value)
            except ValidationError:
                continue  # one bad entry does not hide the others
        return cls(entries=entries)

    def render(self) -> bytes:
        doc = {name: entry.model_dump() for name, entry in sorted(self.entries.items())}
        return json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n"
