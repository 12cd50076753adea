"""Point-in-time recovery for PostgreSQL over logical decoding (`pgoutput`): see docs/pitr.md.

`pgoutput` (decoder) · `model` (PitrBase, SegmentManifest) · `segments` (parts, manifest last)
· `slot` (replication slots, publications) · `base` (a base on a slot's snapshot) · `capture`
· `replay` (SQL) · `restore` (to a time / LSN) · `setup` (enable/disable) · `lag` (status).
"""
