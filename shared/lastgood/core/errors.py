"""Typed errors that carry what a person needs to act on them."""

from __future__ import annotations


class LastgoodError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(LastgoodError):
    """A setting or config entry is missing or malformed (names the variable and what was expected)."""

    exit_code = 2


class UsageError(ConfigError):
    """The command was given arguments that do not go together (exit 2, like argparse's own errors)."""


class DataUnavailable(LastgoodError):
    """Every loader layer failed; carries the per-layer reasons."""

    exit_code = 3

    def __init__(self, dataset: str, reasons: dict[str, str]) -> None:
        self.dataset = dataset
        self.reasons = reasons
        detail = "; ".join(f"{layer}: {why}" for layer, why in reasons.items())
        super().__init__(f"CRITICAL: All fallbacks failed for dataset {dataset!r} ({detail})")


class GuardRejected(LastgoodError):
    """Regenerated data failed a publishing guard; nothing was published."""

    def __init__(self, dataset: str, reason: str) -> None:
        self.dataset = dataset
        self.reason = reason
        super().__init__(f"dataset {dataset!r} rejected: {reason}")


class SourceUnavailable(LastgoodError):
    """A database could not be reached or refused us (message is redacted)."""

    exit_code = 4


class BackupError(LastgoodError):
    """A backup run failed; nothing was committed (no manifest written)."""

    exit_code = 5


class BackupSourceUnavailable(SourceUnavailable, BackupError):
    """A backup failed because its database could not be reached: exit 4 (the source), not 5."""

    exit_code = 4


class BackupIntegrityError(LastgoodError):
    """A stored object does not match its manifest (size or SHA-256), or the backup is incomplete."""

    exit_code = 6


class BackupNotFound(LastgoodError):
    exit_code = 7


class RestoreError(LastgoodError):
    exit_code = 8


class UnsafeTarget(RestoreError):
    """A restore or drill target is a production database (by server identity); nothing was written."""


class RetentionError(LastgoodError):
    """A retention policy is malformed, or a plan was refused by a safety guard."""

    exit_code = 9


class KVUnavailable(LastgoodError):
    """Neither the KV primary nor its MongoDB mirror could serve the call."""

    exit_code = 10


class SlotInProgress(BackupError):
    """A schedule slot's lock is held by a run that has not committed and is within its lease.

    Not a success: the slot's backup does not exist yet. A retry after the lease takes it over."""

    exit_code = 11
