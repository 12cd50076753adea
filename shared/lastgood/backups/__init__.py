"""Backups: manifest and verification models, the backup bucket key layout (`keys`), slot locks,
writer/reader, the catalog, run, restore, verify, retention, prune, pins and migrate.
"""
