"""What happened, told once: one function per event, each writing its log line and updating the metrics.

The events an operator follows at INFO go to the ``wesbot.events`` logger, one line each: a short message
("/wes status answered") and the facts as ``extra=`` fields, which :mod:`wesbot.logsetup` writes as
``key=value`` (or JSON keys): ``user``, ``channel``, ``command``, ``server``, ``outcome``, ``ms``, ``kind``,
``run``, ``method``, ``error``; a field without a value is left out. Per-request figures (WES calls, the lease, poll
times) only update the metrics: a line each would flood the log.

Nothing here ever carries a credential. ``server`` is a host, never a URL; text that may hold a URL (an error
from WES) goes through :func:`scrub_text`, which drops every URL's userinfo, query string and fragment; labels
are bounded codes (:func:`label`), so a hostile server cannot grow the number of series.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlsplit

from .metrics import Metrics, current

logger = logging.getLogger("wesbot.events")

# A Slack error code, an HTTP status, a command word: short, lower case, no spaces.
_LABEL_CHARS = re.compile(r"[^a-z0-9_.:\[\]-]+")
MAX_LABEL = 64
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
MAX_TEXT = 300


def scrub_url(url: str) -> str:
    """``url`` without its userinfo, query string and fragment: ``https://u:p@h/x?token=1`` -> ``https://h/x``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "[url]"
    if not parts.scheme or not netloc:
        return url.partition("?")[0].partition("#")[0].rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}"


def scrub_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with every URL in it scrubbed (:func:`scrub_url`), on one line and at most ``limit`` long."""
    line = " ".join(_URL.sub(lambda m: scrub_url(m.group(0)), text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def server_label(server: str) -> str:
    """The WES server as a label: its host (and port), even when given a URL (never its credentials)."""
    if "://" in server:
        server = urlsplit(server).netloc
    return label(server.rpartition("@")[2], default="unknown")


def label(value: str | None, *, default: str = "none") -> str:
    """A bounded label value: lower case, no spaces, at most ``MAX_LABEL`` characters."""
    cleaned = _LABEL_CHARS.sub("_", (value or "").strip().lower()).strip("_")[:MAX_LABEL]
    return cleaned or default


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _fields(**values: object) -> dict[str, object]:
    """The ``extra=`` of a line: the facts that have a value."""
    return {key: value for key, value in values.items() if value is not None}


# -- the events an operator reads -------------------------------------------------------------------

def command(user: str | None, channel: str | None, command: str, server: str, outcome: str, seconds: float, *,
            metrics: Metrics | None = None) -> None:
    """A ``/wes`` command answered. ``outcome``: ok, or the error's kind (usage, wes, internal)."""
    m = metrics or current()
    name, result = label(command, default="unknown"), label(outcome)
    m.commands.labels(command=name, outcome=result).inc()
    m.command_seconds.labels(command=name).observe(max(seconds, 0.0))
    logger.info("/wes %s answered", name, extra=_fields(user=user, channel=channel, command=name,
                                                         server=server_label(server), outcome=result, ms=_ms(seconds)))


def notification(kind: str, channel: str, run: str | None, outcome: str, delay_seconds: float | None, *,
                 error: str | None = None, metrics: Metrics | None = None) -> None:
    """An outbox row settled. ``outcome``: ``sent`` (INFO; ``delay_seconds`` since the row was queued, when the
    run's end was seen), ``given_up`` (WARNING, with Slack's ``error``) or ``retry`` (DEBUG: they come in storms)."""
    m = metrics or current()
    what = label(kind, default="message")
    fields = _fields(kind=what, channel=channel, run=run, outcome=outcome, ms=_ms(delay_seconds),
                     error=None if error is None else scrub_text(error, 100))
    if outcome == "sent":
        m.notifications_sent.labels(kind=what).inc()
        if delay_seconds is not None and what in ("notification", "digest"):
            m.notification_delay.observe(max(delay_seconds, 0.0))
        logger.info("%s sent", what, extra=fields)
    elif outcome == "given_up":
        m.notifications_given_up.labels(kind=what).inc()
        logger.warning("%s given up", what, extra=fields)
    else:
        m.notification_retries.labels(kind=what).inc()
        logger.debug("%s to be retried", what, extra=fields)


def cancel(user: str | None, channel: str | None, run: str | None, outcome: str, *, server: str = "",
           seconds: float | None = None, metrics: Metrics | None = None) -> None:
    """A click on "Cancel run". ``outcome`` is what came of it (requested, denied, already-finished,
    already-requested, wes-error, or internal for a bug); it also counts as the command ``cancel_click``."""
    m = metrics or current()
    result = label(outcome)
    m.cancels.labels(outcome=result).inc()
    as_command = "internal" if result == "internal" else "wes" if result == "wes-error" else "ok"
    m.commands.labels(command="cancel_click", outcome=as_command).inc()
    if seconds is not None:
        m.command_seconds.labels(command="cancel_click").observe(max(seconds, 0.0))
    logger.info("cancel clicked", extra=_fields(user=user, channel=channel, command="cancel_click", run=run,
                                                server=server_label(server) if server else None, outcome=result,
                                                ms=_ms(seconds)))


def wes_outage(server: str, started: bool, reason: str | None = None, *, seconds: float | None = None,
               metrics: Metrics | None = None) -> None:
    """The watcher found the WES server unreachable (``started``, WARNING), or reachable again (INFO; after
    ``seconds``). Once per episode: the caller decides when one starts and ends."""
    m = metrics or current()
    host = server_label(server)
    m.wes_unreachable.labels(server=host).set(1 if started else 0)
    fields = _fields(server=host, outcome="unreachable" if started else "reachable", ms=_ms(seconds),
                     error=None if reason is None else scrub_text(reason))
    if started:
        logger.warning("WES server unreachable", extra=fields)
    else:
        logger.info("WES server reachable again", extra=fields)


def slack_error(method: str, error: str, *, metrics: Metrics | None = None) -> None:
    """A Slack Web API call failed: ``error`` is Slack's error code, ``http_NNN``, or a connection error's name."""
    m = metrics or current()
    name, code = label(method, default="unknown"), label(error, default="unknown")
    m.slack_errors.labels(method=name, error=code).inc()
    logger.info("Slack API call failed", extra={"method": name, "error": code})


# -- figures only ------------------------------------------------------------------------------------

def wes_request(server: str, call: str, outcome: str, seconds: float, *, metrics: Metrics | None = None) -> None:
    """One WES call (retries included) and how it ended: ok, http_4xx, http_5xx, unreachable, protocol."""
    m = metrics or current()
    host, kind = server_label(server), label(call, default="unknown")
    m.wes_requests.labels(server=host, call=kind, outcome=label(outcome)).inc()
    m.wes_request_seconds.labels(server=host, call=kind).observe(max(seconds, 0.0))


def lease(held: bool, *, metrics: Metrics | None = None) -> None:
    """Whether this process holds the watcher lease now (the loop logs when that changes)."""
    (metrics or current()).lease_held.set(1 if held else 0)


def poll_completed(server: str, at: float | None = None, *, metrics: Metrics | None = None) -> None:
    """The watcher finished a poll cycle of ``server`` (``at``: wall time, now by default)."""
    (metrics or current()).last_poll.labels(server=server_label(server)).set(time.time() if at is None else at)
