"""Messages the watcher posts: the run's card (kept up to date), the end-of-run notification, notices. Pure."""

from __future__ import annotations

import json
import re
from typing import Any

from ..config import run_link
from ..format import ELLIPSIS, duration, elapsed, human_duration, is_url, shorten
from ..outcome import OutputItem, RunOutcome, TaskProgress, output_items, run_failed
from ..store.cancels import Cancel
from ..store.watch import Subscription
from ..wes.models import RunState, parse_state
from .blocks import (
    ACTION_RUN,
    MAX_SECTION,
    Block,
    Message,
    actions,
    button,
    chunk_lines,
    code,
    code_block,
    context,
    escape,
    link,
    section,
    slack_time,
    slack_wes_time,
)

_USER_ID = re.compile(r"^[UW][A-Z0-9]{1,40}$")
MAX_FAILED_TASKS = 10
# The Open button's action id: a URL button, which Slack opens itself (the app only acknowledges the click).
ACTION_OPEN = "wes_open"


def mentions(users: tuple[str, ...]) -> str:
    """Slack mentions of the subscribers (ids Slack gave us; anything else is dropped)."""
    return " ".join(f"<@{u}>" for u in users if _USER_ID.match(u))


def state_icon(state: str | None, exit_code: int | None) -> str:
    """The icon of a state; whether it is a failure is :func:`wesbot.outcome.run_failed`'s to say."""
    parsed = parse_state(state)
    if run_failed(parsed, exit_code):
        return ":warning:" if parsed in (RunState.COMPLETE, RunState.PREEMPTED) else ":x:"
    if parsed == RunState.COMPLETE:
        return ":white_check_mark:"
    if parsed == RunState.CANCELED:
        return ":no_entry_sign:"
    return ":hourglass_flowing_sand:"


def _state_text(state: str | None, exit_code: int | None) -> str:
    label = escape(state or "(no state)")
    if exit_code is not None and exit_code != -1:
        label += f" (exit {exit_code})"
        if state == RunState.COMPLETE and exit_code != 0:
            label += " — non-zero exit code"
    return label


def card(sub: Subscription, *, host: str, run_url: str | None = None) -> Message:
    """The card in the channel: one per (run, channel), updated in place while the run moves.

    A pure function of what the store holds (never of the clock), so that rendering it again shows the same
    card: the watcher bumps ``card_version`` exactly when what it shows changes (:func:`card_running_time`)."""
    active = sub.status == "active"
    lines = [_card_head(sub)]
    if sub.workflow:
        lines.append(f"*Workflow:* {code(sub.workflow, 200)}")
    times = _card_times(sub)
    if times:
        lines.append(times)
    if active and sub.progress is not None and sub.state == "RUNNING" and not _unreadable(sub):
        lines.append(f"*Tasks:* {progress_text(sub.progress)}")
    if active:
        lines.append(f"*Watching:* {mentions(sub.users) or 'nobody'}")
    else:
        lines.append(f"_No longer watched: the run {_NO_LONGER.get(sub.status, escape(sub.status))}._")
    blocks = [section("\n".join(lines))]
    if active:
        blocks += actions(
            button("Unsubscribe me", f"{ACTION_RUN}:unsubscribe", f"unsubscribe {sub.run_id}"),
            button("Details", f"{ACTION_RUN}:details", f"details {sub.run_id}"),
            open_button(run_link(run_url, sub.run_id)),
        )
    blocks.append(context(f"Watched by wesbot on {escape(host)} since {slack_time(sub.created_at)}"))
    unreadable = " (cannot reach the WES server)" if _unreadable(sub) else ""
    text = f"Run {escape(shorten(sub.run_id, 120))}: {_state_text(sub.state, sub.exit_code)}{unreadable}"
    return {"text": text, "blocks": blocks}


def progress_text(progress: TaskProgress) -> str:
    """``12 of 40 done · 3 running · 1 failed`` (``40+`` when the task list was not read to its end)."""
    total = f"{progress.total:,}{'+' if progress.more else ''}"
    parts = [f"{progress.done:,} of {total} done"]
    if progress.running:
        parts.append(f"{progress.running:,} running")
    if progress.failed:
        parts.append(f"*{progress.failed:,} failed*")
    return " · ".join(parts)


_NO_LONGER = {"ended": "ended", "gone": "is gone from the WES server", "expired": "was watched for too long",
              "failed": "could not be followed here", "removed": "is no longer watched"}


def _unreadable(sub: Subscription) -> bool:
    """Still watched, but the watcher's reads of the run have been failing: what the card last saw is old."""
    return sub.status == "active" and sub.failing_since is not None


def _card_head(sub: Subscription) -> str:
    """The run and its state: as it is now; or, when it can no longer be read, as it was when last read."""
    run, state = code(sub.run_id, 120), _state_text(sub.state, sub.exit_code)
    if _unreadable(sub):
        reason = f": {escape(shorten(sub.failing_reason, 200))}" if sub.failing_reason else ""
        return (f":grey_question: Run {run} was *{state}* when last read\n"
                f"_Cannot reach the WES server since {slack_time(sub.failing_since)}{reason}. wesbot keeps trying._")
    icon = ":ghost:" if sub.status == "gone" else state_icon(sub.state, sub.exit_code)
    return f"{icon} Run {run} {'is' if sub.status in ('active', 'ended') else 'was'} *{state}*"


def _card_times(sub: Subscription) -> str | None:
    """When the run started (WES's own start time), and how long it has run (while watched and readable)
    or took (once ended). A run gone from the server, or no longer watched, shows no running time."""
    if not sub.start_time:
        return None
    active = sub.status == "active"
    started = f"*Started:* {slack_wes_time(sub.start_time, ago=active)}"
    if active and not _unreadable(sub):
        running = card_running_time(sub.start_time, sub.read_at)
        return started + (f" · *Running for:* {running}" if running else "")
    took = duration(sub.start_time, sub.end_time, ended=True) if sub.status == "ended" else None
    return started + (f" · *Took:* {escape(took)}" if took else "")


# The card's running time changes at most this often: every 10 minutes in its first day, hourly after.
CARD_STEP = 600
CARD_STEP_AFTER_A_DAY = 3600


def card_running_time(start_time: str | None, as_of: float | None) -> str | None:
    """The running time a card shows: from the run's start (WES) to ``as_of``, the watcher's last read of it.
    Coarse, so that the card needs an update at most every 10 minutes (hourly after a day): "under 1h" (Slack's
    own "(12 minutes ago)" beside the start says more, and keeps itself current), then "over 2h 10m", then
    "over 3d 4h". None when it is unknown. The watcher updates a card exactly when this text changes."""
    seconds = elapsed(start_time, None, now=as_of) if as_of is not None else None
    if seconds is None:
        return None
    if seconds < 3600:
        return "under 1h"
    step = CARD_STEP if seconds < 86400 else CARD_STEP_AFTER_A_DAY
    return "over " + human_duration(seconds // step * step)


def notification(sub: Subscription | None, outcome: RunOutcome, *, host: str, note: str | None = None,
                 owner: str | None = None) -> Message:
    """The message owed when a run ends: posted in the card's thread and to the channel, mentioning watchers.
    Without a subscription (a channel-wide watch), nobody is mentioned but ``owner`` (who started the run, see
    :mod:`wesbot.slack.owners`); ``note`` says why it was posted.

    A failure says why first, right under its state: the lines of the failing stderr that say what went
    wrong (:func:`reason_lines`); then the failed tasks, and the end of that stderr. A success lists its
    outputs (:func:`output_lines`)."""
    icon = state_icon(outcome.state, outcome.exit_code)
    state = _state_text(outcome.state, outcome.exit_code)
    took = duration(outcome.start_time, outcome.end_time) if outcome.start_time and outcome.end_time else None
    head = f"{icon} Run {code(outcome.run_id, 120)} ended *{state}*" + (f" after {escape(took)}" if took else "")
    failed = outcome.failed
    reasons = outcome.log_reasons if failed else ()
    who = mentions(sub.users) if sub is not None else ""
    lines = [head, *why_lines(reasons), *([who] if who else []), *([f"*Started by:* {owner}"] if owner else [])]
    workflow = outcome.workflow or (sub.workflow if sub is not None else None)
    if workflow:
        lines.append(f"*Workflow:* {code(workflow, 200)}")
    blocks = [section("\n".join(lines))]
    if failed:
        blocks += _failure_blocks(outcome)
    else:
        blocks += outputs_blocks(outcome.outputs)
    more_logs = None
    if failed and outcome.log_what:
        more_logs = button("Show more logs", f"{ACTION_RUN}:logs", f"logs {outcome.run_id}" + (
            f" {outcome.log_task_id}" if outcome.log_task_id else ""))
    blocks += actions(
        more_logs,
        button("Details", f"{ACTION_RUN}:details", f"details {outcome.run_id}"),
        button("Tasks", f"{ACTION_RUN}:tasks", f"tasks {outcome.run_id}" + (" failed" if failed else "")),
        open_button(outcome.link),
    )
    blocks.append(context((f"{escape(note)} · " if note else "") + f"WES server: {escape(host)}"))
    why = f": {escape(shorten(reasons[0], 200))}" if reasons else ""
    text = f"Run {escape(shorten(outcome.run_id, 120))} ended {state}{why}" + (f" {who}" if who else "") + (
        f" (started by {owner})" if owner else "")
    return {"text": text, "blocks": blocks}


def _failure_blocks(outcome: RunOutcome) -> list[Block]:
    """What a failure notification shows under its head: the failed tasks, the run's log links, the end of the
    failing stderr."""
    blocks: list[Block] = []
    if outcome.failed_tasks:
        task_lines = []
        for task in outcome.failed_tasks[:MAX_FAILED_TASKS]:
            line = f"• {code(task.name, 80)} exit {task.exit_code if task.exit_code is not None else '?'}"
            logs = [link(url, name) for name, url in (("stderr", task.stderr), ("stdout", task.stdout))
                    if url and is_url(url)]
            if logs:
                line += " — " + " · ".join(logs)
            task_lines.append(line)
        if outcome.more_failed_tasks or len(outcome.failed_tasks) > MAX_FAILED_TASKS:
            task_lines.append("_…and more; see `/wes tasks " + escape(outcome.run_id) + " failed`_")
        chunks = chunk_lines(["*Failed tasks:*", *task_lines], MAX_SECTION)
        blocks += [section(chunk) for chunk in chunks[:3]]
    logs = [link(url, name) for name, url in (("stderr", outcome.stderr), ("stdout", outcome.stdout))
            if url and is_url(url)]
    if logs:
        blocks.append(section("*Run logs:* " + " · ".join(logs)))
    if outcome.log_what and outcome.log_text:
        title = outcome.log_what[0].upper() + outcome.log_what[1:]
        blocks.append(section(f"*{escape(title)}* (the end):\n{code_block(outcome.log_text, 1800)}"))
    return blocks


# -- the parts a notification and a lookup share: why it failed, what it produced, a link to its page ------

REASON_SHOWN = 200  # characters of one reason line


def why_lines(reasons: tuple[str, ...] | list[str]) -> list[str]:
    """The lines that say why a run failed, as mrkdwn: each quoted, in a code span (WES text, escaped)."""
    return [f">{code(reason, REASON_SHOWN)}" for reason in reasons]


OUTPUT_VALUE_SHOWN = 120  # characters of one output that is not a file
OUTPUT_LOCATION_SHOWN = 100  # characters of the location of a file that is not at an http(s) URL


def outputs_blocks(outputs: Any) -> list[Block]:
    """A run's outputs as a short list (:func:`output_lines`), or nothing when it has none."""
    lines = output_lines(outputs)
    return [section("*Outputs:*\n" + "\n".join(lines))] if lines else []


def output_lines(outputs: Any) -> list[str]:
    """One line per output (:func:`wesbot.outcome.output_items`): a file by its name, a link where its location
    is an http(s) URL, with its size when known; another value as ``name: value``; then "…and N more"."""
    items, more = output_items(outputs)
    lines = [_output_line(item) for item in items]
    if more:
        lines.append(f"_…and {more} more._")
    return lines


def _output_line(item: OutputItem) -> str:
    name = f"*{escape(shorten(item.name, 80))}*: " if item.name else ""
    if item.file is None:
        value = item.value if isinstance(item.value, str) else json.dumps(item.value, ensure_ascii=False,
                                                                          default=str)
        return f"• {name}{code(value, OUTPUT_VALUE_SHOWN)}"
    label = shorten(item.file, 120) + ("/" if item.directory else "")
    if item.location and is_url(item.location):
        shown = link(item.location, label)
    else:  # a path or an s3:// URL: where it is (its end is the file's name) is what people need
        shown = code(shorten_middle(item.location, OUTPUT_LOCATION_SHOWN)[0] if item.location else label, 200)
    size = f" ({human_size(item.size)})" if item.size is not None else ""
    return f"• {name}{shown}{size}"


def human_size(size: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``12 MiB``, ``3.1 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def shorten_middle(text: str, limit: int) -> tuple[str, bool]:
    """``head … tail`` of ``text`` within ``limit`` characters (two thirds head, one third tail), and whether
    it was cut."""
    if len(text) <= limit:
        return text, False
    head = (limit - 1) * 2 // 3
    tail = limit - 1 - head
    return text[:head] + ELLIPSIS + text[len(text) - tail:], True


MAX_URL = 3000  # Block Kit's limit on a button's url


def open_button(url: str | None) -> Block | None:
    """The Open button: a link to the run's page (the server's run-link template), or None without one."""
    if not url or not is_url(url) or len(url) > MAX_URL:
        return None
    return {"type": "button", "text": {"type": "plain_text", "text": "Open", "emoji": True},
            "action_id": ACTION_OPEN, "url": url}


MAX_DIGEST_LINES = 300
MAX_DIGEST_SECTIONS = 12  # with a 3000-character limit per section: well within one message


def digest(outcomes: list[RunOutcome], *, what: str, host: str) -> Message:
    """One message for a burst: "12 runs failed since the last check: …", as many as fit, then "and N more";
    a failed run whose details were read says why in its line (its first reason line)."""
    count = len(outcomes)
    lines = []
    for outcome in outcomes[:MAX_DIGEST_LINES]:
        took = duration(outcome.start_time, outcome.end_time) if outcome.start_time and outcome.end_time else None
        why = f" — {code(outcome.log_reasons[0], 120)}" if outcome.failed and outcome.log_reasons else ""
        lines.append(f"{state_icon(outcome.state, outcome.exit_code)} {code(outcome.run_id, 80)} "
                     f"*{_state_text(outcome.state, outcome.exit_code)}*" + (f" after {escape(took)}" if took else "")
                     + why)
    shown = len(lines)
    while True:
        listed = lines[:shown] + ([f"…and {count - shown} more."] if shown < count else [])
        chunks = chunk_lines(listed, MAX_SECTION)
        if len(chunks) <= MAX_DIGEST_SECTIONS or shown == 0:
            break
        shown = max(shown - 10, 0)
    head = f"*{count} runs {escape(what)} since the last check*"
    blocks = [section(head)] + [section(chunk) for chunk in chunks]
    blocks.append(context(f"`/wes runs failed` lists them · WES server: {escape(host)}"))
    return {"text": f"{count} runs {escape(what)}", "blocks": blocks}


def notice(sub: Subscription | None, text: str, *, mention: bool = False) -> Message:
    """A short note (run gone, expired, cannot read the run, lost access). ``text`` is already mrkdwn-safe."""
    who = mentions(sub.users) if (sub is not None and mention) else ""
    body = text + (f"\n{who}" if who else "")
    return {"text": shorten(body, 3000), "blocks": [section(body)]}


def unreadable_text(run_id: str, since: float | None, now: float, reason: str, *, server: str | None = None) -> str:
    age = f" since {slack_time(since)} ({human_duration(max(0.0, now - since))})" if since else ""
    return (f":grey_question: wesbot has not been able to read run {code(run_id, 120)}{on_server(server)}{age}: "
            f"{escape(reason)}. "
            "It keeps trying, and will still post when the run ends.")


# -- the watcher's notices: every sentence it posts is here, escaped the one way (blocks.escape) -------


def gone_text(run_id: str, reason: str, *, server: str | None = None) -> str:
    where = f"WES server *{escape(server)}*" if server else "WES server"
    return (f":ghost: Run {code(run_id, 120)} is no longer on the {where} ({escape(reason)}). "
            "wesbot has stopped watching it.")


def expired_text(sub: Subscription, days: float, *, server: str | None = None) -> str:
    return (f":hourglass: wesbot stopped watching run {code(sub.run_id, 120)}{on_server(server)} after {days:g} days "
            f"(last state: {escape(sub.state or '(no state)')}). Subscribe again to keep watching.")


def auth_lost_text(host: str, reason: str) -> str:
    return (f":lock: wesbot lost access to the WES server at {escape(host)}: {escape(reason)}. "
            "Subscriptions are kept; notifications resume once access is restored.")


def channel_failed_text(channel: str, error: str, run_id: str, *, server: str | None = None) -> str:
    """The DM to a subscriber when Slack refuses posts in the channel (``channel`` is Slack's own id)."""
    hint = " Invite wesbot with `/invite @wesbot`, then subscribe again." if error == "not_in_channel" else ""
    return (f"wesbot could not post in <#{channel}> ({escape(error)}), so it stopped watching run "
            f"{code(run_id, 120)}{on_server(server)} there.{hint}")


def _canceller(user_id: str) -> str:
    return f"<@{user_id}>" if _USER_ID.match(user_id) else "someone"


def on_server(server: str | None) -> str:
    """" on *prod*": where a message says which server, when there are several (``server`` None: one)."""
    return f" on *{escape(server)}*" if server else ""


def cancel_announcement(user_id: str, run_id: str, state_before: str | None, *, server: str | None = None) -> Message:
    """The in-channel message when someone cancels a run: the team sees who and what."""
    text = (f":octagonal_sign: {_canceller(user_id)} requested cancellation of run {code(run_id, 120)}"
            f"{on_server(server)} (was {escape(state_before or '?')}). Following it…")
    return {"text": text, "blocks": [section(text)]}


def cancel_outcome(cancel: Cancel, now: float, *, server: str | None = None) -> Message:
    """The channel message once a followed cancel is decided (it replaces the announcement)."""
    head = (f":octagonal_sign: {_canceller(cancel.user_id)} requested cancellation of run {code(cancel.run_id, 120)}"
            f"{on_server(server)} (was {escape(cancel.state_before or '?')})")
    took = human_duration(now - cancel.requested_at)
    final = escape(cancel.final_state or "unknown")
    if cancel.outcome == "confirmed-canceled":
        text = f"{head}\n:white_check_mark: The run is *CANCELED* ({took} after the request)."
    elif cancel.outcome == "ended-otherwise":
        text = f"{head}\nThe run ended *{final}* before the cancel took effect."
    elif cancel.outcome == "no-effect":
        text = (f"{head}\n:warning: The WES server accepted the cancel, but the run is still *{final}* "
                f"{took} later. This server may ignore cancels.")
    else:
        text = head + "\nFollowing it…"
    return {"text": text, "blocks": [section(text)]}
