"""`lastgood pitr enable` / `disable`: what the source needs for point-in-time recovery.

Enable checks `wal_level = logical`, that the role may replicate (REPLICATION, superuser, or
the provider's role: Supabase's `postgres`, RDS's `rds_replication`), lists published tables
without a primary key or replica identity (UPDATE/DELETE on them FAIL on the source once a
publication publishes them, so they are refused unless allowed), creates the publication, and
prints the provider notes. The slot is created by the first base (`lastgood backup`), on its
exported snapshot. Disable drops the publication and every `lastgood_<source>_…` slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lastgood.core.errors import ConfigError
from lastgood.core.settings import get_secret
from lastgood.engines.pg_connect import connect
from lastgood.pitr import slot as slots
from lastgood.pitr.base import pitr_source

PROVIDER_NOTES = (
    "Supabase: wal_level is logical already; connect with the direct (not pooled, port 5432) URL as the "
    "`postgres` role, which may replicate.",
    "RDS / Aurora PostgreSQL: set rds.logical_replication = 1 in the DB parameter group (a reboot applies it) "
    "and GRANT rds_replication TO <role>.",
    "Neon: enable logical replication in the project settings (it cannot be turned off again).",
    "Self-hosted: wal_level = logical, max_replication_slots and max_wal_senders >= 2 per PITR source; "
    "ALTER ROLE <role> REPLICATION.",
)

_NO_IDENTITY = """
SELECT n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_%'
   AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (
        SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
 ORDER BY 1
"""


@dataclass
class EnableReport:
    source: str
    wal_level: str
    can_replicate: bool
    publication: str
    created: bool
    no_identity: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "provider_notes": list(PROVIDER_NOTES)}

    def lines(self) -> list[str]:
        out = [
            f"{self.source}: wal_level = {self.wal_level}, replication privilege: yes",
            f"publication {self.publication}: {'created' if self.created else 'already there'} (FOR ALL TABLES)",
        ]
        if self.no_identity:
            out.append(
                "WARNING: tables without a primary key or replica identity (their UPDATE/DELETE now fail on the "
                f"source until they get one; ALTER TABLE … REPLICA IDENTITY FULL): {', '.join(self.no_identity)}"
            )
        out.append("next: lastgood backup --source " + self.source + " (the first base creates the slot)")
        out.extend("note: " + n for n in PROVIDER_NOTES)
        return out


def enable(source_name: str, *, allow_no_identity: bool = False) -> EnableReport:
    source = pitr_source(source_name)
    url = str(get_secret(source.url_secret))
    with connect(url, timeout_s=10, autocommit=True) as conn:
        wal_level = str(conn.execute("SHOW wal_level").fetchone()[0])  # type: ignore[index]
        if wal_level != "logical":
            raise ConfigError(
                f"{source.name}: wal_level is {wal_level!r}, point-in-time recovery needs 'logical' "
                "(RDS: rds.logical_replication = 1 in the parameter group; self-hosted: wal_level = logical, restart)"
            )
        row = conn.execute(
            "SELECT rolsuper OR rolreplication OR pg_has_role(current_user, 'rds_replication', 'MEMBER') "
            "FROM pg_roles WHERE rolname = current_user"
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication'").fetchone()
            else "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if not row or not row[0]:
            raise ConfigError(
                f"{source.name}: the role may not replicate: ALTER ROLE <role> REPLICATION "
                "(RDS: GRANT rds_replication TO <role>)"
            )
        missing = [str(r[0]) for r in conn.execute(_NO_IDENTITY).fetchall()]
        if missing and not allow_no_identity:
            raise ConfigError(
                f"{source.name}: tables without a primary key or replica identity: {', '.join(missing)}; once "
                "published, their UPDATE/DELETE fail on the source. Give them one (ALTER TABLE … REPLICA IDENTITY "
                "FULL) or pass --allow-no-identity"
            )
        name = slots.publication_name(source.name)
        created = slots.ensure_publication(conn, name)
    return EnableReport(source.name, wal_level, True, name, created, missing)


def disable(source_name: str) -> dict[str, Any]:
    source = pitr_source(source_name)
    url = str(get_secret(source.url_secret))
    prefix = slots.slot_prefix(source.name)
    with connect(url, timeout_s=10, autocommit=True) as conn:
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"
            )
            if str(r[0]).startswith(prefix)
        ]
    for name in names:
        slots.drop_slot(url, name)
    with connect(url, timeout_s=10, autocommit=True) as conn:
        publication = slots.publication_name(source.name)
        dropped = slots.drop_publication(conn, publication)
    return {"source": source.name, "publication": publication if dropped else None, "slots": names}
