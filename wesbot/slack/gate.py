"""What reaches Bolt from the network, and where wesbot may answer: checked here before anything else runs.

In HTTP mode every POST to ``/slack/events`` passes :func:`guard` first:
- a body larger than :data:`MAX_BODY_BYTES` is refused with 413 without being read whole;
- a request whose signature does not verify (missing, malformed or stale timestamp, wrong signature) gets 401
  and nothing else: no listener runs, no error handler runs, nothing is sent to its ``response_url``;
- a signed body that is not what Slack sends (not UTF-8, a ``payload`` that is not a JSON object) gets 400.
Each refusal is one log line without the body (which holds a ``response_url``, a credential).

Whatever the mode, a ``response_url`` is used only on Slack's hooks host (:func:`response_url_allowed`), or on the
host of ``SLACK_API_URL`` (the tests' fake Slack), so that a payload can never make wesbot post
somewhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger("wesbot.gate")

# Slack's largest payloads (block_actions carrying a 50-block message, view submissions) stay well below this,
# even form-encoded.
MAX_BODY_BYTES = 3 * 1024 * 1024
# Slack's own rule: a request older (or newer) than five minutes is a replay.
MAX_SKEW_SECONDS = 300
SLACK_HOOKS_ORIGIN = "https://hooks.slack.com"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def signature_problem(body: bytes, timestamp: str | None, signature: str | None, secret: str,
                      now: float) -> str | None:
    """Why Slack did not sign this request (``None`` when it did). Never raises, whatever the headers hold."""
    if not timestamp or not _TIMESTAMP.fullmatch(timestamp):
        return "missing or malformed X-Slack-Request-Timestamp"
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return "stale X-Slack-Request-Timestamp"
    if not signature or not _SIGNATURE.fullmatch(signature):
        return "missing or malformed X-Slack-Signature"
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "wrong signature"
    return None


def payload_problem(body: bytes, content_type: str) -> str | None:
    """Why a signed body is not one Slack sends (``None`` when it is)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    try:
        if content_type.startswith("application/json"):
            return None if isinstance(json.loads(text), dict) else "JSON body is not an object"
        payload = parse_qs(text, keep_blank_values=True).get("payload")
        if payload is not None and not isinstance(json.loads(payload[0]), dict):
            return "payload is not a JSON object"
    except (ValueError, RecursionError):
        return "body is not valid JSON"
    return None


def response_origins(slack_api_url: str) -> frozenset[str]:
    """Where a ``response_url`` may point: Slack's hooks host, and the origin of ``SLACK_API_URL``."""
    return frozenset({SLACK_HOOKS_ORIGIN, _origin(slack_api_url)})


def response_url_allowed(url: object, origins: frozenset[str]) -> bool:
    return isinstance(url, str) and _origin(url) in origins


def _origin(url: str) -> str:
    """``scheme://host``: the port is not part of the rule (the host is Slack's, or the one SLACK_API_URL names)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.hostname}" if parts.hostname else ""


def _refuse(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = json.dumps({"error": text}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def guard(bolt: Wsgi, signing_secret: str, *, clock: Callable[[], float] = time.time) -> Wsgi:
    """Wrap Bolt's WSGI handler so that only signed, well-formed, reasonably sized requests reach it."""
    if not signing_secret:
        raise ValueError("HTTP mode needs a signing secret")  # config refuses this first; never serve unsigned

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "?")
        if environ.get("REQUEST_METHOD") != "POST":
            return _refuse(start_response, "405 Method Not Allowed", "POST only")
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = -1
        body = environ["wsgi.input"].read(MAX_BODY_BYTES + 1) if 0 <= declared <= MAX_BODY_BYTES else b""
        if declared < 0 or declared > MAX_BODY_BYTES or len(body) > MAX_BODY_BYTES:
            logger.warning("refused a request from %s: body over %d bytes", peer, MAX_BODY_BYTES)
            return _refuse(start_response, "413 Request Entity Too Large", "request body too large")
        problem = signature_problem(body, environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"),
                                    environ.get("HTTP_X_SLACK_SIGNATURE"), signing_secret, clock())
        if problem:
            logger.info("refused a request from %s: %s", peer, problem)
            return _refuse(start_response, "401 Unauthorized", "invalid request")
        problem = payload_problem(body, environ.get("CONTENT_TYPE") or "")
        if problem:
            logger.warning("refused a signed request from %s: %s", peer, problem)
            return _refuse(start_response, "400 Bad Request", "malformed request")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return bolt(environ, start_response)

    return wsgi
