"""The databases' own tools (mongodump / mongorestore / bsondump) for native-format tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lastgood.backups.keys import object_key
from lastgood.backups.store import BackupStore

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT.parent / "shared" / "tools" / "mongo-tools" / "bin"


def mongo_tool(name: str) -> str:
    """The tool on PATH, else in ../shared/tools/mongo-tools/bin; skips the test with the reason."""
    found = shutil.which(name)
    if found:
        return found
    candidate = BUNDLED / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    pytest.skip(f"{name} not found on PATH nor in {BUNDLED} (install mongo-tools 100.x)")


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([mongo_tool(name), *args], capture_output=True, text=True, timeout=120)


def download_backup(source: str, backup_id: str, folder: Path) -> Path:
    """A backup's objects as files, at their relative paths (what a person gets with `aws s3 cp --recursive`)."""
    store = BackupStore.from_settings()
    manifest = store.read_manifest(source, backup_id)
    for entry in manifest.objects:
        path = folder / entry.key
        path.parent.mkdir(parents=True, exist_ok=True)
        body = store.s3.get_object(Bucket=store.bucket, Key=object_key(source, backup_id, entry.key))["Body"]
        path.write_bytes(body.read())
    return folder
