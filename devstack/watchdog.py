"""Stop a devstack when the process that owns it dies without stopping it (killed test run).

`python -m devstack.watchdog --owner PID --state-dir DIR` polls once a second; when
PID is gone it runs `Devstack(DIR).down()`. It exits by itself once the stack has
been stopped normally (no `pids.json` left).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir)
    seen_pids = False
    while True:
        has_pids = (state_dir / "pids.json").exists()
        seen_pids = seen_pids or has_pids
        if seen_pids and not has_pids:
            return 0  # stopped normally
        if not _alive(args.owner):
            from devstack.stack import Devstack

            Devstack(state_dir, mongodb_uri_from_env=False).down()
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
