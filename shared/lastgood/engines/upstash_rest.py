"""A binary-safe Upstash REST client: single commands and pipelines.

The upstash-redis SDK decodes every reply as UTF-8, so binary values cannot
round-trip through it. This client asks for `Upstash-Encoding: base64` and
keeps the decoded bytes; commands are sent as JSON arrays. HTTP 429 and 5xx
raise typed errors so callers (the resilient KV, the backup) can react.
A request cannot carry binary arguments (JSON strings are text): sending one
raises `ValueError`.
"""

from __future__ import annotations

import binascii
import functools
import ssl
from collections.abc import Sequence
from typing import Any

import httpx

from lastgood.core.errors import SourceUnavailable
from lastgood.core.redact import redact_text
from lastgood.core.settings import get_settings
from lastgood.engines.base import require_tls

Arg = str | bytes | int | float
Reply = bytes | int | None | list["Reply"] | str


class UpstashError(SourceUnavailable):
    """The REST API failed (transport error, non-JSON body, HTTP 5xx)."""


class UpstashRateLimited(UpstashError):
    """HTTP 429: the plan's request or bandwidth limit was hit."""


class UpstashCommandError(UpstashError):
    """The server answered `{"error": ...}` for a command."""


def _encode_arg(arg: Arg) -> str:
    if isinstance(arg, bytes):
        try:
            return arg.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("binary arguments cannot be sent through the Upstash REST API") from None
    return str(arg)


def _decode(value: Any) -> Reply:
    if isinstance(value, str):
        if value == "OK":
            return b"OK"
        return binascii.a2b_base64(value)  # what base64.b64decode does, without its Python wrapper
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if value is None or isinstance(value, int):
        return value
    return str(value)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~35 ms per client."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class UpstashRest:
    """Minimal binary-safe Upstash REST client (single commands and pipelines)."""

    def __init__(
        self, url: str, token: str, *, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None
    ):
        require_tls(
            url,
            secure=url.startswith("https://"),
            allow_insecure=get_settings().allow_insecure_transport,
            what="Upstash",
        )
        self.url = url.rstrip("/")
        self._token = token
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            headers={"Authorization": f"Bearer {token}", "Upstash-Encoding": "base64"},
            transport=transport,
            verify=_tls_context(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UpstashRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: Any) -> Any:
        try:
            response = self._http.post(self.url + path, json=body)
        except httpx.HTTPError as exc:
            raise UpstashError(
                f"Upstash REST {type(exc).__name__}: {redact_text(str(exc), (self._token,))}"
            ) from None
        if response.status_code == 429:
            raise UpstashRateLimited("Upstash REST answered 429 (rate limit)")
        if response.status_code >= 500:
            raise UpstashError(f"Upstash REST answered HTTP {response.status_code}")
        if response.status_code == 401:
            raise UpstashError("Upstash REST answered 401 (bad token)")
        try:
            return response.json()
        except ValueError:
            raise UpstashError(
                f"Upstash REST returned a non-JSON body (HTTP {response.status_code})"
            ) from None

    def command(self, *args: Arg) -> Reply:
        payload = self._post("", [_encode_arg(a) for a in args])
        if not isinstance(payload, dict):
            raise UpstashError("Upstash REST returned an unexpected reply shape")
        if "error" in payload:
            raise UpstashCommandError(f"{_encode_arg(args[0])}: {payload['error']}")
        return _decode(payload.get("result"))

    def pipeline(self, commands: Sequence[Sequence[Arg]], *, raise_on_error: bool = True) -> list[Reply]:
        if not commands:
            return []
        payload = self._post("/pipeline", [[_encode_arg(a) for a in cmd] for cmd in commands])
        if not isinstance(payload, list) or len(payload) != len(commands):
            raise UpstashError("Upstash REST pipeline returned an unexpected reply shape")
        out: list[Reply] = []
        for cmd, item in zip(commands, payload, strict=True):
            if "error" in item:
                if raise_on_error:
                    raise UpstashCommandError(f"{_encode_arg(cmd[0])}: {item['error']}")
                out.append(UpstashCommandError(str(item["error"])))  # type: ignore[arg-type]
            else:
                out.append(_decode(item.get("result")))
        return out
