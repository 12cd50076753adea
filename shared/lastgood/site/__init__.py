"""The published site: key layout (`keys`), stored documents, canonical JSON, guards, query,
regenerate, publish, the fallback loader and the bundled copies.
"""
