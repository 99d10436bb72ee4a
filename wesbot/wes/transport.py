"""How wesbot speaks HTTP to a WES server: one call, within its limits, as parsed JSON or a WesError.

:class:`Transport` wraps one ``httpx.Client`` (thread-safe, shared by every caller). :meth:`Transport.request`
sends one :class:`Call` and returns its decoded JSON as a :class:`Reply`; every failure becomes a
:class:`~wesbot.wes.errors.WesError` whose ``str()`` is a sentence for a user. It absorbs the HTTP-level
quirks of real servers listed in ``WES-NOTES.md``: error bodies of every shape, errors sent with HTTP 200,
HTML from proxies. What the calls mean is :class:`~wesbot.wes.client.WesClient`'s business.

Security notes:

- Credentials (basic auth or a bearer token) are only sent to the configured origin: redirects are
  followed by hand, only on that origin (and from http to https on the same host). A redirect anywhere
  else is refused without being read, so an internal address's answer never reaches a user.
  :meth:`Transport.same_origin` is the test the client applies to URLs a server hands out.
- Every call has a total deadline (retries and redirects included) and every answer a size cap, so a
  server that drips bytes or sends gigabytes costs a caller seconds and megabytes, not minutes and
  gigabytes.
- No message and no log line contains a credential: messages are built from the host, status codes,
  paths and the server's own error text, and every configured secret is masked in them. Debug logs carry
  the method, path, status and time, never headers. httpx itself logs request URLs at INFO on the
  ``httpx`` logger, which is why ``WES_URL`` must not contain credentials (the transport refuses one that
  does, and so does the configuration).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .. import observe
from .errors import NotFound, WesAuthError, WesError, WesHTTPError, WesProtocolError, WesUnreachable
from .ids import shown_id
from .secrets import Masker, secret_forms

__all__ = [
    "MAX_BODY",
    "MAX_ERROR_BODY",
    "MAX_LARGE_BODY",
    "MAX_REDIRECTS",
    "RETRY_STATUSES",
    "Call",
    "Reply",
    "Transport",
    "clip",
    "format_seconds",
    "format_size",
]

logger = logging.getLogger("wesbot.wes")

# Longest server message shown, and longest plain-text body taken for a message.
MAX_SERVER_MESSAGE = 300
MAX_PLAIN_TEXT = 200
# Statuses a GET is retried on (besides connection errors and timeouts).
RETRY_STATUSES = frozenset({502, 503, 504})
# How much of one answer is read. Run lists, run logs and task pages can be large; the rest are small.
# An error answer is read up to MAX_ERROR_BODY (only its message is wanted) and the rest ignored.
MAX_LARGE_BODY = 16 * 1024 * 1024
MAX_BODY = 4 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
_LARGE_BODIES = frozenset({"list", "run", "tasks"})
# Redirects followed on one call, all on the WES server's own origin (http -> https upgrades too).
MAX_REDIRECTS = 5

_MESSAGE_KEYS = ("msg", "detail", "message", "error", "error_description", "title")
_ERROR_KEYS = frozenset({"msg", "message", "detail", "error"})


def format_seconds(seconds: float) -> str:
    """``10 s``, ``0.5 s``."""
    return f"{seconds:g} s"


def format_size(size: int) -> str:
    """``16 MiB``, ``64 KiB``, ``900 bytes``."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


def clip(text: str, limit: int = MAX_SERVER_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------------------------------
# Calls, bodies, answers
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One request, as messages and logs describe it."""

    method: str
    path: str  # relative to the base URL, ids percent-encoded as sent, e.g. "/runs/abc/status"
    kind: str  # service | list | status | run | tasks | task | cancel
    run_id: str | None = None
    task_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Reply:
    """The decoded JSON of a successful answer (None for an allowed empty one), and the URL it came from."""

    data: Any
    url: str


_NO_JSON = object()


@dataclass(frozen=True)
class _Body:
    """What a response carried, decoded once."""

    text: str
    data: Any = _NO_JSON  # the decoded JSON, or _NO_JSON
    html: bool = False
    too_deep: bool = False  # JSON nested too deeply to decode

    @property
    def empty(self) -> bool:
        return not self.text.strip()

    @property
    def is_json(self) -> bool:
        return self.data is not _NO_JSON

    def describe(self) -> str:
        """What was sent instead of JSON."""
        if self.empty:
            return "an empty answer"
        if self.too_deep:
            return "JSON nested too deeply to read"
        if self.html:
            return "an HTML page"
        return "text that is not JSON"


def _parse_body(content: bytes, content_type: str, encoding: str) -> _Body:
    if not content.strip():
        return _Body(text="")
    try:
        text = content.decode(encoding, errors="replace")
    except LookupError:
        text = content.decode("utf-8", errors="replace")
    try:
        return _Body(text=text, data=json.loads(content))
    except RecursionError:
        return _Body(text=text, too_deep=True)
    except (ValueError, MemoryError):  # ValueError includes UnicodeDecodeError
        pass
    return _Body(text=text, html="html" in content_type.lower() or text.lstrip().startswith("<"))


@dataclass(frozen=True)
class _Answer:
    """One answer, read within the size and time limits."""

    status_code: int
    reason_phrase: str
    url: httpx.URL
    body: _Body


@dataclass(frozen=True)
class _Budget:
    """The time one call may take, retries and redirects included (monotonic clock)."""

    started: float
    seconds: float

    @classmethod
    def start(cls, seconds: float) -> _Budget:
        return cls(time.monotonic(), seconds)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()


# --------------------------------------------------------------------------------------------------
# Error bodies
# --------------------------------------------------------------------------------------------------

def _message_from_json(value: object, depth: int = 0) -> str | None:
    """The text of an error body: ``msg``, then ``detail`` (problem+json), then ``message``, ``error``..."""
    if isinstance(value, str):
        return value.strip() or None
    if depth >= 3:
        return None
    if isinstance(value, dict):
        for key in _MESSAGE_KEYS:
            found = _message_from_json(value.get(key), depth + 1)
            if found:
                return found
        return None
    if isinstance(value, list) and depth > 0:
        # FastAPI's validation errors: "detail": [{"loc": ..., "msg": ...}, ...]
        parts = [part for part in (_message_from_json(item, depth + 1) for item in value[:3]) if part]
        return "; ".join(parts) or None
    return None


def _server_message(body: _Body) -> str | None:
    """The server's explanation, raw (not yet cleaned): from JSON, else a short single-line text body."""
    if body.empty or body.html:
        return None
    if body.is_json:
        found = _message_from_json(body.data)
        if found or isinstance(body.data, dict | list):
            return found
    text = body.text.strip()
    if len(text) <= MAX_PLAIN_TEXT and "\n" not in text and "\r" not in text:
        return text
    return None


def _embedded_error(data: object, expected: frozenset[str]) -> int | None:
    """Cromwell sends some errors with HTTP 200: ``{"status_code": 404, "msg": ...}`` and none of the
    fields the call should return. Return that status code, or None for a real answer."""
    if not isinstance(data, dict) or expected & data.keys() or not _ERROR_KEYS & data.keys():
        return None
    for key in ("status_code", "status"):
        value = data.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int) and 400 <= value <= 599:
            return value
    return None


def _single_line(text: str) -> str:
    """Control characters (ANSI codes, newlines) become spaces, runs of whitespace one space."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


# --------------------------------------------------------------------------------------------------
# The transport
# --------------------------------------------------------------------------------------------------

def _base_url(base_url: str) -> httpx.URL:
    """``$WES_URL`` as a URL without query or fragment; ValueError when it cannot be one."""
    try:
        url = httpx.URL(base_url.strip())
    except httpx.InvalidURL:
        raise ValueError("WES_URL is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("WES_URL must be an http:// or https:// URL with a host name")
    if url.userinfo:
        raise ValueError("WES_URL must not contain credentials: set WES_AUTH or WES_TOKEN instead")
    return url.copy_with(query=None, fragment=None)


class Transport:
    """Sends :class:`Call`\\ s to one WES server, within their limits, and maps every failure to a WesError.

    The parameters are :class:`~wesbot.wes.client.WesClient`'s, which documents them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: tuple[str, str] | None,
        token: str | None,
        timeout: float,
        connect_timeout: float,
        deadline: float | None,
        retries: int,
        backoff: float,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None],
    ) -> None:
        if auth is not None and token is not None:
            raise ValueError("set either basic auth or a bearer token for WES, not both")
        self._base = _base_url(base_url)
        self._root = str(self._base).rstrip("/")
        self._host = self._base.netloc.decode("ascii")
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._deadline = deadline if deadline is not None else timeout + connect_timeout
        self._retries = max(0, retries)
        self._backoff = backoff
        self._sleep = sleep
        self._credential_var = "WES_TOKEN" if token is not None else "WES_AUTH" if auth is not None else None
        self.mask = Masker(secret_forms(auth=auth, token=token))
        headers = {"Accept": "application/json", "User-Agent": "wesbot"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
            transport=transport,
        )

    @property
    def host(self) -> str:
        """The server's host (and port when not default), as shown in error messages."""
        return self._host

    @property
    def root(self) -> str:
        """The base URL, without a trailing slash."""
        return self._root

    def close(self) -> None:
        self._http.close()

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` is on the WES server's origin (and carries no credentials of its own)."""
        try:
            other = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        return _origin(other) == _origin(self._base) and not other.userinfo

    def protocol_error(self, call: Call, what: str) -> WesProtocolError:
        """The error for an answer that is not what the spec says: ``what`` is what was sent instead."""
        return WesProtocolError(self.mask(f"WES server at {self._host} sent {what} for {call.label}"))

    def request(self, call: Call, url: str, *, expected: frozenset[str], params: dict[str, str] | None = None,
                allow_empty: bool = False) -> Reply:
        """Send ``call`` to ``url`` (retrying idempotent GETs) and return the decoded JSON of its answer.

        ``expected`` are the fields a real answer may have (an answer with none of them and an error
        message is an error sent with 200). An empty answer is ``Reply(None, ...)`` if ``allow_empty``.
        """
        started = time.monotonic()
        outcome = "internal"  # a bug in wesbot, unless the call ends otherwise
        try:
            answer = self._send(call, url, params=params)
            reply = Reply(self._decode(call, answer, expected, allow_empty=allow_empty), str(answer.url))
            outcome = "ok"
            return reply
        except WesError as error:
            outcome = request_outcome(error)
            raise
        finally:
            observe.wes_request(self._host, call.kind, outcome, time.monotonic() - started)

    # ---- HTTP -----------------------------------------------------------------------------------

    def _send(self, call: Call, url: str, *, params: dict[str, str] | None = None) -> _Answer:
        """Send one request, retrying idempotent GETs; raise WesUnreachable when there is no answer."""
        attempts = 1 + self._retries if call.method == "GET" else 1
        target = httpx.URL(url)
        if params:
            # Merged by hand: httpx's params= would replace a query the URL already has (task_logs_url).
            target = target.copy_merge_params(params)
        budget = _Budget.start(self._deadline)
        for attempt in range(attempts):
            again = attempt + 1 < attempts
            try:
                answer = self._follow(call, target, budget)
            except httpx.HTTPError as exc:
                retryable = isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)
                if retryable and again and self._pause(call, attempt, type(exc).__name__, budget):
                    continue
                raise self._transport_error(exc, call, budget) from exc
            if answer.status_code in RETRY_STATUSES and again \
                    and self._pause(call, attempt, str(answer.status_code), budget):
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises

    def _follow(self, call: Call, target: httpx.URL, budget: _Budget) -> _Answer:
        """One attempt: the request and the redirects it leads to on the same origin, each answer read."""
        request = self._http.build_request(call.method, target, timeout=self._attempt_timeout(budget))
        for _ in range(MAX_REDIRECTS + 1):
            started = time.monotonic()
            response = self._http.send(request, stream=True)
            try:
                logger.debug("%s -> %d in %.0f ms", self.mask(call.label), response.status_code,
                             (time.monotonic() - started) * 1000)
                if response.next_request is None:
                    return self._read(call, response, budget)
                request = response.next_request
            finally:
                response.close()
            self._check_redirect(call, request.url)
            request.extensions["timeout"] = self._attempt_timeout(budget).as_dict()
        raise WesProtocolError(f"WES server at {self._host} redirected too many times")

    def _attempt_timeout(self, budget: _Budget) -> httpx.Timeout:
        left = max(budget.left(), 0.001)
        return httpx.Timeout(min(self._timeout, left), connect=min(self._connect_timeout, left))

    def _check_redirect(self, call: Call, url: httpx.URL) -> None:
        """Redirects are followed only on the WES server's origin: anywhere else is refused, unread."""
        if self.same_origin(str(url)) or self._upgraded(url):
            return
        raise WesProtocolError(self.mask(
            f"WES server at {self._host} redirected {call.label} to another host ({url.netloc.decode('ascii')}); "
            f"wesbot follows redirects only on {self._host}: if the server moved, set WES_URL to its new address"))

    def _upgraded(self, url: httpx.URL) -> bool:
        """The same host over https instead of http, on the default port."""
        base = self._base
        return (base.scheme, url.scheme) == ("http", "https") and url.host == base.host \
            and url.port is None and not url.userinfo

    def _read(self, call: Call, response: httpx.Response, budget: _Budget) -> _Answer:
        """The answer's body, at most the call's limit (an error answer's is cut), within the deadline."""
        ok = 200 <= response.status_code < 300
        limit = (MAX_LARGE_BODY if call.kind in _LARGE_BODIES else MAX_BODY) if ok else MAX_ERROR_BODY
        declared = response.headers.get("content-length", "").strip()
        if ok and declared.isdigit() and int(declared) > limit:
            raise self._too_large(call, limit)
        content = bytearray()
        for chunk in response.iter_bytes():
            if budget.left() < 0:
                raise self._too_slow(call, budget)
            content += chunk
            if len(content) > limit:
                if ok:
                    raise self._too_large(call, limit)
                del content[limit:]
                break
        body = _parse_body(bytes(content), response.headers.get("content-type", ""), response.encoding or "utf-8")
        return _Answer(response.status_code, response.reason_phrase, response.url, body)

    def _pause(self, call: Call, attempt: int, why: str, budget: _Budget) -> bool:
        """Wait before the next attempt; False when no time would be left for it."""
        delay = self._backoff * 2**attempt
        if budget.left() - delay < min(self._timeout, 1.0):
            return False
        logger.info("WES %s: %s; retrying in %s (retry %d of %d)", self.mask(call.label), why,
                    format_seconds(delay), attempt + 1, self._retries)
        self._sleep(delay)
        return True

    def _decode(self, call: Call, answer: _Answer, expected: frozenset[str], *,
                allow_empty: bool = False) -> Any:
        """The decoded JSON of a successful answer; any other answer raises the matching WesError."""
        body = answer.body
        if not 200 <= answer.status_code < 300:
            raise self._http_error(call, answer.status_code, answer.reason_phrase, body)
        if body.empty and allow_empty:
            return None
        if not body.is_json:
            raise self.protocol_error(call, f"{body.describe()} instead of JSON")
        status = _embedded_error(body.data, expected)
        if status is not None:
            raise self._http_error(call, status, "", body)
        return body.data

    # ---- errors ---------------------------------------------------------------------------------

    def _show(self, value: str) -> str:
        """An id (or encoded id) as shown in messages: secrets masked, then shortened."""
        return shown_id(self.mask(value))

    def _too_large(self, call: Call, limit: int) -> WesProtocolError:
        return self.protocol_error(call, f"more than {format_size(limit)} (the most wesbot reads of one answer)")

    def _too_slow(self, call: Call, budget: _Budget) -> WesUnreachable:
        return WesUnreachable(
            f"WES server at {self._host} was still sending its answer to {self.mask(call.label)} after "
            f"{budget.elapsed():.1f} s; wesbot waits at most {format_seconds(self._deadline)} for one answer")

    def _transport_error(self, exc: httpx.HTTPError, call: Call, budget: _Budget) -> WesError:
        host = self._host
        if isinstance(exc, httpx.TimeoutException):
            limit = self._connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self._timeout
            message = f"WES server at {host} did not answer within {format_seconds(limit)}"
            elapsed = budget.elapsed()
            if elapsed > limit * 1.1:  # several attempts: say how long it really took
                message += f" (gave up on {self.mask(call.label)} after {elapsed:.1f} s)"
            return WesUnreachable(message)
        if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
            return WesUnreachable(f"could not connect to the WES server at {host} ({_reason(exc)})")
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return WesUnreachable(f"lost the connection to the WES server at {host} ({_reason(exc)})")
        if isinstance(exc, httpx.DecodingError):
            return WesProtocolError(f"WES server at {host} sent a body that could not be decoded")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return WesProtocolError(f"WES server at {host} redirected to a URL that is not http or https")
        return WesUnreachable(f"the request to the WES server at {host} failed ({type(exc).__name__})")

    def _http_error(self, call: Call, status: int, reason: str, body: _Body) -> WesHTTPError:
        """The error for an error status (or an error sent with 200, then ``status`` is the body's)."""
        raw = _server_message(body)
        server = clip(self.mask(_single_line(raw))) if raw else None
        reason = reason or httpx.codes.get_reason_phrase(status)
        # The server's own words, when they say more than the reason phrase.
        said = server if server and server.lower() != reason.lower() else None
        host = self._host
        run = self._show(call.run_id) if call.run_id is not None else None
        kwargs: dict[str, Any] = {"status_code": status, "server_message": server}

        if status == 401:
            if self._credential_var is None:
                message = ("WES rejected the request (401): no credentials are configured: "
                           "set WES_AUTH or WES_TOKEN")
            else:
                message = f"WES rejected the credentials (401): check {self._credential_var}"
                if self._credential_var == "WES_TOKEN":
                    message += " (tokens expire)"
            if said:
                message += f". The server said: {said}"
            return WesAuthError(self.mask(message), **kwargs)
        if status == 403:
            if call.kind == "cancel":
                message = f"WES refused to cancel run {run} (403)"
            else:
                message = "WES refused access (403)"
            if said:
                message += f": {said}"
            return WesAuthError(self.mask(message), **kwargs)
        if status == 404 and call.kind == "task":
            return NotFound(f"task {self._show(call.task_id or '')} of run {run} not found",
                            what="task", run_id=call.run_id, task_id=call.task_id, **kwargs)
        if status == 404 and run is not None:
            return NotFound(self.mask(f"run {run} not found on the WES server at {host}"),
                            what="run", run_id=call.run_id, **kwargs)
        if status == 400 and call.kind in ("status", "run") and run is not None:
            # sapporo answers 400 for run ids that are not UUIDs.
            message = f"run {run} not found on the WES server at {host} (400"
            message += f": {said})" if said else ")"
            return NotFound(self.mask(message), what="run", run_id=call.run_id, **kwargs)
        if status == 404:
            return WesHTTPError(self.mask(
                f"WES server at {host} answered 404 for {call.label}: check that WES_URL is the base URL "
                "of the WES API (for example https://host/ga4gh/wes/v1)"), **kwargs)
        if body.html and not server:
            return WesHTTPError(
                f"WES server at {host} answered {status} with an HTML page (a proxy in front of it?)",
                **kwargs)
        shown = server or reason
        message = f"WES server at {host} answered {status}" + (f": {shown}" if shown else "")
        return WesHTTPError(self.mask(message), **kwargs)


def request_outcome(error: WesError) -> str:
    """How a failed call ended, for the metrics: http_4xx, http_5xx, unreachable, protocol (or error)."""
    if isinstance(error, WesHTTPError):
        return f"http_{error.status_code // 100}xx"
    if isinstance(error, WesUnreachable):
        return "unreachable"
    if isinstance(error, WesProtocolError):
        return "protocol"
    return "error"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


_REASONS = (
    ("refused", "connection refused"),
    ("name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("name resolution", "host name not found"),
    ("no address associated", "host name not found"),
    ("getaddrinfo", "host name not found"),
    ("certificate", "TLS certificate not trusted"),
    ("ssl", "TLS handshake failed"),
    ("tls", "TLS handshake failed"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("reset", "connection reset"),
    ("broken pipe", "connection reset"),
    ("disconnected", "the server closed the connection"),
    ("timed out", "timed out"),
)


def _reason(exc: httpx.HTTPError) -> str:
    """A short, fixed reason for a connection failure (never the raw exception text)."""
    text = str(exc).lower()
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    if isinstance(exc, httpx.ProxyError):
        return "proxy error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol"
    return "connection failed"
