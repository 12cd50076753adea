"""Helpers for the resilient-KV and alerting tests (fresh KV instances, Valkey, the alert queue, Slack)."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def fresh_kv(*, cooldown_s: float = 30.0, fallback_timeout_s: float = 1.0) -> Any:
    """A new process-wide ResilientKV (as a fresh Lambda process would build it) with test timeouts."""
    from lastgood.core.settings import reset_settings
    from lastgood.kv.client import get_kv, reset_kv

    os.environ["KV_BREAKER_COOLDOWN_S"] = str(cooldown_s)
    os.environ["KV_FALLBACK_TIMEOUT_S"] = str(fallback_timeout_s)
    os.environ["KV_TIMEOUT_S"] = "1"
    os.environ["KV_MIRROR_TIMEOUT_MS"] = "500"
    reset_settings()
    reset_kv()
    return get_kv()


def valkey() -> Any:
    """A plain Redis-protocol client to the Valkey behind the Upstash front (REDIS_URL)."""
    import valkey as valkey_client

    return valkey_client.Valkey.from_url(os.environ["REDIS_URL"], decode_responses=True)


def drain_queue(queue_url: str | None = None, *, wait_s: int = 1, rounds: int = 5) -> list[dict[str, Any]]:
    """Every message in the alert queue as {subject, message, attributes} (raw or SNS-envelope bodies)."""
    from lastgood.core import aws

    sqs = aws.client("sqs")
    url = queue_url or os.environ["ALERT_QUEUE_URL"]
    out: list[dict[str, Any]] = []
    for _ in range(rounds):
        reply = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s, MessageAttributeNames=["All"]
        )
        messages = reply.get("Messages", [])
        if not messages:
            break
        for msg in messages:
            body = msg["Body"]
            try:
                envelope = json.loads(body)
            except ValueError:
                envelope = None
            if isinstance(envelope, dict) and envelope.get("Type") == "Notification":
                out.append(
                    {
                        "subject": envelope.get("Subject"),
                        "message": envelope.get("Message"),
                        "attributes": envelope.get("MessageAttributes", {}),
                    }
                )
            else:
                out.append({"subject": None, "message": body, "attributes": msg.get("MessageAttributes", {})})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return out


class _Recorder(BaseHTTPRequestHandler):
    status = 200
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.received.append(json.loads(body or b"{}"))  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def webhook_server(status: int = 200) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local Slack-webhook stand-in on a free loopback port answering `status`; yields (url, received)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.status = status  # type: ignore[attr-defined]
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def load_handler(name: str) -> Any:
    """`functions/<name>/app.py`'s lambda_handler, imported the way the Lambda runtime does."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"lastgood_fn_{name}_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def closed_port_url() -> str:
    """An http URL on a loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
