"""Formatting shared by the Slack and terminal renderers: times, durations, shortening. Pure."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from .outcome import task_failed, task_running
from .wes.logs import sanitize_text
from .wes.models import Log, State, state_label

if TYPE_CHECKING:
    from .results import ServerRow

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters (code points), marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def tail_lines(text: str, lines: int, limit: int) -> tuple[str, bool]:
    """The last ``lines`` lines of ``text``, at most ``limit`` characters; and whether anything was cut."""
    parts = text.rstrip("\n").splitlines()
    kept = parts[-lines:]
    out = "\n".join(kept)
    cut = len(kept) < len(parts)
    if len(out) > limit:
        out = ELLIPSIS + out[-(limit - 1) :]
        cut = True
    return out, cut


def parse_time(value: str | None) -> datetime | None:
    """A server time in UTC; None when it is missing, not ISO 8601, or not representable in UTC
    (``0001-01-01T00:00:00+14:00`` would overflow): such a time is unknown, never an error."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def epoch_time(epoch: float | None) -> datetime | None:
    """An epoch time as a UTC datetime; None when it is missing or out of range (NaN, 1e300)."""
    try:
        return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
    except (ValueError, OverflowError, OSError):
        return None


def epoch_iso(epoch: float | None) -> str:
    """An epoch time as ISO 8601 UTC, or "" when it is missing or out of range (NaN, 1e300)."""
    moment = epoch_time(epoch)
    return moment.isoformat() if moment is not None else ""


def utc_text(moment: datetime) -> str:
    """How a time reads in UTC: ``2026-12-04 09:41:07 UTC`` (Slack's fallback text for its date tokens)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def unparsed_time(value: str | None) -> str:
    """A server time that is not a time we can read, as the server wrote it (cleaned, short); "—" for none."""
    return shorten(sanitize_text(value, multiline=False), 40) if value else "—"


def local_time(value: str | None, tz: tzinfo | None = None) -> str:
    """A server time for the terminal: in the local time zone (or ``tz``), with its offset, e.g.
    ``2026-12-04 10:41:07 +01:00``; as the server wrote it (cleaned) when it does not parse."""
    parsed = parse_time(value)
    return unparsed_time(value) if parsed is None else _local_text(parsed, tz)


def local_epoch(epoch: float | None, tz: tzinfo | None = None) -> str:
    """An epoch time (wesbot's own records) for the terminal, as :func:`local_time` shows it; "—" if unknown."""
    moment = epoch_time(epoch)
    return "—" if moment is None else _local_text(moment, tz)


def _local_text(moment: datetime, tz: tzinfo | None) -> str:
    try:
        local = moment.astimezone(tz)
    except (ValueError, OverflowError, OSError):  # the first or last day of the calendar, shifted out of it
        return utc_text(moment)
    offset = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    hours, minutes = divmod(abs(offset), 60)
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {'-' if offset < 0 else '+'}{hours:02d}:{minutes:02d}"


def human_duration(seconds: float) -> str:
    """One format for every duration, its two largest units: ``45s``, ``7m 15s``, ``2h 05m``, ``3d 4h``.
    A negative duration counts as 0s, and NaN or infinity as unknown ("—")."""
    if not math.isfinite(seconds):
        return "—"
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


# The units of a duration argument (``1h30m``), largest first.
DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration_text(seconds: float) -> str:
    """A duration as it is typed (``5400`` is ``1h30m``): what ``commands.parse_duration`` reads back."""
    left, parts = int(seconds), []
    for name, unit in DURATION_UNITS:
        if left >= unit:
            parts.append(f"{left // unit}{name}")
            left %= unit
    return "".join(parts) or "0s"


def elapsed(start: str | None, end: str | None, *, now: float) -> float | None:
    """Seconds from ``start`` to ``end``, or to ``now`` (epoch) while there is no end; None when either
    time is one we cannot read."""
    begun = parse_time(start)
    if begun is None:
        return None
    if not end:
        return now - begun.timestamp()
    finished = parse_time(end)
    return None if finished is None else (finished - begun).total_seconds()


def _now() -> datetime:
    """What a running time is counted to in a lookup's answer: the time it is rendered."""
    return datetime.now(UTC)


def duration(start: str | None, end: str | None, *, now: datetime | None = None, ended: bool = False) -> str | None:
    """How long a run (or task) took, ``7m 15s``; with no end yet, how long it has run: ``2h 05m so far``.
    None when it is unknown: no start, an end we cannot read, or no end for one that has ``ended``."""
    if not end and ended:
        return None
    seconds = elapsed(start, end, now=(now or _now()).timestamp())
    if seconds is None:
        return None
    return human_duration(seconds) + ("" if end else " so far")


def state_with_exit(state: State, exit_code: int | None) -> str:
    """The state, with the exit code beside it: Arvados reports failures as COMPLETE with exit code 1."""
    label = state_label(state)
    if exit_code is not None and exit_code != -1:
        label += f" (exit {exit_code})"
        if str(state) == "COMPLETE" and exit_code != 0:
            label += " ⚠ non-zero exit code"
    return label


def task_state(task: Log, *, run_terminal: bool) -> str:
    """A task's state in a few words. What counts as failed or still running is decided in
    :mod:`wesbot.outcome`: an exit code of -1 while the task and its run go on is "no exit code yet"."""
    if task_running(task, run_terminal):
        return "no exit code yet"
    if task_failed(task, run_terminal):
        return f"failed (exit {task.exit_code})"
    if task.exit_code == 0:
        return "ok (exit 0)"
    return "ended, no exit code"  # finished (else it would be running) without an exit code


def compact_json(value: Any, limit: int) -> tuple[str, bool]:
    """JSON for people: indented when it fits, cut at ``limit`` characters. Returns (text, was_cut)."""
    try:
        text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = str(value)
    if len(text) > limit:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return (text, False) if len(text) <= limit else (shorten(text, limit), True)


def is_url(value: str | None) -> bool:
    """An http(s) URL of printable ASCII only: no control or bidi character can ride in a link."""
    return bool(value) and re.match(r"^https?://[!-~]+$", value or "") is not None


def log_is_inline(value: str | None) -> bool:
    """A stdout/stderr field that holds the log text itself rather than a location."""
    return bool(value) and ("\n" in (value or "") or len(value or "") > 500)


# How much of one server's GET /service-info `/wes servers` shows: a hostile server cannot make it long.
MAX_SERVER_FACT = 300
MAX_SERVER_ITEMS = 12


def _some(pairs: list[str]) -> str:
    shown = ", ".join(pairs[:MAX_SERVER_ITEMS])
    more = len(pairs) - MAX_SERVER_ITEMS
    return shorten(shown + (f" (+{more} more)" if more > 0 else ""), MAX_SERVER_FACT)


def server_facts(row: ServerRow) -> list[tuple[str, str]]:
    """What ``/wes servers`` shows of a reachable server as
    ``(label, text)`` pairs of raw text from WES: each renderer escapes or cleans it. Empty fields are left out."""
    facts: list[tuple[str, str]] = []
    service = " ".join(part for part in (row.service_name, row.version) if part)
    if service:
        facts.append(("service", shorten(service, MAX_SERVER_FACT)))
    if row.wes_versions:
        facts.append(("WES", _some([str(v) for v in row.wes_versions])))
    if row.engines:
        facts.append(("engines", _some([f"{name} {version}".strip() for name, version in row.engines.items()])))
    if row.workflow_types:
        facts.append(("types", _some([f"{name} {', '.join(versions)}".strip()
                                      for name, versions in row.workflow_types.items()])))
    if row.state_counts:
        facts.append(("runs", _some([f"{state} {count}" for state, count in row.state_counts.items()])))
    return facts
