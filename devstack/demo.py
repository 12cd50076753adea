"""`python -m devstack demo`: start the devstack if needed, seed it, run every demo step.

Steps are `devstack/demo_steps/step<NN>_<name>.py` modules, run in name order; each
defines `run(ctx: DemoContext) -> None`. A step that raises is reported as failed
and the demo continues with the next one; the exit code is non-zero if any failed.
The stack is left running at the end (`make down` stops it).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.stack import REPO_ROOT, Devstack, demo_env

OK = "\u2713"
FAIL = "\u2717"


class StepFailed(RuntimeError):
    """A demo step's command did not do what the step expected."""


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    lines: list[str] = field(default_factory=list)
    error: str | None = None


class DemoContext:
    """What a demo step gets: output helpers, the CLI and the invoker with the devstack env."""

    def __init__(self, stack: Devstack, out: Any = None) -> None:
        self.stack = stack
        self._out = out or sys.stdout
        self.current: StepResult | None = None
        self.results: list[StepResult] = []

    # ------------------------------------------------------------------ output

    def say(self, text: str = "") -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def section(self, title: str) -> None:
        self.say()
        self.say(f"== {title} " + "=" * max(3, 72 - len(title)))

    def summary(self, line: str) -> None:
        """A line for the final summary (under the current step), also printed now."""
        if self.current is not None:
            self.current.lines.append(line)
        self.say(f"   -> {line}")

    # ------------------------------------------------------------------ commands

    def env_for_child(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(demo_env())
        env.update(self.stack.env)
        env.update(extra or {})
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _lastgood_command(self) -> list[str]:
        exe = Path(sys.executable).parent / "lastgood"
        if exe.exists():
            return [str(exe)]
        return [sys.executable, "-m", "lastgood.cli"]

    def lastgood(
        self, *args: str, check: bool = True, env: Mapping[str, str] | None = None, echo: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `lastgood ARGS` with the devstack env merged over os.environ, capturing output."""
        cmd = [*self._lastgood_command(), *args]
        if echo:
            self.say("   $ lastgood " + " ".join(args))
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env=self.env_for_child(env),
            timeout=600,
        )
        if check and result.returncode != 0:
            raise StepFailed(
                f"`lastgood {' '.join(args)}` exited {result.returncode}:\n{_tail(result.stderr or result.stdout)}"
            )
        return result

    def invoke(
        self,
        function: str,
        event_file: str,
        *,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """`lastgood invoke FUNCTION --event EVENT_FILE` and its printed return value as a dict.

        `headers` are merged into the event's `headers` (e.g. the per-stack `x-admin-key`,
        which a checked-in event file cannot know) through a temporary copy of the event.
        """
        if headers:
            event = json.loads((REPO_ROOT / event_file).read_text(encoding="utf-8"))
            event["headers"] = {**(event.get("headers") or {}), **headers}
            with tempfile.NamedTemporaryFile(
                "w",
                suffix=".json",
                prefix=Path(event_file).stem + "-",
                dir=self.stack.state_dir,
                delete=False,
            ) as handle:
                json.dump(event, handle)
            try:
                return self.invoke(function, handle.name, env=env)
            finally:
                Path(handle.name).unlink(missing_ok=True)
        result = self.lastgood("invoke", function, "--event", event_file, check=False, env=env)
        try:
            value = json.loads(result.stdout)
        except ValueError:
            raise StepFailed(
                f"`lastgood invoke {function}` exited {result.returncode} without JSON output:\n"
                f"{_tail(result.stderr or result.stdout)}"
            ) from None
        if not isinstance(value, dict):
            raise StepFailed(
                f"`lastgood invoke {function}` returned {type(value).__name__}, expected an object"
            )
        return value


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def discover_steps() -> list[str]:
    """Module names of the demo steps, in name order."""
    import devstack.demo_steps as steps_pkg

    names = [m.name for m in pkgutil.iter_modules(steps_pkg.__path__) if m.name.startswith("step")]
    return [f"devstack.demo_steps.{n}" for n in sorted(names)]


def run_steps(ctx: DemoContext, modules: list[str]) -> list[StepResult]:
    for module_name in modules:
        short = module_name.rsplit(".", 1)[-1]
        result = StepResult(short, ok=False, seconds=0.0)
        ctx.current = result
        started = time.monotonic()
        try:
            module = importlib.import_module(module_name)
            module.run(ctx)
            result.ok = True
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            ctx.say(f"   {FAIL} {short} failed: {result.error}")
            if not isinstance(exc, StepFailed):
                ctx.say(_tail(traceback.format_exc(), 12))
        result.seconds = time.monotonic() - started
        ctx.results.append(result)
        ctx.current = None
    return ctx.results


def print_summary(ctx: DemoContext) -> None:
    ctx.section("Summary")
    for result in ctx.results:
        mark = OK if result.ok else FAIL
        ctx.say(f" {mark} {result.name:<28} {result.seconds:6.2f}s")
        for line in result.lines:
            ctx.say(f"      {line}")
        if result.error:
            ctx.say(f"      error: {result.error.splitlines()[0]}")
    failed = [r.name for r in ctx.results if not r.ok]
    passed = len(ctx.results) - len(failed)
    ctx.say()
    ctx.say(
        f"{passed}/{len(ctx.results)} steps passed" + (f"; failed: {', '.join(failed)}" if failed else "")
    )


def run_demo(stack: Devstack, out: Any = None) -> int:
    ctx = DemoContext(stack, out)
    ctx.section("Devstack")
    if stack.all_running():
        ctx.say(f"devstack already up; env: {stack.env_file}")
    else:
        stack.up()
        ctx.say(f"devstack up in {stack.startup_seconds:.2f}s; env: {stack.env_file}")
    ctx.section("Sample data")
    started = time.monotonic()
    counts = stack.seed(progress=ctx.say)
    ctx.say(f"seeded in {time.monotonic() - started:.2f}s")
    ctx.results.append(
        StepResult(
            "seed",
            ok=True,
            seconds=time.monotonic() - started,
            lines=[
                "mongodb " + ", ".join(f"{k} {v}" for k, v in counts["mongodb"].items()),
                "postgres " + ", ".join(f"{k} {v}" for k, v in counts["postgres"].items()),
                f"valkey {counts['valkey']['keys']} demo:* keys",
            ],
        )
    )
    run_steps(ctx, discover_steps())
    print_summary(ctx)
    ctx.say()
    ctx.say(f"The devstack is still running (env: {stack.env_file}); `make down` stops it.")
    return 0 if all(r.ok for r in ctx.results) else 1
