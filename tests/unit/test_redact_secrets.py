"""Secrets never reach logs, errors or the health output: connection strings are redacted
wherever they appear, and known secret values are replaced outright."""

from __future__ import annotations

import pytest
from lastgood.core.redact import redact_text, redact_url


@pytest.mark.parametrize(
    "url,expected",
    [
        (
            "mongodb+srv://app:s3cr%40t@cluster0.example.net/db?retryWrites=true",
            "mongodb+srv://app:***@cluster0.example.net/db?retryWrites=true",
        ),
        (
            "postgresql://app:pw@db.example.com:5432/app?sslmode=require&password=pw2",
            "postgresql://app:***@db.example.com:5432/app?sslmode=require&password=***",
        ),
        ("rediss://default:tok@kv.example.com:6379", "rediss://default:***@kv.example.com:6379"),
        ("https://kv.example.com/?_token=abc&token=abc", "https://kv.example.com/?_token=***&token=***"),
        ("postgresql://app@db.example.com/app", "postgresql://app@db.example.com/app"),
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
    ],
)
def test_urls_keep_user_and_host_but_never_the_password(url, expected):
    assert redact_url(url) == expected


def test_every_url_in_free_text_is_redacted():
    text = (
        "could not connect to postgresql://a:pw1@h1/db, then mongodb://b:pw2@h2:27017/x "
        "and secret=pw3 key=pw4"
    )
    out = redact_text(text)
    for secret in ("pw1", "pw2", "pw3", "pw4"):
        assert secret not in out
    assert "postgresql://a:***@h1/db" in out and "mongodb://b:***@h2:27017/x" in out


def test_known_secret_values_are_replaced_wherever_they_appear():
    token = "AYQgASQgNzk5ZjYwZGQtMDU"
    out = redact_text(f"Upstash said: bad token {token} (Bearer {token})", (token,))
    assert token not in out and out.count("***") == 2


def test_short_or_empty_known_values_do_not_mangle_the_text():
    # a 1-3 character "secret" would blank out ordinary words; empty ones would loop forever
    assert redact_text("connection refused", ("", "on")) == "connection refused"


def test_a_url_given_as_a_secret_loses_its_password_in_a_driver_message():
    url = "postgresql://svc:topsecret@10.0.0.5:5432/app"
    out = redact_text(f'connection to "{url}" failed: password authentication failed', (url,))
    assert "topsecret" not in out
    assert "10.0.0.5" in out  # the host stays: it is what a person needs to act
