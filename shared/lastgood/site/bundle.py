"""`lastgood bundle`: refresh the bundled dataset copies from last-good.

The bundled copies are the loader's last layer — seed 000's "immutable backup
committed to git": the project's `bundled/<name>.json` (the folder is `bundled_dir` in
lastgood.toml; `LASTGOOD_BUNDLED_DIR` overrides it) holds the exact bytes of
`last-good/data/<name>.json` (the canonical JSON array); `make build` ships the folder in
the shared layer so every deploy carries the user's data (never the demo's sample data). `bundled/_bundle.json` records, per dataset, the SHA-256, count
and `generated_at` of the copy (the loader's age for it).

A bundled file is replaced only by a last-good object that passes the
dataset's checks (JSON array, not empty, `min_count`, schema); an unreadable,
empty or invalid last-good never overwrites a good bundled copy. Files are
written atomically (temp file + rename) and world-readable (Lambda runs the
code as a non-root user). Unchanged content rewrites nothing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from lastgood.core.config import get_config
from lastgood.core.redact import redact_text
from lastgood.site.canonical import sha256_hex
from lastgood.site.documents import BundleEntry, BundleIndex
from lastgood.site.guards import items_problem
from lastgood.site.keys import BUNDLE_INDEX, bundled_name, last_good_key
from lastgood.site.loader import LayerFailed, bundled_dir, parse_items

BundleStatus = Literal["updated", "unchanged", "kept"]


@dataclass
class BundleResult:
    dataset: str
    status: BundleStatus  # kept = the existing bundled copy stays (reason says why)
    count: int | None = None
    sha256: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def refresh(
    names: list[str] | None = None, *, target: Path | None = None, site: Any = None
) -> list[BundleResult]:
    """Copy each dataset's valid last-good object into the bundled folder."""
    from botocore.exceptions import BotoCoreError, ClientError

    from lastgood.site.publish import SiteStore

    config = get_config()
    datasets = [config.dataset(n) for n in dict.fromkeys(names)] if names else list(config.datasets)
    folder = target or bundled_dir()
    folder.mkdir(parents=True, exist_ok=True)
    site = site or SiteStore.from_settings()
    index = BundleIndex.read(folder)
    results: list[BundleResult] = []
    for ds in datasets:
        path = folder / bundled_name(ds.name)
        try:
            body, info = site.read(last_good_key(ds.name))
            items = parse_items(body)
            problem = items_problem(items, min_count=ds.min_count, schema=ds.item_schema)
        except (ClientError, BotoCoreError, LayerFailed) as exc:
            text = redact_text(f"{type(exc).__name__}: {exc}")[:300]
            results.append(BundleResult(ds.name, "kept", reason=f"last-good unreadable ({text})"))
            continue
        if problem is not None:
            results.append(BundleResult(ds.name, "kept", reason=f"last-good invalid: {problem}"))
            continue
        digest = sha256_hex(body)
        result = BundleResult(ds.name, "unchanged", len(items), digest)
        if not (path.is_file() and sha256_hex(path.read_bytes()) == digest):
            write_atomic(path, body)
            result.status = "updated"
        generated = info.generated_at or (info.last_modified.isoformat() if info.last_modified else None)
        entry = BundleEntry(sha256=digest, count=len(items), generated_at=generated)
        known = index.entries.get(ds.name)
        if result.status == "updated" or known is None or known.sha256 != digest:
            index.entries[ds.name] = entry
        results.append(result)
    rendered_index = index.render()
    index_path = folder / BUNDLE_INDEX
    if not index_path.is_file() or index_path.read_bytes() != rendered_index:
        write_atomic(index_path, rendered_index)
    return results
