"""Reading the end of a run's or a task's stdout/stderr, safely, for failure triage in Slack.

:class:`LogFetcher` turns the ``stdout`` / ``stderr`` field of a :class:`~wesbot.wes.models.Log` into a
:class:`LogTail`: the last lines of the log as plain text, ready for ``blocks.code_block``. The field
may hold the log itself (some servers put the text inline), an http(s) URL, a relative URL, or a path
on the WES server (``file://...``, ``/data/...``, ``s3://...``), which is shown but never read.

Security rules:

- Only ``http`` and ``https`` URLs are fetched, and only from the WES server's own origin (scheme,
  host and port of ``WES_URL``) or from a host listed in ``WESBOT_LOG_HOSTS``. Anything else is refused
  before any request is made.
- The WES credentials (basic auth or bearer token) are sent to the WES origin only, never to a listed
  log host. Redirects are not followed automatically: at most :data:`MAX_REDIRECTS` are followed by hand,
  each target checked like the first URL, credentials again only for the WES origin. Credentials written
  in a URL (``https://user:pass@host/...``) are dropped, never sent and never shown. No cookies are kept.
- Only the end of a log is read: ``Range: bytes=-max_bytes``. A server that ignores ranges is streamed
  through a rolling buffer that keeps the last ``max_bytes``, and reading stops after ``stream_limit``.
  A server that answers the ranged request with an error (:data:`RANGE_REFUSED`: 500 or 416) while it
  serves the same URL to a plain GET is asked once more without ``Range``, and read the same capped way.
- Messages and log lines never contain a credential: they are built from the description of the log,
  the host name and the status code, and every configured secret is masked in them. URLs shown to
  users have their userinfo removed and the values of signature- or token-like query parameters masked.
- The text is cleaned by :func:`sanitize_log_text` (ANSI and other terminal escape sequences, control
  characters, bidi overrides removed); escaping for Slack (backticks, mentions) is the renderer's job.
"""

from __future__ import annotations

import codecs
import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode

import httpx

from .client import format_seconds
from .errors import WesError
from .models import looks_like_log_content, resolve_url
from .secrets import Masker, basic_credentials, secret_forms

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_STREAM_LIMIT",
    "MAX_REDIRECTS",
    "RANGE_REFUSED",
    "LogFetcher",
    "LogSource",
    "LogTail",
    "LogUnavailable",
    "parse_allowed_hosts",
    "reason_lines",
    "sanitize_log_text",
    "sanitize_text",
    "shown_url",
]

logger = logging.getLogger("wesbot.wes.logs")

DEFAULT_MAX_BYTES = 64 * 1024
# A server that ignores Range is read up to this many bytes (keeping only the last max_bytes).
DEFAULT_STREAM_LIMIT = 16 * 1024 * 1024
MAX_REDIRECTS = 3
# Answers to a ranged request after which the URL is asked once more without Range: real log servers
# answer a suffix range with 500 (a bug) or 416 (an empty file, or no suffix ranges) and serve a plain GET.
RANGE_REFUSED = frozenset({416, 500})

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)\s*-\s*(\d+)\s*/\s*(\d+|\*)\s*$", re.IGNORECASE)
# Query parameters whose values are masked in URLs shown to users (presigned URLs, tokens in links).
_SECRET_PARAM = re.compile(r"sig|token|secret|key|pass|auth|cred|session|^code$|^x-amz-|^x-goog-", re.IGNORECASE)

# Terminal escape sequences: OSC (window titles, hyperlinks) up to BEL or ST; DCS/SOS/PM/APC strings;
# CSI (colours, cursor moves), also in its 8-bit form; and the other two- or three-byte escapes.
_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b[ -/]*[0-~]"
)
# Bidirectional embeddings, overrides and isolates ("Trojan Source") and the direction marks.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

LogSource = Literal["inline", "url", "path"]


class LogUnavailable(WesError):
    """A log could not be shown: not there yet, refused by policy, or its URL failed.

    ``status_code`` is the HTTP status of the log URL's answer, when there was one.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class LogTail:
    """The end of a log, ready to render.

    - ``text``: the last lines, cleaned by :func:`sanitize_log_text` (empty for a path, or an empty log:
      ``""`` is a log with nothing in it, never "not available");
    - ``truncated``: True when earlier content was dropped (by the byte range, the line cap or the
      character cap);
    - ``source``: ``"inline"`` (the field held the text), ``"url"`` (fetched) or ``"path"`` (not read);
    - ``location``: the URL or path to show (userinfo removed, secrets masked), None for inline text;
    - ``note``: a sentence for the reader (a path that is not read, a log too large to read whole);
    - ``reasons``: the lines near the end that say what went wrong (:func:`reason_lines`), found in the
      whole end that was read, not only in the lines kept in ``text``.
    """

    text: str
    truncated: bool
    source: LogSource
    location: str | None = None
    note: str | None = None
    reasons: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------------

def _drop_carriage_returns(line: str) -> str:
    """A line with carriage returns (progress bars) as a terminal shows it: what the last one wrote."""
    if "\r" not in line:
        return line
    parts = [part for part in line.split("\r") if part]
    return parts[-1] if parts else ""


def _keep_char(ch: str) -> bool:
    if ch in "\n\t":
        return True
    if ch in _BIDI:
        return False
    # Cc: C0 and C1 controls (NUL, BEL, ESC, DEL...). Cs: lone surrogates from JSON, which cannot be
    # encoded when the message is sent on.
    return unicodedata.category(ch) not in ("Cc", "Cs")


def sanitize_text(text: str, *, multiline: bool = True) -> str:
    """Untrusted text from WES made safe to show: the one rule for every WES-provided string.

    Terminal escape sequences (ANSI colours, OSC titles and hyperlinks...) are removed, and every
    C0/C1 control character, lone surrogate and bidi override/isolate/mark. Multi-line text keeps
    ``\\n`` and ``\\t`` (``\\r\\n``, U+2028 and U+2029 become ``\\n``; a line rewritten with ``\\r``
    keeps its last version); single-line text gets a space for each of them instead.
    """
    text = _ESCAPES.sub("", text)
    text = text.replace("\r\n", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    if multiline:
        text = "\n".join(_drop_carriage_returns(line) for line in text.split("\n"))
    else:
        text = re.sub(r"[\n\t\r\v\f\x85]", " ", text)
    return "".join(ch for ch in text if _keep_char(ch))


def sanitize_log_text(text: str, *, lines: int, max_chars: int) -> tuple[str, bool]:
    """The readable end of a log: ``(text, truncated)``.

    Terminal escape sequences are removed (colours, cursor moves, titles, hyperlinks), ``\\r\\n``
    becomes ``\\n`` and a line rewritten with ``\\r`` keeps its last version, every other control
    character but ``\\n`` and ``\\t`` is dropped (and the bidi overrides): :func:`sanitize_text`.
    Then the last ``lines`` lines are kept (trailing empty lines do not count), and at most
    ``max_chars`` characters (code points; a cut in the middle of a line is marked with ``…``, which
    counts). ``truncated``
    tells whether anything but escapes, control characters and trailing blank lines was dropped.
    """
    text = sanitize_text(text).rstrip("\n")
    if not text:
        return "", False
    if lines <= 0 or max_chars <= 0:
        return "", True
    parts = text.split("\n")
    truncated = len(parts) > lines
    out = "\n".join(parts[-lines:])
    if len(out) > max_chars:
        truncated = True
        kept = out[len(out) - max_chars:]
        if out[len(out) - max_chars - 1] != "\n":
            kept = "…" + kept[1:]
        out = kept
    return out, truncated


# -- why it failed: the lines of a log that say what went wrong ---------------------------------------

REASON_LINES = 3  # at most this many
REASON_SCAN_LINES = 100  # looked for in this many lines at the end of the log
REASON_WIDTH = 200  # each cut to this many characters

# What an engine, a shell or a runtime writes when something goes wrong. "error"/"exception" may end a word
# (ValueError, NullPointerException); the others are whole words.
_REASON = re.compile(
    r"(?:error|exception)s?\b"
    r"|\b(?:fatal|panic|abort(?:ed|ing)?|killed|segmentation fault|segfault|core dumped|bus error"
    r"|out of memory|oom(?:-?kill(?:ed)?)?|memory ?error|cannot allocate memory"
    r"|permission denied|access denied|no such file|not found|cannot|can't|could not|couldn't|unable to"
    r"|fail(?:s|ed|ure|ing)?|exit(?:ed)? (?:with )?(?:status|code|return code)|exit (?:status|code)|return code"
    r"|non-zero|sig(?:kill|segv|term|abrt)|signal \d+|timed out)\b",
    re.IGNORECASE,
)
# The same, but too vague to say anything on its own: shown only when there is room.
_VAGUE = re.compile(r"permanentfail|temporaryfail|\btraceback\b", re.IGNORECASE)
# Lines that match but say nothing: "0 errors", "no errors found"; a progress count ("1 of 1, failed: 1").
_NOT_A_REASON = re.compile(r"\b(?:0|no|zero) (?:errors?|failures?|exceptions?)\b|\b(?:failed|errors?|failures?): \d+\b",
                           re.IGNORECASE)
# Bracketed job and step names ("[job fail.cwl]", "[step fail]"): never what makes a line a reason.
_BRACKETED = re.compile(r"\[[^\]]*\]")
# Stack frames: Java's "\tat x.y(Z.java:1)" and "... 3 more", Python's 'File "x.py", line 3' and its code.
_FRAME = re.compile(r"^\s+(?:at |\.\.\. \d+ more)")
_PY_FRAME = re.compile(r'^\s+File ".*", line \d+')
# A heading that only announces what follows: "Command error:", "Command exit status:".
_LABEL = re.compile(r"^[A-Za-z][A-Za-z ]{0,30}:$")
# Left out when lines are compared: bracketed job names, log levels, numbers.
_NOISE = re.compile(r"\b(?:info|warning|warn|error|debug|fatal|critical)\b[:~]?|\d+", re.IGNORECASE)


def reason_lines(text: str) -> list[str]:
    """The lines near the end of a log that say what went wrong: at most :data:`REASON_LINES`, in the order
    they appear, each stripped and cut to :data:`REASON_WIDTH` characters; none when nothing does.

    Searched case-insensitively in the last :data:`REASON_SCAN_LINES` lines for the words of a failure
    (error, exception, failed, exit status/code, killed, out of memory, permission denied, no such file,
    segmentation fault ...). Stack frames are skipped, and so are headings that only announce what follows
    ("Command error:"). The first lines that match are the cause (what follows them is usually the engine
    giving up); the vague ones (cwltool's "permanentFail", "Traceback") fill what room is left, the last of
    them first. Lines that differ only in their bracketed job names, log levels or numbers are one line.
    ``text`` is sanitized here too (:func:`sanitize_text`), so no terminal escape reaches a reason.
    """
    lines = sanitize_text(text).rstrip("\n").split("\n")[-REASON_SCAN_LINES:]
    strong: list[tuple[int, str]] = []
    vague: list[tuple[int, str]] = []
    seen: set[str] = set()
    in_frame = False
    for index, raw in enumerate(lines):
        frame, in_frame = _is_frame(raw, in_frame)
        line = " ".join(raw.split())
        if frame or not line or _LABEL.match(line) or _NOT_A_REASON.search(line):
            continue
        words = _BRACKETED.sub(" ", line)
        kind = strong if _REASON.search(words) else vague if _VAGUE.search(words) else None
        key = " ".join(_NOISE.sub(" ", words).lower().split())
        if kind is None or key in seen:
            continue
        seen.add(key)
        kind.append((index, line if len(line) <= REASON_WIDTH else line[: REASON_WIDTH - 1] + "…"))
    chosen = strong[:REASON_LINES]
    chosen += vague[::-1][: REASON_LINES - len(chosen)]
    return [line for _, line in sorted(chosen)]


def _is_frame(line: str, in_python_frame: bool) -> tuple[bool, bool]:
    """Whether ``line`` is a stack frame, and whether the next indented line is a Python frame's code."""
    if _PY_FRAME.match(line):
        return True, True
    if in_python_frame and line[:1].isspace():
        return True, False
    return bool(_FRAME.match(line)), False


def _kept_end(text: str, *, lines: int, max_chars: int) -> tuple[str, bool, tuple[str, ...]]:
    """:func:`sanitize_log_text` of ``text``, and its :func:`reason_lines`."""
    kept, cut = sanitize_log_text(text, lines=lines, max_chars=max_chars)
    return kept, cut, tuple(reason_lines(text))


def _host_key(host: str, port: int | None = None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


def _normalize_host(entry: str) -> str:
    """``host`` or ``host:port``, lower-cased, IPv6 in brackets; ValueError when it is not a host."""
    value = entry.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].split("?", 1)[0]
    if not value or "@" in value or "*" in value or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError(f"{entry.strip()!r} in WESBOT_LOG_HOSTS is not a host name (write host or host:port)")
    try:
        url = httpx.URL(f"http://{value}/")
    except httpx.InvalidURL:
        raise ValueError(
            f"{entry.strip()!r} in WESBOT_LOG_HOSTS is not a host name (write host or host:port)") from None
    if not url.host:
        raise ValueError(f"{entry.strip()!r} in WESBOT_LOG_HOSTS is not a host name (write host or host:port)")
    # httpx leaves out a default port (80 here): keep the port as written.
    explicit = value.rsplit(":", 1)[1] if value.rsplit("]", 1)[-1].count(":") == 1 else None
    port = int(explicit) if explicit else None
    return _host_key(url.host, port)


def parse_allowed_hosts(value: str | None) -> frozenset[str]:
    """``WESBOT_LOG_HOSTS``: comma-separated ``host`` or ``host:port`` entries (spaces ignored).

    A ``host`` entry allows that host on any port, a ``host:port`` entry only that port (the default
    port of a URL counts: ``logs.example:443`` allows ``https://logs.example/...``). Entries are
    lower-cased; a scheme or path written by mistake (``https://logs.example/``) is dropped. Raises
    :class:`ValueError` for an entry that is not a host name (wildcards are not supported).
    """
    if value is None:
        return frozenset()
    return frozenset(_normalize_host(entry) for entry in value.split(",") if entry.strip())


def _effective_port(url: httpx.URL) -> int | None:
    return url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)


def _shown_host(url: httpx.URL) -> str:
    """The host as shown in messages: with the port when it is not the scheme's default."""
    return _host_key(url.host, url.port)


def shown_url(url: str) -> str:
    """A URL as shown to users: userinfo and fragment removed, secret-looking query values masked."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return url
    parsed = parsed.copy_with(userinfo=b"", fragment=None)
    query = parsed.query.decode("ascii", "replace")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(name) for name, _ in pairs):
            masked = [(name, "***" if _SECRET_PARAM.search(name) else value) for name, value in pairs]
            parsed = parsed.copy_with(query=urlencode(masked, safe="*").encode("ascii"))
    return str(parsed)


def _format_size(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def _decode_tail(data: bytes, *, cut_start: bool, cut_end: bool) -> str:
    """Decode the kept bytes as UTF-8. A start inside the file may fall inside a multi-byte sequence
    (its continuation bytes are dropped) and inside a line (that partial line is dropped); an end
    inside the file may cut a sequence (the incomplete sequence is dropped)."""
    if cut_start:
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data, final=not cut_end)
    if text.startswith("\ufeff") and not cut_start:
        text = text[1:]
    if cut_start and "\n" in text:
        text = text.split("\n", 1)[1]
    return text


@dataclass(frozen=True)
class _Body:
    text: str
    cut: bool  # earlier content was dropped
    note: str | None = None


# --------------------------------------------------------------------------------------------------
# The fetcher
# --------------------------------------------------------------------------------------------------

class LogFetcher:
    """Fetch the end of stdout/stderr logs; thread-safe (one shared ``httpx.Client``, no other state).

    ``wes_base_url`` is ``WES_URL``; ``auth`` (basic) or ``token`` (bearer) are the WES credentials, sent
    only to its origin. ``allowed_hosts`` are the other hosts logs may be read from (see
    :func:`parse_allowed_hosts`), without credentials. ``timeout`` bounds one :meth:`tail` call as a
    whole (connect, redirects, reading). ``max_bytes`` is how much of the end of a log is read;
    ``stream_limit`` how much of a log is read at most when the server ignores ``Range``.
    """

    def __init__(
        self,
        wes_base_url: str,
        *,
        auth: tuple[str, str] | None = None,
        token: str | None = None,
        allowed_hosts: frozenset[str] = frozenset(),
        timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        transport: httpx.BaseTransport | None = None,
        stream_limit: int = DEFAULT_STREAM_LIMIT,
    ) -> None:
        if auth is not None and token is not None:
            raise ValueError("set either basic auth or a bearer token for WES, not both")
        if timeout <= 0 or max_bytes <= 0 or stream_limit < max_bytes:
            raise ValueError("timeout and max_bytes must be positive, and stream_limit at least max_bytes")
        try:
            base = httpx.URL(wes_base_url.strip())
        except httpx.InvalidURL:
            raise ValueError("WES_URL is not a valid URL") from None
        if base.scheme not in _DEFAULT_PORTS or not base.host:
            raise ValueError("WES_URL must be an http:// or https:// URL with a host name")
        if base.userinfo:
            raise ValueError("WES_URL must not contain credentials: set WES_AUTH or WES_TOKEN instead")
        base = base.copy_with(query=None, fragment=None)
        self._base = base
        # Relative references are resolved against the base URL taken as a directory ("$WES_URL/...").
        self._base_dir = str(base).rstrip("/") + "/"
        self._origin = (base.scheme, base.host, _effective_port(base))
        self._allowed = frozenset(_normalize_host(entry) for entry in allowed_hosts)
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._stream_limit = stream_limit
        self._authorization: str | None = None
        if token is not None:
            self._authorization = f"Bearer {token}"
        elif auth is not None:
            self._authorization = basic_credentials(auth)
        self._redact = Masker(secret_forms(auth=auth, token=token))
        # No cookie is ever stored: a log host must not be able to plant state for later requests.
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._http = httpx.Client(
            headers={"User-Agent": "wesbot", "Accept": "text/plain, */*", "Accept-Encoding": "identity"},
            cookies=no_cookies,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
        )

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return self._allowed

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LogFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LogFetcher({str(self._base)!r})"

    # ---- the call -------------------------------------------------------------------------------

    def tail(
        self,
        ref: str | None,
        *,
        what: str,
        lines: int = 30,
        max_chars: int = 2800,
        relative_to: str | None = None,
    ) -> LogTail:
        """The end of the log that ``ref`` (a stdout/stderr field) holds or points at.

        ``what`` describes the log in messages ("stderr of task T"). ``relative_to`` is the URL of the
        response the field came in, when the caller has it: relative references are resolved against
        it (else against ``WES_URL``), and with it an absolute path (``/api/jobs/1/stdout``) is taken as
        a URL on that server, as the WES client does; without it, an absolute path is a file path on the
        WES server, which is shown and not read.

        An empty field (``""``, only whitespace) is an empty log: a ``LogTail`` with no text, not an error.

        Raises :class:`LogUnavailable` (with a one-sentence message) when there is nothing to show: the
        field is None (the server has no log yet), the URL is refused or failed.
        """
        if ref is None:
            raise LogUnavailable(self._redact(f"{what} is not available yet"))
        if not ref.strip():
            return LogTail(text="", truncated=False, source="inline")
        if "\n" in ref or looks_like_log_content(ref):
            text, cut, reasons = _kept_end(ref, lines=lines, max_chars=max_chars)
            return LogTail(text=text, truncated=cut, source="inline", reasons=reasons)
        scheme_match = _SCHEME.match(ref)
        if scheme_match is not None:
            scheme = scheme_match.group(0)[:-1].lower()
            if len(scheme) == 1:  # a Windows drive letter: C:\logs\stderr.txt
                return self._not_read(ref, "file", what)
            if scheme not in _DEFAULT_PORTS:
                return self._not_read(ref, scheme, what)
            target = ref
        elif ref.startswith("/") and not ref.startswith("//") and relative_to is None:
            return self._not_read(ref, "file", what)
        elif "/" not in ref:
            # A single word ("Killed", "stderr.txt"): it cannot be told from a one-word log (see
            # models.resolve_log_ref), and fetching a guessed URL would only give a confusing 404.
            text, cut, reasons = _kept_end(ref, lines=lines, max_chars=max_chars)
            return LogTail(text=text, truncated=cut, source="inline", reasons=reasons)
        else:
            target = resolve_url(ref, relative_to or self._base_dir)
        try:
            url = httpx.URL(target)
        except httpx.InvalidURL:
            raise LogUnavailable(self._redact(f"{what} has a URL that is not valid")) from None
        if url.scheme not in _DEFAULT_PORTS or not url.host:
            raise LogUnavailable(self._redact(f"{what} has a URL that is not valid"))
        location = self._redact(shown_url(str(url)))
        body = self._fetch(url, what)
        text, cut, reasons = _kept_end(body.text, lines=lines, max_chars=max_chars)
        return LogTail(text=text, truncated=body.cut or cut, source="url", location=location, note=body.note,
                       reasons=reasons)

    # ---- paths ----------------------------------------------------------------------------------

    def _not_read(self, ref: str, scheme: str, what: str) -> LogTail:
        if scheme == "file":
            path = ref
            if ref[:7].lower() == "file://":
                try:
                    parsed = httpx.URL(ref)
                    local = parsed.host in ("", "localhost")
                    path = unquote(parsed.path) if local else shown_url(ref)
                except httpx.InvalidURL:
                    path = ref
            note = f"{what} is a path on the WES server; wesbot does not read it"
        else:
            path = shown_url(ref) if "://" in ref else ref
            note = f"{what} is a {scheme}: URL; wesbot only reads http and https logs"
        return LogTail(text="", truncated=False, source="path", location=self._redact(path),
                       note=self._redact(note))

    # ---- HTTP -----------------------------------------------------------------------------------

    def _credentials_for(self, url: httpx.URL) -> bool:
        """True to send the WES credentials (the WES origin), False for an allowed log host; else raise."""
        if (url.scheme, url.host, _effective_port(url)) == self._origin:
            return True
        host = url.host.lower()
        if _host_key(host) in self._allowed or _host_key(host, _effective_port(url)) in self._allowed:
            return False
        raise LogUnavailable(self._redact(f"log host {_shown_host(url)} not allowed (set WESBOT_LOG_HOSTS)"))

    def _fetch(self, url: httpx.URL, what: str) -> _Body:
        """GET the log, following redirects by hand; a refused range is asked once more without Range.

        The retry goes to the URL that refused the range (after any redirects), and does not count as
        a redirect: a server that refuses ranges costs one request more, never a longer chain.
        """
        deadline = time.monotonic() + self._timeout
        url = url.copy_with(userinfo=b"", fragment=None)
        hops = 0
        ranged = True
        while True:
            response = self._send(url, what, deadline, ranged=ranged)
            try:
                status = response.status_code
                if status in _REDIRECTS and response.headers.get("location"):
                    if hops == MAX_REDIRECTS:
                        raise LogUnavailable(self._redact(
                            f"fetching {what} was redirected more than {MAX_REDIRECTS} times"), status_code=status)
                    url = self._redirect_target(url, response.headers["location"], what)
                    hops += 1
                    continue
                if ranged and status in RANGE_REFUSED:
                    logger.debug("%s answered %d to a ranged GET; asking again without Range",
                                 self._redact(_shown_host(url)), status)
                    ranged = False
                    continue
                return self._read(response, url, what, deadline)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, url, what) from None
            finally:
                response.close()

    def _send(self, url: httpx.URL, what: str, deadline: float, *, ranged: bool) -> httpx.Response:
        """One GET of ``url``, streamed (the caller closes it): with the credentials only for the WES
        origin, and with ``Range: bytes=-max_bytes`` unless ``ranged`` is False."""
        credentials = self._credentials_for(url)
        headers = {"Range": f"bytes=-{self._max_bytes}"} if ranged else {}
        if credentials and self._authorization is not None:
            headers["Authorization"] = self._authorization
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out(what)
        request = self._http.build_request("GET", url, headers=headers, timeout=httpx.Timeout(remaining))
        started = time.monotonic()
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url, what) from None
        logger.debug("GET %s%s -> %d in %.0f ms", self._redact(_shown_host(url) + url.path),
                     "" if ranged else " (no Range)", response.status_code, (time.monotonic() - started) * 1000)
        return response

    def _redirect_target(self, current: httpx.URL, location: str, what: str) -> httpx.URL:
        try:
            target = current.join(location.strip())
        except httpx.InvalidURL:
            raise LogUnavailable(self._redact(f"fetching {what} was redirected to a URL that is not valid")) from None
        if target.scheme not in _DEFAULT_PORTS or not target.host:
            raise LogUnavailable(self._redact(f"fetching {what} was redirected to a URL that is not http or https"))
        return target.copy_with(userinfo=b"", fragment=None)

    def _read(self, response: httpx.Response, url: httpx.URL, what: str, deadline: float) -> _Body:
        status = response.status_code
        if status == 204:
            return _Body(text="", cut=False)
        if status == 404 or status == 410:
            raise LogUnavailable(self._redact(f"{what} was not found at its URL ({status})"), status_code=status)
        if status in (401, 403):
            raise LogUnavailable(self._redact(f"access to {what} was refused ({status})"), status_code=status)
        if not 200 <= status < 300:
            raise LogUnavailable(self._redact(f"log host {_shown_host(url)} answered {status} for {what}"),
                                 status_code=status)
        start: int | None = None
        if status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is not None:
                start = int(match.group(1))
        data, total, over = self._stream(response, what, deadline)
        dropped = total > len(data)
        if status == 206 and start is None:
            # No usable Content-Range: assume the range cut the log when it filled the whole range.
            start = 1 if total >= self._max_bytes else 0
        cut_start = dropped or bool(start)
        text = _decode_tail(data, cut_start=cut_start, cut_end=over)
        note = None
        if over:
            limit = _format_size(self._stream_limit)
            note = self._redact(f"{what} is larger than {limit}; showing the end of its first {limit}")
        return _Body(text=text, cut=cut_start or over, note=note)

    def _stream(self, response: httpx.Response, what: str, deadline: float) -> tuple[bytes, int, bool]:
        """Read the body keeping its last max_bytes: (kept bytes, bytes read, stopped at stream_limit)."""
        kept = bytearray()
        total = 0
        over = False
        for chunk in response.iter_bytes():
            if time.monotonic() > deadline:
                raise self._timed_out(what)
            room = self._stream_limit - total
            if len(chunk) > room:
                chunk, over = chunk[:room], True
            total += len(chunk)
            kept += chunk
            if len(kept) > self._max_bytes:
                del kept[: len(kept) - self._max_bytes]
            if over:
                break
        return bytes(kept), total, over

    # ---- errors ---------------------------------------------------------------------------------

    def _timed_out(self, what: str) -> LogUnavailable:
        return LogUnavailable(self._redact(f"fetching {what} timed out after {format_seconds(self._timeout)}"))

    def _transport_error(self, exc: httpx.HTTPError, url: httpx.URL, what: str) -> LogUnavailable:
        host = _shown_host(url)
        if isinstance(exc, httpx.TimeoutException):
            return self._timed_out(what)
        if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
            return LogUnavailable(self._redact(f"could not connect to log host {host}"))
        if isinstance(exc, httpx.DecodingError):
            return LogUnavailable(self._redact(f"log host {host} sent {what} in an encoding that could not be read"))
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return LogUnavailable(self._redact(f"lost the connection to log host {host} while fetching {what}"))
        return LogUnavailable(self._redact(f"fetching {what} from log host {host} failed ({type(exc).__name__})"))
