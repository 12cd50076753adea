"""The documents the site capability stores, one model each, used by writer and readers.

- `PublishedMeta`: the S3 user metadata on every published object (`live/`, `last-good/`,
  `versions/`): the body's SHA-256, its item count and when it was generated. Written by
  `site.publish`, read back by regenerate (what is live now), the loader and health.
- `BundleIndex`: `bundled/_bundle.json`, written by `lastgood bundle` (`site.bundle`), read by
  the loader's last fallback to tell how old the bundled copy is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lastgood.site.keys import BUNDLE_INDEX

# S3 user-metadata names (S3 lower-cases them; `generated-at` is the first version's spelling).
META_SHA256 = "sha256"
META_COUNT = "count"
META_GENERATED_AT = "generated-at"


class PublishedMeta(BaseModel):
    model_config = ConfigDict(frozen=True)

    sha256: str | None = None
    count: int | None = None
    generated_at: str | None = None

    def to_s3(self) -> dict[str, str]:
        """The `Metadata=` argument of a put/copy (every value a string, as S3 requires)."""
        out = {META_SHA256: self.sha256 or "", META_COUNT: "" if self.count is None else str(self.count)}
        if self.generated_at:
            out[META_GENERATED_AT] = self.generated_at
        return out

    @classmethod
    def from_s3(cls, metadata: dict[str, Any] | None) -> PublishedMeta:
        """Read a HEAD/GET's `Metadata`; a missing or malformed value reads as unknown (None)."""
        meta = {str(k).lower(): str(v) for k, v in (metadata or {}).items()}
        raw_count = meta.get(META_COUNT, "")
        return cls(
            sha256=meta.get(META_SHA256) or None,
            count=int(raw_count) if raw_count.isdigit() else None,
            generated_at=meta.get(META_GENERATED_AT) or None,
        )


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
