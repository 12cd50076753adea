"""An Upstash-REST-compatible HTTP front in front of a local Valkey (development only).

Speaks what the `upstash-redis` SDK (1.8) and lastgood's own REST client send:

- `POST /` with a JSON array command (`["SET", "k", "v", "EX", 60]`);
- `POST /pipeline` and `POST /multi-exec` with an array of command arrays; the reply
  is always an array of `{"result": ...}` / `{"error": ...}` items;
- `GET /<cmd>/<arg>/<arg>...` path commands (URL-encoded segments);
- `Authorization: Bearer <token>` (or `?_token=`), else HTTP 401 with a JSON error;
- `Upstash-Encoding: base64`: every string in the result (nested too) is the base64
  of the raw bytes, except the status reply `OK` — as Upstash does. Without it,
  strings are returned as UTF-8 text. Integers stay numbers, nil is `null`.

JSON scalar arguments (numbers, booleans) are stringified, as Upstash does. The
front talks to Valkey binary-safely (raw RESP2 replies, no decoding).

Fault injection for outage tests: `POST /__lastgood/fault` `{"mode": "ok"|"429"|"500"|"hang"}`
(bearer token required). `429` answers HTTP 429 `{"error": "ERR max requests limit exceeded..."}`,
`500` answers HTTP 500 with a non-JSON body, `hang` holds each request up to 30 s
(or until the mode is set back). `GET /__lastgood/ping` answers without Valkey.

Run: `python -m devstack.upstash_front --port P --redis-port R --token T`
(or `--token-file state.json`, whose "token" key is used).
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import valkey
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import ResponseError
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

HANG_SECONDS = 30.0
RATE_LIMIT_ERROR = "ERR max requests limit exceeded. Limit: 10000, Usage: 10000"
MODES = ("ok", "429", "500", "hang")


class FaultState:
    def __init__(self) -> None:
        self.mode = "ok"
        self.released = threading.Event()
        self.released.set()
        self.lock = threading.Lock()

    def set(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            if mode == "hang":
                self.released.clear()
            else:
                self.released.set()


def encode_reply(value: Any, b64: bool) -> Any:
    """A raw RESP2 reply as Upstash puts it into JSON."""
    if isinstance(value, bytes):
        if value == b"OK":
            return "OK"
        if b64:
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", "replace")
    if isinstance(value, str):  # not produced with raw replies; kept for safety
        return encode_reply(value.encode("utf-8"), b64)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) or value is None:
        return value
    if isinstance(value, float):
        return encode_reply(repr(value).encode(), b64)
    if isinstance(value, (list, tuple)):
        return [encode_reply(v, b64) for v in value]
    if isinstance(value, dict):  # RESP3-style maps never occur with RESP2; flatten if they do
        flat: list[Any] = []
        for k, v in value.items():
            flat += [k, v]
        return encode_reply(flat, b64)
    if isinstance(value, Exception):
        return str(value)
    return encode_reply(str(value).encode(), b64)


def item(value: Any, b64: bool) -> dict[str, Any]:
    if isinstance(value, Exception):
        return {"error": str(value)}
    return {"result": encode_reply(value, b64)}


def to_arg(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


class BadRequest(ValueError):
    pass


def parse_command(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise BadRequest("ERR command must be a non-empty JSON array")
    return [to_arg(v) for v in value]


class Front:
    def __init__(self, redis_port: int, token: str, redis_host: str = "127.0.0.1") -> None:
        self.token = token
        self.fault = FaultState()
        self.client = valkey.Valkey(
            host=redis_host,
            port=redis_port,
            decode_responses=False,
            socket_timeout=30,
            socket_connect_timeout=2,
            health_check_interval=0,
        )
        # Raw RESP2 replies: the shapes Upstash returns (no dicts, floats or booleans).
        self.client.response_callbacks.clear()

    def run_one(self, command: list[str]) -> Any:
        try:
            return self.client.execute_command(*command)
        except ResponseError as exc:
            return exc

    def run_many(self, commands: list[list[str]], transaction: bool) -> list[Any]:
        pipe = self.client.pipeline(transaction=transaction)
        for cmd in commands:
            pipe.execute_command(*cmd)
        try:
            return list(pipe.execute(raise_on_error=False))
        except ResponseError as exc:  # EXECABORT and the like: every command failed
            return [exc for _ in commands]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Replies are small writes on a kept-alive connection: without TCP_NODELAY each one waits
    # for the delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server_version = "lastgood-upstash-front/1"
    front: Front  # set on the subclass built by make_server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -------------------------------------------------------------- plumbing

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode())

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = header[7:] if header[:7].lower() == "bearer " else ""
        if not token:
            query = parse_qs(urlsplit(self.path).query)
            token = (query.get("_token") or [""])[0]
        return bool(token) and hmac.compare_digest(token.encode(), self.front.token.encode())

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _apply_fault(self) -> bool:
        """True when the fault already answered the request."""
        state = self.front.fault
        mode = state.mode
        if mode == "hang":
            state.released.wait(HANG_SECONDS)
            mode = state.mode
            if mode == "hang":  # still hanging after the maximum: drop the connection
                self.close_connection = True
                return True
        if mode == "429":
            self._json(429, {"error": RATE_LIMIT_ERROR})
            return True
        if mode == "500":
            self._send(500, b"Internal Server Error", "text/plain")
            return True
        return False

    # -------------------------------------------------------------- verbs

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/__lastgood/ping":
            self._json(200, {"result": "PONG", "mode": self.front.fault.mode})
            return
        if not self._authorized():
            self._json(401, {"error": "Unauthorized"})
            return
        segments = [unquote(s) for s in path.strip("/").split("/") if s]
        if not segments:
            self._json(400, {"error": "ERR empty command"})
            return
        self._dispatch_command(segments)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        body = self._body()
        if not self._authorized():
            self._json(401, {"error": "Unauthorized"})
            return
        if path == "/__lastgood/fault":
            try:
                mode = str(json.loads(body or b"{}").get("mode", ""))
            except (ValueError, AttributeError):
                mode = ""
            if mode not in MODES:
                self._json(400, {"error": f"mode must be one of {', '.join(MODES)}"})
                return
            self.front.fault.set(mode)
            self._json(200, {"result": "OK", "mode": mode})
            return
        if self._apply_fault():
            return
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            self._json(400, {"error": "ERR failed to parse command"})
            return
        b64 = self.headers.get("Upstash-Encoding", "").lower() == "base64"
        try:
            if path in ("/pipeline", "/multi-exec"):
                if not isinstance(payload, list) or not payload:
                    raise BadRequest("ERR pipeline must be a non-empty array of commands")
                commands = [parse_command(c) for c in payload]
                replies = self.front.run_many(commands, transaction=path == "/multi-exec")
                self._json(200, [item(r, b64) for r in replies])
                return
            if path == "":
                command = parse_command(payload)
            else:  # POST /set/key with the value as body
                command = [unquote(s) for s in path.strip("/").split("/") if s]
                if body:
                    command.append(body.decode("utf-8", "replace"))
        except BadRequest as exc:
            self._json(400, {"error": str(exc)})
            return
        self._dispatch_command(command, b64=b64)

    def _dispatch_command(self, command: list[str], b64: bool | None = None) -> None:
        if b64 is None:
            if self._apply_fault():
                return
            b64 = self.headers.get("Upstash-Encoding", "").lower() == "base64"
        try:
            reply = self.front.run_one(command)
        except (ValkeyConnectionError, ValkeyTimeoutError, OSError) as exc:
            self._json(500, {"error": f"ERR backend unavailable: {type(exc).__name__}"})
            return
        status = 400 if isinstance(reply, Exception) else 200
        self._json(status, item(reply, b64))

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ValkeyConnectionError, ValkeyTimeoutError) as exc:
            # a pipeline hit a stopped Valkey: like a gateway error
            try:
                self._json(500, {"error": f"ERR backend unavailable: {type(exc).__name__}"})
            except OSError:
                self.close_connection = True


def make_server(port: int, redis_port: int, token: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    front = Front(redis_port, token)
    handler = type("BoundHandler", (Handler,), {"front": front})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upstash-REST-compatible front for a local Valkey")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--token", help="bearer token clients must send")
    parser.add_argument("--token-file", help="JSON file whose 'token' key is the bearer token")
    args = parser.parse_args(argv)
    token = args.token
    if not token and args.token_file:
        token = json.loads(Path(args.token_file).read_text())["token"]
    if not token:
        parser.error("--token or --token-file is required")
    logging.basicConfig(level=logging.WARNING)
    server = make_server(args.port, args.redis_port, token)

    import signal

    def _stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
