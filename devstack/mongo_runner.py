"""Run the nx-27017 MongoDB wire server with a `buildInfo` reply that MongoDB's own tools accept.

`python -m devstack.mongo_runner <nx-27017 arguments>` (the devstack starts it; no other use).
mongodump / mongorestore (mongo-tools 100.x) refuse to start while `buildInfo` lacks
`versionArray` ("buildInfo.versionArray had fewer than 3 elements"); nx-27017 omits it
(../shared/tools/mongo-tools/README.md). The reply gains the fields a real 7.0 server sends,
nothing else changes.
"""

from __future__ import annotations

import sys
from typing import Any


def _patch() -> None:
    from nx_27017.handler import NeoSQLiteHandler

    original = NeoSQLiteHandler._handle_server_status

    def server_status(self: Any, request_id: int, db: Any) -> tuple[int, dict[str, Any]]:
        rid, doc = original(self, request_id, db)
        version = str(doc.get("version", "7.0.0"))
        parts = [int(p) for p in version.split(".")[:3] if p.isdigit()]
        doc.setdefault("versionArray", [*parts, *[0] * (4 - len(parts))][:4])
        doc.setdefault("gitVersion", "nx-27017")
        doc.setdefault("bits", 64)
        doc.setdefault("maxBsonObjectSize", 16 * 1024 * 1024)
        return rid, doc

    NeoSQLiteHandler._handle_server_status = server_status  # type: ignore[method-assign]


def main() -> None:
    _patch()
    from nx_27017.nx_27017 import main as nx_main

    sys.argv[0] = "nx-27017"
    sys.exit(nx_main())


if __name__ == "__main__":
    main()
