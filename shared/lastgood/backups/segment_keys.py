"""The keys of point-in-time-recovery change segments: the one module that spells them.

Segments live below the PITR base backup they continue, so retention prunes them with their
base (prune deletes every key under a backup's prefix) and never a segment a kept base needs::

    backups/<source>/<base_id>/pitr/<seq:08d>/<run>-<part:04d>.seg   change parts (create-once)
    backups/<source>/<base_id>/pitr/<seq:08d>/segment.json          written LAST: the commit marker

`<run>` is the capture run's random token, so a failed run's orphan parts never block the
retry of the same sequence number (only `segment.json` commits a segment; orphans go with
the base). The layout of `backups/<source>/<base_id>/` itself is `lastgood.backups.keys`.
"""

from __future__ import annotations

import re

from lastgood.backups.keys import backup_prefix

SEGMENTS_DIR = "pitr/"
SEGMENT_MANIFEST_NAME = "segment.json"
_SEGMENT_RE = re.compile(r"/pitr/(?P<seq>\d{8})/segment\.json$")
_PART_RE = re.compile(r"^[0-9a-f]{8}-\d{4}\.seg$")


def segments_prefix(source: str, base_id: str) -> str:
    return backup_prefix(source, base_id) + SEGMENTS_DIR


def segment_prefix(source: str, base_id: str, seq: int) -> str:
    if seq < 1 or seq > 99_999_999:
        raise ValueError(f"segment sequence number out of range: {seq}")
    return f"{segments_prefix(source, base_id)}{seq:08d}/"


def segment_manifest_key(source: str, base_id: str, seq: int) -> str:
    return segment_prefix(source, base_id, seq) + SEGMENT_MANIFEST_NAME


def part_name(run: str, number: int) -> str:
    name = f"{run}-{number:04d}.seg"
    if not _PART_RE.match(name):
        raise ValueError(f"invalid segment part name {name!r}")
    return name


def part_key(source: str, base_id: str, seq: int, name: str) -> str:
    if not _PART_RE.match(name):
        raise ValueError(f"invalid segment part name {name!r}")
    return segment_prefix(source, base_id, seq) + name


def segment_seq(key: str) -> int | None:
    """The sequence number of a `…/pitr/<seq>/segment.json` key; None for any other key."""
    match = _SEGMENT_RE.search(key)
    return int(match["seq"]) if match else None
