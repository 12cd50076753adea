"""restic's retention durations: `lastgood.core.within` (the config file checks them too)."""

from __future__ import annotations

from lastgood.core.within import Within

__all__ = ["Within"]
