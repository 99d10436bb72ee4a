"""Logging for every ``wesbot`` command: one handler on stderr, text or JSON lines, secrets redacted.

Levels (``--log-level``, else ``WESBOT_LOG_LEVEL``, else the command's default):

- ``debug``, ``info``, ``warning``, ``error`` set wesbot's own loggers (``wesbot.*``). The libraries stay at
  WARNING (httpcore, urllib3, slack_sdk, slack_bolt, waitress and any other), except that ``debug`` also
  shows httpx's one line per request, as it always did;
- ``debug-all`` is DEBUG for the libraries too (httpcore's connection steps, slack_sdk's requests).

Formats (``WESBOT_LOG_FORMAT``):

- ``text``: ``2026-12-03 15:11:03,541 INFO wesbot.core: command user=U1 channel=C1 outcome=ok ms=12``;
- ``json``: one object a line, ``{"time": "2026-12-03T15:11:03.541+00:00", "level": "INFO", "logger":
  "wesbot.core", "message": "command", "user": "U1", ...}``, with an ``exception`` field for a traceback.

Fields passed with ``logger.info("command", extra={...})`` are written in both formats (``key=value`` after the
message, or keys of the object). :class:`RedactSecrets` runs before either formatter: every configured secret
and every Slack response_url is replaced by ``[redacted]`` in the message, the extra fields and the traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings

LOG_LEVELS = ("debug", "debug-all", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
# The libraries kept at WARNING unless the level is debug-all. "wesbot.bolt" is the logger wesbot hands to Bolt
# (slack/app.py), so Bolt's own lines count as the library's, not wesbot's.
THIRD_PARTY = ("httpcore", "httpx", "urllib3", "slack_sdk", "slack_bolt", "wesbot.bolt", "waitress")

# A response_url lets anyone who has it answer in the channel for 30 minutes: a credential. Its value after the
# key (in a dict's repr, JSON or a form body), and any URL on Slack's hooks host (plain or form-encoded).
_RESPONSE_URLS = re.compile(
    r"(?P<key>response_url[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
    r"|https?(?::|%3A)(?://|%2F%2F)hooks\.slack\.com[^\s\"'&,}]*", re.IGNORECASE)

# What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def _redact_response_urls(text: str) -> str:
    return _RESPONSE_URLS.sub(lambda m: (m.group("key") or "") + "[redacted]", text)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields passed with ``extra=`` (not the record's own attributes), in the order they were given."""
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")}


class RedactSecrets(logging.Filter):
    """Defence in depth: replace any configured secret, and any response_url, that would reach a log line.

    Covers the message, every ``extra=`` field (strings inside lists and dicts too) and the traceback, which it
    formats here so that the formatters print the redacted copy."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def redact(self, text: str) -> str:
        if "response_url" in text or "hooks" in text:
            text = _redact_response_urls(text)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, dict):
            return {str(k): self._redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._redact_value(v) for v in value]
        return self.redact(str(value))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        for key, value in extra_fields(record).items():
            setattr(record, key, self._redact_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if text == "" or any(c.isspace() or c in "\"=" for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE key=value ...``; a value with spaces, quotes or ``=`` is quoted as JSON."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        fields = extra_fields(record)
        if not fields:
            return line
        return line + " " + " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, the ``extra=`` fields, and
    ``exception`` / ``stack`` when the record has them. A field named like one of the first four is written
    with a trailing underscore (``time_``) rather than replace it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry[key + "_" if key in entry else key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _library_level(level: str) -> int:
    if level == "debug-all":
        return logging.DEBUG
    return logging.WARNING


def setup_logging(settings: Settings | None, level: str | None = None, *, default: str = "info") -> None:
    """Log to stderr for a command. ``level``: from ``--log-level`` (None: ``settings.log_level``, else
    ``default``); the format is ``settings.log_format``. Replaces any handler set before."""
    chosen = (level or (settings.log_level if settings is not None else None) or default).lower()
    if chosen not in LOG_LEVELS:  # config.py refuses these first; this guards a caller that skipped it
        raise ValueError(f"unknown log level {chosen!r}: use one of {', '.join(LOG_LEVELS)}")
    json_lines = settings is not None and settings.log_format == "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RedactSecrets(settings.secrets() if settings is not None else []))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # The root holds the libraries' level, so that a library logger Bolt configures from the root (it copies
    # the root's level) is quiet too; wesbot's own loggers get the level asked for.
    root.setLevel(_library_level(chosen))
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(_library_level(chosen))
    for name, existing in list(logging.root.manager.loggerDict.items()):  # children that copied an old level
        if isinstance(existing, logging.Logger) and name.startswith(tuple(p + "." for p in THIRD_PARTY)):
            existing.setLevel(logging.NOTSET)
    logging.getLogger("wesbot").setLevel(logging.DEBUG if chosen == "debug-all" else chosen.upper())
    if chosen == "debug":  # httpx logs every request at INFO: kept for --log-level debug, as before
        logging.getLogger("httpx").setLevel(logging.DEBUG)


class _DropFrom(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.name == p or record.name.startswith(p + ".") for p in self.prefixes)


@contextmanager
def library_lines_dropped(*prefixes: str) -> Iterator[None]:
    """Drop what the loggers ``prefixes`` (and their children) log while the block runs. For a library call whose
    failure wesbot says in its own one line (Bolt's auth.test at start-up: slack_sdk logs each failed attempt at
    ERROR before raising). At debug-all nothing is dropped."""
    handlers = list(logging.getLogger().handlers)
    if logging.getLogger(prefixes[0]).isEnabledFor(logging.DEBUG):
        handlers = []
    drop = _DropFrom(prefixes)
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)
