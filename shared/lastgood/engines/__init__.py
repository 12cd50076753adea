"""Database engines: each a class implementing `base.Engine` (probe, dump, restore,
counts, is_empty, wipe), its instance `ENGINE` in the engine's module; a dump takes
one `base.EngineOptions`. Engines depend on `lastgood.core` only.

`get_engine(name)` imports only the engine asked for, so a handler never loads
a driver it does not use (prune loads none; the loader path no psycopg).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lastgood.core.errors import ConfigError

if TYPE_CHECKING:
    from lastgood.engines.base import Engine

KNOWN = ("mongodb", "postgres", "redis", "upstash")


def get_engine(name: str) -> Engine:
    # Explicit imports (not importlib by name): the import graph, and so the layer's
    # contents check and the import rules, see every engine a handler can load.
    if name == "postgres":
        from lastgood.engines.postgres import ENGINE as postgres

        return postgres
    if name == "mongodb":
        from lastgood.engines.mongodb import ENGINE as mongodb

        return mongodb
    if name in ("upstash", "redis"):
        from lastgood.engines.upstash import ENGINE as upstash

        return upstash
    raise ConfigError(f"unknown engine {name!r}; known engines: {', '.join(KNOWN)}")
