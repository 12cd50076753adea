"""Shared fixtures.

The devstack (real local services) starts only when a test needs it: a test that
requests the `devstack` fixture or is marked `pytest.mark.devstack`. Unit tests
never start it. It runs once per session, in its own temp directory on free
loopback ports, and is stopped at the end of the session even when tests fail.

Tests run tier by tier (unit, infrastructure, integration, e2e) so the fast ones
report first.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import Devstack

ROOT = Path(__file__).resolve().parents[1]
# The suite's own config (the demo's sources and datasets), never the project's lastgood.toml
# nor a LASTGOOD_CONFIG / LASTGOOD_BUNDLED_DIR of the shell: `make test` passes whatever the
# user declares. Its bundled copies are the demo's sample data.
FIXTURE_CONFIG = ROOT / "tests" / "fixtures" / "config" / "demo.toml"
os.environ["LASTGOOD_CONFIG"] = str(FIXTURE_CONFIG)
os.environ["LASTGOOD_BUNDLED_DIR"] = str(ROOT / "devstack" / "demo" / "bundled")
TIER_ORDER = {"unit": 0, "infrastructure": 1, "integration": 2, "e2e": 3}

_session_stack: TestDevstack | None = None
_startup_report: list[str] = []


def _reset_caches() -> None:
    from lastgood.core.aws import reset_clients
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings

    reset_settings()
    reset_config()
    reset_clients()


class TestDevstack(Devstack):
    """The session devstack; keeps `os.environ` in step with its env (ids change on `reset_aws`)."""

    __test__ = False  # not a test class

    def apply_env(self) -> None:
        os.environ.update(self.env)
        _reset_caches()

    def reset_aws(self) -> dict[str, str]:
        env = super().reset_aws()
        self.apply_env()
        return env

    def start(self, name: str) -> None:
        super().start(name)
        if name == "moto":  # a restarted moto is empty; its resources were recreated with new ids
            self.apply_env()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def tier(item: pytest.Item) -> int:
        parts = Path(str(item.fspath)).relative_to(ROOT).parts
        return TIER_ORDER.get(parts[1], len(TIER_ORDER)) if len(parts) > 1 and parts[0] == "tests" else 9

    items.sort(key=tier)  # stable: keeps the file and definition order inside a tier


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _startup_report:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDevstack]:
    """Every local service, started once per session; its env is in `os.environ`."""
    global _session_stack
    saved_env = dict(os.environ)
    stack = TestDevstack(tmp_path_factory.mktemp("devstack"))
    watchdog: subprocess.Popen[bytes] | None = None
    atexit.register(stack.down)  # belt and braces: a crashed session must not leave services behind
    try:
        started = time.monotonic()
        watchdog = stack.watch_owner()  # a killed test run must not leave services behind
        stack.up()
        stack.apply_env()
        stack.seed()
        _startup_report.append(
            f"devstack: services up in {stack.state.get('startup_seconds', 0):.2f}s, "
            f"seeded and ready in {time.monotonic() - started:.2f}s ({stack.state_dir})"
        )
        _session_stack = stack
        yield stack
    finally:
        _session_stack = None
        stack.down()
        if watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(timeout=3)  # it exits on its own once pids.json is gone
            if watchdog.poll() is None:
                watchdog.kill()
                watchdog.wait()
        atexit.unregister(stack.down)
        os.environ.clear()
        os.environ.update(saved_env)
        _reset_caches()


@pytest.fixture(autouse=True)
def _devstack_for_marked_tests(request: pytest.FixtureRequest) -> None:
    """`pytestmark = pytest.mark.devstack` is enough: the marker pulls in the fixture."""
    if request.node.get_closest_marker("devstack") is not None:
        request.getfixturevalue("devstack")


@pytest.fixture(autouse=True)
def _isolate_environ(_devstack_for_marked_tests: None) -> Iterator[None]:
    """Environment changes a test makes do not leak into the next test."""
    before = dict(os.environ)
    yield
    stack = _session_stack
    expected = dict(before)
    if stack is not None:
        expected.update(stack.env)
    if dict(os.environ) != expected:
        os.environ.clear()
        os.environ.update(expected)
        _reset_caches()


@pytest.fixture
def stopped(devstack: TestDevstack) -> Callable[[str], contextlib.AbstractContextManager[None]]:
    """`with stopped("postgres"): ...` — the service is down inside the block, restarted after."""

    @contextlib.contextmanager
    def _stopped(name: str) -> Iterator[None]:
        devstack.stop(name)
        try:
            yield
        finally:
            devstack.start(name)

    return _stopped


@pytest.fixture
def upstash_fault(devstack: TestDevstack) -> Callable[[str], contextlib.AbstractContextManager[None]]:
    """`with upstash_fault("429"): ...` — modes "429", "500", "hang"; normal service after."""

    @contextlib.contextmanager
    def _fault(mode: str) -> Iterator[None]:
        devstack.fault(mode)
        try:
            yield
        finally:
            devstack.fault("ok")

    return _fault


@pytest.fixture
def clean_aws(devstack: TestDevstack) -> TestDevstack:
    """Empty moto state with the template's resources recreated (opt-in, per test)."""
    devstack.reset_aws()
    return devstack


@dataclass
class FakeLambdaContext:
    """What handlers read from the Lambda context object."""

    function_name: str = "lastgood-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:lastgood-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/lastgood-test"
    log_stream_name: str = "2025/11/08/[$LATEST]devstack"
    timeout_ms: int = 60_000
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self._started) * 1000))


@pytest.fixture
def lambda_context() -> Any:
    return FakeLambdaContext()
