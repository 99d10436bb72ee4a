"""Formatting shared by the Slack and terminal renderers: times, durations, shortening. Pure."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
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


def epoch_iso(epoch: float | None) -> str:
    """An epoch time as ISO 8601 UTC, or "" when it is missing or out of range (NaN, 1e300)."""
    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else ""
    except (ValueError, OverflowError, OSError):
        return ""


def show_time(value: str | None) -> str:
    """A server time, shown compactly in UTC when it parses, as the server wrote it (cleaned) otherwise."""
    parsed = parse_time(value)
    if parsed is None:
        return shorten(sanitize_text(value, multiline=False), 40) if value else "—"
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC")


def human_duration(seconds: float) -> str:
    """``3h 5m``; a negative duration counts as 0s, and NaN or infinity as unknown ("—")."""
    if not math.isfinite(seconds):
        return "—"
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def duration(start: str | None, end: str | None, *, now: datetime | None = None) -> str | None:
    """``end - start``; with no end, the time since start ("running for"). None when start is unknown."""
    begun = parse_time(start)
    if begun is None:
        return None
    finished = parse_time(end)
    if finished is None:
        if end:
            return None  # an end that is not a time we can read: unknown, not "still running"
        return "for " + human_duration(((now or datetime.now(UTC)) - begun).total_seconds()) + " so far"
    return human_duration((finished - begun).total_seconds())


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
