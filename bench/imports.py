"""Handler cold imports vs the third-party packages they need, and the drivers each one loads.

For each `functions/<name>/app.py`, a fresh interpreter records the third-party modules
the import pulls in; then, interleaved over `ROUNDS` fresh interpreters each, the time to
import the handler is compared with the time to import exactly those third-party modules
(the floor any handler built on them pays). The difference is lastgood's own code. The
ratio uses the child's CPU time (`time.process_time`), which other processes on the same
cores barely disturb; wall-clock times are reported beside it.

The handler imports `lastgood` as the shared layer ships it (`make -C layers/shared package
bytecode`: the layer's modules with their Python 3.13 bytecode), the way the third-party
packages come from the venv with the bytecode pip compiled: both sides load .pyc files, as
in Lambda, whatever PYTHONDONTWRITEBYTECODE says on the bench machine.

"A handler imports nothing it does not use": drivers a handler has no use for must not be
loaded — at import time for every handler, and at run time for prune (no database driver)
and the loader path (no psycopg), checked by running them in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import OUT, ROOT, Context, Results

ROUNDS = 5
DRIVERS = ("pymongo", "psycopg", "valkey")
# drivers each handler has no use for (health, backup and verify talk to every engine)
UNUSED_DRIVERS: dict[str, set[str]] = {
    "prune": {"pymongo", "psycopg", "valkey"},
    "regenerate": {"psycopg", "valkey"},
    "notifier": {"pymongo", "psycopg", "valkey"},
    "summary": {"pymongo", "psycopg", "valkey"},
}
SHOWN = ("boto3", "botocore", "aws_lambda_powertools", "pydantic", "httpx", *DRIVERS)

THIRD_PARTY = """
import importlib.util, json, sys
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
std = set(sys.stdlib_module_names)
print(json.dumps({"lastgood": sys.modules["lastgood"].__file__,
                  "modules": [n for n in sys.modules if n not in before and not n.startswith("_")
                              and n.split(".")[0] not in std | {"handler", "lastgood"}]}))
"""
TIME_IMPORT = """
import importlib, importlib.util, json, sys, time
t, c = time.perf_counter(), time.process_time()
if sys.argv[1] == "handler":
    spec = importlib.util.spec_from_file_location("handler", sys.argv[2])
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
else:
    for name in json.loads(open(sys.argv[2]).read()):
        try:
            importlib.import_module(name)
        except Exception:
            pass
print(json.dumps([time.process_time() - c, time.perf_counter() - t]))
"""
RUN_PRUNE = """
import json, sys
from pathlib import Path
from lastgood.cli.invoker import invoke
error = None
try:
    invoke("prune", Path("events/prune-postgres-dry-run.json"))
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"[:200]
print(json.dumps({"error": error, "loaded": sorted({n.split(".")[0] for n in sys.modules})}))
"""
RUN_LOADER = """
import json, sys
from lastgood.site.loader import load
ds = load(sys.argv[1])
print(json.dumps({"layer": ds.layer, "items": len(ds), "loaded": sorted({n.split(".")[0] for n in sys.modules})}))
"""


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-300:])
    return proc.stdout.strip().splitlines()[-1]


# What template.yaml's Globals set for every function that changes what an import costs
# (tests/infrastructure holds the two equal): lastgood uses no pydantic plugin, so the functions
# skip pydantic's scan of every installed distribution's entry points at the first model.
FUNCTION_ENV = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        **FUNCTION_ENV,
        **(extra or {}),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def _layer_package(into: Path) -> Path:
    """The `lastgood` package tree as the shared layer ships it, bytecode included."""
    make = ["make", "-s", "-C", str(ROOT / "layers/shared")]
    proc = subprocess.run(
        [*make, "package", "bytecode", f"ARTIFACTS_DIR={into}", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"staging the layer's package failed: {proc.stderr.strip()[-300:]}")
    return into / "python"


def run_cold(results: Results) -> None:
    with tempfile.TemporaryDirectory(prefix="lastgood-layer-") as tmp:
        layer = _layer_package(Path(tmp))
        path = os.pathsep.join(p for p in (str(layer), os.environ.get("PYTHONPATH")) if p)
        _run_cold(results, layer, _env({"PYTHONPATH": path}))


def _run_cold(results: Results, layer: Path, env: dict[str, str]) -> None:
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        name = app.parent.name
        try:
            _one_handler(results, name, app, layer, env)
        except Exception as exc:
            results.not_measured(
                f"Cold import of functions/{name}/app.py", f"{type(exc).__name__}: {exc}", "imports"
            )


def _one_handler(results: Results, name: str, app: Path, layer: Path, env: dict[str, str]) -> None:
    found = json.loads(_python(THIRD_PARTY, str(app), env=env))
    if not Path(found["lastgood"]).is_relative_to(layer):
        raise RuntimeError(f"the handler imported lastgood from {found['lastgood']}, not the staged layer")
    modules = found["modules"]
    deps_file = OUT / f".imports-{name}.json"
    deps_file.write_text(json.dumps(modules))
    try:
        handler_runs, deps_runs = [], []
        for _ in range(ROUNDS):  # interleaved: background noise lands on both sides
            handler_runs.append(json.loads(_python(TIME_IMPORT, "handler", str(app), env=env)))
            deps_runs.append(json.loads(_python(TIME_IMPORT, "deps", str(deps_file), env=env)))
    finally:
        deps_file.unlink(missing_ok=True)
    # CPU time of the importing process: what the import costs, not what other processes on the
    # same cores cost it; wall-clock times are shown beside
    handler_s, deps_s = min(r[0] for r in handler_runs), min(r[0] for r in deps_runs)
    handler_wall, deps_wall = min(r[1] for r in handler_runs), min(r[1] for r in deps_runs)
    packages = {m.split(".")[0] for m in modules}
    unused = sorted(UNUSED_DRIVERS.get(name, set()) & packages)
    ratio = handler_s / deps_s
    goal = "≤ 1.2" + (f", no {'/'.join(sorted(UNUSED_DRIVERS[name]))}" if name in UNUSED_DRIVERS else "")
    results.add(
        f"Cold import of functions/{name}/app.py vs its third-party imports",
        ratio,
        "×",
        goal,
        ratio <= 1.2 and not unused,
        f"CPU {handler_s * 1000:.0f} ms vs {deps_s * 1000:.0f} ms (wall {handler_wall * 1000:.0f} vs "
        f"{deps_wall * 1000:.0f} ms) for the {len(modules)} third-party modules it loads "
        f"({', '.join(p for p in SHOWN if p in packages) or 'no drivers'}; lastgood as the layer ships it, "
        f"with its bytecode; best of {ROUNDS})"
        + (f"; loads {', '.join(unused)} it does not use" if unused else ""),
        "imports",
    )


def run_runtime(ctx: Context, loader_config: str | None) -> None:
    """Drivers loaded while actually running prune and the loader (needs the devstack)."""
    env = _env(ctx.env)
    prune = json.loads(_python(RUN_PRUNE, env=env))
    loaded = set(prune["loaded"]) & set(DRIVERS)
    bad = sorted(loaded & {"pymongo", "psycopg"})
    ctx.results.add(
        "Prune run (invoke prune, dry run) loads no database driver",
        float(len(bad)),
        " drivers",
        "0 (no pymongo/psycopg)",
        not bad and prune["error"] is None,
        f"drivers in sys.modules after the run: {', '.join(sorted(loaded)) or 'none'}"
        + (f"; handler error: {prune['error']}" if prune["error"] else ""),
        "imports",
    )
    if loader_config is None:
        ctx.results.not_measured("Loader path loads no psycopg", "no published dataset to load", "imports")
        return
    run = json.loads(_python(RUN_LOADER, "bench-small", env={**env, "LASTGOOD_CONFIG": loader_config}))
    loaded = set(run["loaded"]) & set(DRIVERS)
    ctx.results.add(
        "Loader path (load from live) loads no psycopg",
        float("psycopg" in loaded),
        " drivers",
        "0 (no psycopg)",
        "psycopg" not in loaded,
        f"{run['items']} items from `{run['layer']}`; drivers in sys.modules: {', '.join(sorted(loaded)) or 'none'}",
        "imports",
    )
