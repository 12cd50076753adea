"""The cross-region replica: which bucket holds the copies, how it is reached, how it is pruned.

The config's optional `[replica]` table (`lastgood.core.config_model.ReplicaConfig`) names a
backup bucket in another region. In AWS, S3 Replication on the primary backup bucket fills it
(template.yaml, docs/cross-region.md); `lastgood replicate` (`lastgood.backups.replicate`) is the
copy path where S3 does not replicate (the devstack, tests, an S3-compatible store). Its layout
is the backup bucket's (`lastgood.backups.keys`): the replica is read with the same store,
catalog and verified reader as the primary — only the bucket, its region and its KMS key differ.

- `replica_store()`: the `BackupStore` over the replica (its region's client, short timeouts
  for health; `LASTGOOD_REPLICA_ENDPOINT_URL` points it at a stand-in). In a deployment of the
  template in "replica" mode (`LASTGOOD_DEPLOYMENT_MODE=replica`) the replica is the
  deployment's own backup bucket.
- `store_for(origin)`: `primary` (BACKUP_BUCKET) or `replica`, for `--from`.
- `replica_policy()`: the replica's own retention policy; `prune_replica` runs the same prune
  (lock, plan, pins, legal holds, manifest first, audit) on the replica bucket with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from lastgood.core.config_model import ReplicaConfig
from lastgood.core.errors import ConfigError, RetentionError

if TYPE_CHECKING:
    from lastgood.backups.prune import PruneResult
    from lastgood.backups.retention import RetentionPolicy
    from lastgood.backups.store import BackupStore

Origin = Literal["primary", "replica"]
ORIGINS: tuple[Origin, ...] = ("primary", "replica")


def configured_replica() -> ReplicaConfig | None:
    """The config's `[replica]` table, or None when there is none."""
    from lastgood.core.config import get_config

    return get_config().replica


def require_replica() -> ReplicaConfig:
    replica = configured_replica()
    if replica is None:
        raise ConfigError(
            "no replica is configured: add a [replica] table (bucket, region, kms_key_id) to the config "
            "file (docs/cross-region.md)"
        )
    return replica


def is_replica_deployment() -> bool:
    from lastgood.core.settings import get_settings

    return get_settings().deployment_mode == "replica"


def replica_store(*, health: bool = False) -> BackupStore:
    """The `BackupStore` of the replica bucket, through a client of the replica's region.

    `health=True`: the health client configuration (1 s connect, 2 s read, 2 attempts), so an
    unreachable replica costs seconds, never minutes. In a replica-mode deployment the
    deployment's own backup bucket is the replica."""
    from lastgood.backups.store import BackupStore
    from lastgood.core import aws
    from lastgood.core.settings import get_settings

    settings = get_settings()
    if settings.deployment_mode == "replica" and settings.backup_bucket:
        client = aws.health_client("s3") if health else aws.client("s3")
        return BackupStore(settings.backup_bucket, settings.kms_key_id, client)
    replica = require_replica()
    client = aws.regional_client("s3", replica.region, settings.replica_endpoint_url, health=health)
    return BackupStore(replica.bucket, replica.kms_key_id, client)


def store_for(origin: str) -> BackupStore:
    """`primary`: the backup bucket (BACKUP_BUCKET); `replica`: the replica bucket."""
    from lastgood.backups.store import BackupStore

    if origin == "primary":
        return BackupStore.from_settings()
    if origin == "replica":
        return replica_store()
    raise ConfigError(f"--from {origin!r}: expected one of {', '.join(ORIGINS)}")


def replica_policy() -> RetentionPolicy:
    """The replica's own retention policy (`[replica].retention`); RetentionError when empty."""
    from lastgood.backups.retention import RetentionPolicy

    replica = require_replica()
    if not replica.retention:
        raise RetentionError(
            "the replica has no retention policy ([replica].retention): its prune keeps every copy"
        )
    try:
        return RetentionPolicy.from_dict(dict(replica.retention))
    except RetentionError as exc:
        raise RetentionError(f"replica.retention: {exc}") from None


def prune_replica(source: str, *, store: BackupStore | None = None, **options: Any) -> PruneResult:
    """`lastgood.backups.prune.prune_source` on the replica bucket with the replica's policy
    (`options`: dry_run, force, now, grace, max_remove_share; `policy` replaces the replica's)."""
    from lastgood.backups.prune import prune_source

    policy = options.pop("policy", None) or replica_policy()
    return prune_source(source, store=store or replica_store(), policy=policy, **options)
