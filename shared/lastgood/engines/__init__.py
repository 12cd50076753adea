"""Database engines: each a class implementing `base.Engine` (probe, dump, restore,
counts, is_empty, wipe), its instance `ENGINE` in the engine's module; a dump takes
one `base.EngineOptions`. Engines depend on `lastgood.core` only.

`get_engine(name)` imports only the engine asked for, so a handler never loads
a driver it does not use (prune loads none; the loader path no psycopg).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lastgood.core.errors import ConfigError

if TYPE_CHECKING:
    from lastgood.engines.base import Engine

_MODULES = {
    "postgres": "lastgood.engines.postgres",
    "mongodb": "lastgood.engines.mongodb",
    "upstash": "lastgood.engines.upstash",
    "redis": "lastgood.engines.upstash",
}


def get_engine(name: str) -> Engine:
    try:
        module_name = _MODULES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; known engines: {', '.join(sorted(_MODULES))}") from None
    module = importlib.import_module(module_name)
    engine: Engine = module.ENGINE
    return engine
