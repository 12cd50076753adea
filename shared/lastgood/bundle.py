"""`lastgood bundle`: refresh the bundled dataset copies from last-good.

The bundled copies (`shared/lastgood/bundled/<name>.json`, shipped inside the
layer) are the loader's last resort — seed 000's "immutable backup committed to
git". A copy is replaced only by a last-good object that passes the dataset's
guards; an empty or invalid one never overwrites a good bundled file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lastgood.canonical import sha256_hex
from lastgood.config import get_config
from lastgood.guards import validate_items
from lastgood.loader import bundled_dir, parse_payload
from lastgood.publish import SiteStore, last_good_key


@dataclass
class BundleResult:
    dataset: str
    status: str  # updated | unchanged | kept (reason)
    count: int | None = None
    reason: str | None = None


def refresh(names: list[str] | None = None, *, target: Path | None = None) -> list[BundleResult]:
    config = get_config()
    datasets = [config.dataset(n) for n in names] if names else list(config.datasets)
    folder = target or bundled_dir()
    folder.mkdir(parents=True, exist_ok=True)
    site = SiteStore.from_settings()
    results = []
    for ds in datasets:
        path = folder / f"{ds.name}.json"
        try:
            body, modified, metadata = site.read(last_good_key(ds.name))
            items, _ = parse_payload(body)
            validate_items(ds, items)
        except Exception as exc:  # keep the bundled copy we have
            results.append(
                BundleResult(ds.name, "kept", None, f"last-good unusable: {type(exc).__name__}: {exc}"[:300])
            )
            continue
        generated = metadata.get("generated-at") or (
            modified.strftime("%Y-%m-%dT%H:%M:%SZ") if modified else None
        )
        envelope = {
            "dataset": ds.name,
            "generated_at": generated,
            "sha256": sha256_hex(body),
            "count": len(items),
            "items": items,
        }
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(old, dict) and old.get("sha256") == envelope["sha256"]:
                    results.append(BundleResult(ds.name, "unchanged", len(items)))
                    continue
            except ValueError:
                pass
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{ds.name}.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(envelope, handle, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            handle.write("\n")
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written bundled copy
        results.append(BundleResult(ds.name, "updated", len(items)))
    return results
