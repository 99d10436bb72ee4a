"""Messages about runs that are late: a deadline watch's alert and digest, a subscription's missed deadline. Pure.

Every alert says how long the run has been in its state and offers what a person does next: look (Details,
Tasks), stop it (Cancel run…, which asks to confirm), or hear when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..format import duration_text, human_duration
from ..outcome import TaskProgress
from ..store.watches import ChannelWatch
from .blocks import MAX_SECTION, Message, actions, chunk_lines, code, context, escape, run_button, section, slack_time
from .cards import progress_text

if TYPE_CHECKING:
    from ..watcher.deadlines import LateRun

MAX_LATE_LINES = 40


def _how_late(state: str, age: float, kind: str) -> str:
    if kind == "queued":
        return f"has been waiting (*{escape(state)}*) for {human_duration(age)}"
    return f"has been active (*{escape(state)}*) for {human_duration(age)}"


def _stop_hint(watch: ChannelWatch) -> str:
    tag = f"tag {watch.tag_key}={watch.tag_value} " if watch.tag_key else ""
    return f"Posted because this channel watches {watch.describe()} (`/wes unwatch {escape(tag)}{watch.kind}` to stop)"


def late_buttons(run_id: str) -> list[dict[str, object]]:
    return actions(run_button("Details", f"details {run_id}"), run_button("Tasks", f"tasks {run_id}"),
                   run_button("Cancel run…", f"cancel {run_id}"),
                   run_button("Notify me when it ends", f"subscribe {run_id}"))


def late_alert(run: LateRun, watch: ChannelWatch, *, host: str, progress: TaskProgress | None,
               owner: str | None = None) -> Message:
    """One run past a watch's deadline; ``owner``: who started it (mentioned)."""
    head = f":alarm_clock: Run {code(run.run_id, 120)} {_how_late(run.state, run.age, watch.kind)}, since " \
           f"{slack_time(run.since)}"
    lines = [head]
    if owner:
        lines.append(f"*Started by:* {owner}")
    if progress is not None:
        lines.append(f"*Tasks:* {progress_text(progress)}")
    blocks = [section("\n".join(lines)), *late_buttons(run.run_id),
              context(f"{_stop_hint(watch)} · WES server: {escape(host)}")]
    text = f"Run {escape(run.run_id[:120])} {_how_late(run.state, run.age, watch.kind)}"
    return {"text": text + (f" (started by {owner})" if owner else ""), "blocks": blocks}


def late_digest(runs: list[LateRun], watch: ChannelWatch, *, host: str, already: bool,
                owners: Mapping[str, str] | None = None) -> Message:
    """Several runs past a watch's deadline at once; ``already``: they were late when the watch was set."""
    when = "already past it when this watch was set" if already else "past it since the last check"
    what = "waiting" if watch.kind == "queued" else "active"
    head = f":alarm_clock: *{len(runs)} runs {what} longer than {duration_text(watch.after or 0)}*, {when}:"
    named = owners or {}
    lines = [f"• {code(run.run_id, 80)} *{escape(run.state)}* for {human_duration(run.age)}"
             + (f", started by {named[run.run_id]}" if run.run_id in named else "") for run in runs[:MAX_LATE_LINES]]
    if len(runs) > MAX_LATE_LINES:
        lines.append(f"…and {len(runs) - MAX_LATE_LINES} more (`/wes runs active` lists them).")
    blocks = [section(head), *[section(chunk) for chunk in chunk_lines(lines, MAX_SECTION)][:10],
              context(f"{_stop_hint(watch)} · WES server: {escape(host)}")]
    return {"text": f"{len(runs)} runs {what} longer than {duration_text(watch.after or 0)}", "blocks": blocks}


def deadline_text(run_id: str, state: str | None, after: float, age: float, *, server: str | None = None) -> str:
    """A subscription's missed deadline, said in the card's thread (the subscribers are mentioned)."""
    where = f" on {escape(server)}" if server else ""
    return (f":alarm_clock: Run {code(run_id, 120)}{where} has not ended {duration_text(after)} after it started: it "
            f"is *{escape(state or 'unknown')}* after {human_duration(age)}. You will still hear when it ends.")
