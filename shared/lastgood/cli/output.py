"""How the command talks to a person: log lines, expected failures, a closed pipe.

- On a terminal, logs are short human lines on stderr (`WARNING backup failed  source=pg …`);
  otherwise (a pipe, CI, a container's log driver) the structured JSON lines of Lambda, on
  stderr. Results always go to stdout. `--quiet` keeps warnings and errors only.
- Every expected failure is one or two lines naming what failed and what to check, with the
  exit code of README's table; a traceback only with `--debug`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lastgood.core.errors import LastgoodError

# Exit codes beyond the typed errors' own (core/errors.py): see README "Exit codes".
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 4

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_QUIET_FIELDS = {
    "location",
    "timestamp",
    "service",
    "xray_trace_id",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "sampling_rate",
    "level",
}


class HumanFormatter(logging.Formatter):
    """`LEVEL message  key=value …` — the fields a person acts on, no JSON."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            k: v
            for k, v in record.__dict__.items()
            if k not in _STANDARD and k not in _QUIET_FIELDS and not k.startswith("_") and v is not None
        }
        extra = "  " + " ".join(f"{k}={_short(v)}" for k, v in fields.items()) if fields else ""
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"{level}{record.getMessage()}{extra}"
        if record.exc_info and logging.getLogger("lastgood.cli").isEnabledFor(logging.DEBUG):
            line += "\n" + self.formatException(record.exc_info)
        return line


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "…"


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written (a redirect, a test's capture, the tty),
    so a log line from a late thread never goes to a stream closed in the meantime."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def setup_logging(*, quiet: bool = False, debug: bool = False, human: bool | None = None) -> None:
    """Point lastgood's logger at stderr, human-readable on a terminal, JSON otherwise."""
    from lastgood.core.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.stream = _CurrentStderr()  # not setStream: it flushes the old one, maybe closed
        if human if human is not None else sys.stderr.isatty():
            handler.setFormatter(HumanFormatter())
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    if debug:
        logging.getLogger("lastgood.cli").setLevel(logging.DEBUG)


@contextmanager
def byte_progress(
    label: str, total: Callable[[], int | None], *, quiet: bool = False
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar (bytes, rate, ETA against `total()`) on a terminal; nothing otherwise.

    `total` is called only when a bar is shown: an estimate must cost nothing off a terminal.

    Yields the callback to feed with byte counts, or None when no bar is shown (not a TTY,
    `--json`/`--quiet`, or tqdm not installed: `pip install 'lastgood[cli]'`).
    """
    from lastgood.core.observability import logger

    if quiet or not sys.stderr.isatty() or logger.log_level > logging.INFO:
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield None
        return
    import shutil

    # A terminal that reports no size (a bare pseudo-terminal) would make tqdm hide the bar.
    columns, lines = shutil.get_terminal_size((100, 24))
    bar = tqdm(
        total=total(),
        desc=label,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=False,
        ncols=columns,
        nrows=lines,
    )
    try:
        yield bar.update
    finally:
        bar.close()


def describe_failure(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for an expected failure; None for a bug (shown with --debug)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, LastgoodError):
        return str(exc), exc.exit_code
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        where = getattr(exc, "kwargs", {}).get("endpoint_url", "") or ""
        hint = _local_hint(where)
        return (
            f"AWS is unreachable ({type(exc).__name__}{': ' + where if where else ''}); "
            f"check the network and AWS_ENDPOINT_URL / AWS_REGION{hint}",
            EXIT_UNAVAILABLE,
        )
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            EXIT_USAGE,
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        operation = exc.operation_name
        bucket = str(error.get("BucketName", "") or "")
        if code == "NoSuchBucket":
            return (
                f"bucket {bucket or '(configured)'} does not exist ({operation}): check BACKUP_BUCKET / "
                "SITE_BUCKET and the region",
                EXIT_USAGE,
            )
        if code in {
            "AccessDenied",
            "AllAccessDisabled",
            "403",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        }:
            return (
                f"AWS refused {operation} ({code}): check the credentials in use and the role's policy",
                EXIT_USAGE if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch"} else EXIT_FAILED,
            )
        return f"AWS {operation} failed: {code or type(exc).__name__}: {error.get('Message', '')}"[
            :300
        ], EXIT_FAILED
    return None


def _local_hint(endpoint: str) -> str:
    if "127.0.0.1" in endpoint or "localhost" in endpoint:
        return "; the devstack may be down or restarted on new ports (`make up`, then re-read .devstack/env)"
    return ""
