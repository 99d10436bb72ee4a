"""The gate's rules as tables: which signatures verify, which bodies are Slack's, where a response_url may point,
and that response URLs never reach a log line."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from wesbot.cli import RedactSecrets
from wesbot.slack.gate import payload_problem, response_origins, response_url_allowed, signature_problem

SECRET = "s3cret-signing"
NOW = 1_700_000_000.0
BODY = b"command=%2Fwes&text=status+r1"


def sign(body: bytes, stamp: str, secret: str = SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()


GOOD = sign(BODY, "1700000000")


@pytest.mark.parametrize("timestamp, signature, problem", [
    ("1700000000", GOOD, None),
    ("1700000290", sign(BODY, "1700000290"), None),
    ("1699999000", sign(BODY, "1699999000"), "stale"),
    ("abc", GOOD, "malformed X-Slack-Request-Timestamp"),
    ("1e9", GOOD, "malformed X-Slack-Request-Timestamp"),
    ("", GOOD, "malformed X-Slack-Request-Timestamp"),
    ("1.5", GOOD, "malformed X-Slack-Request-Timestamp"),
    (None, GOOD, "malformed X-Slack-Request-Timestamp"),
    ("1700000000", None, "malformed X-Slack-Signature"),
    ("1700000000", "v0=xyz", "malformed X-Slack-Signature"),
    ("1700000000", sign(BODY, "1700000000", "other"), "wrong signature"),
    ("1700000000", sign(BODY + b"x", "1700000000"), "wrong signature"),
])
def test_signature_problem(timestamp: str | None, signature: str | None, problem: str | None) -> None:
    found = signature_problem(BODY, timestamp, signature, SECRET, NOW)
    assert found == problem if problem is None else problem in (found or "")


@pytest.mark.parametrize("body, content_type, ok", [
    (BODY, "application/x-www-form-urlencoded", True),
    (b"payload=%7B%22type%22%3A%22block_actions%22%7D", "application/x-www-form-urlencoded", True),
    (b'{"type": "event_callback"}', "application/json", True),
    (b"payload=%5B%5D", "application/x-www-form-urlencoded", False),
    (b"payload=nope", "application/x-www-form-urlencoded", False),
    (b"\xff\xfe", "application/x-www-form-urlencoded", False),
    (b"[]", "application/json", False),
    (b"[" * 100_000, "application/json", False),
])
def test_payload_problem(body: bytes, content_type: str, ok: bool) -> None:
    assert (payload_problem(body, content_type) is None) == ok


ORIGINS = response_origins("http://127.0.0.1:8123/api/")


@pytest.mark.parametrize("url, ok", [
    ("https://hooks.slack.com/commands/T1/2/abc", True),
    ("https://hooks.slack.com:443/actions/T1/2/abc", True),
    ("http://hooks.slack.com/commands/T1/2/abc", False),  # not over TLS
    ("https://hooks.slack.com.evil.example/commands", False),
    ("https://evil.example/hooks.slack.com/commands", False),
    ("https://user@evil.example/", False),
    ("http://127.0.0.1:8123/respond/x", True),  # the host of SLACK_API_URL (the tests' fake)
    ("http://localhost:8123/respond/x", False),
    ("http://[::1", False),
    ("", False),
    (None, False),
    (["https://hooks.slack.com/x"], False),
])
def test_response_url_allowed(url: object, ok: bool) -> None:
    assert response_url_allowed(url, ORIGINS) == ok


@pytest.mark.parametrize("line", [
    # Bolt's "Invalid request signature" line logs the raw form body
    "Invalid request signature detected (signature: , timestamp: abc, body: token=x&response_url="
    "https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F2%2FSECRETHOOK&text=status)",
    # slack_sdk's webhook client at DEBUG
    "Sending a request - url: https://hooks.slack.com/actions/T1/2/SECRETHOOK, body: {}",
    # a dict's repr
    "payload {'response_url': 'http://127.0.0.1:9/respond/SECRETHOOK', 'text': 'x'}",
    '{"response_url": "https://hooks.slack.com/commands/SECRETHOOK"}',
])
def test_response_urls_never_reach_a_log_line(line: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (line,), None)
    RedactSecrets([]).filter(record)
    assert "SECRETHOOK" not in record.getMessage()
    assert "[redacted]" in record.getMessage()
