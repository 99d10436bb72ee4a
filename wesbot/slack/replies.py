"""Render command results (:mod:`wesbot.results`) as Slack messages, one function per kind. Pure: no I/O.

Built from the primitives in :mod:`.blocks`, which escape every string that came from WES and keep each
message within Block Kit's limits; :func:`render` shortens what is still too long, with a note.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..cancel import CancelView
from ..commands import LATE_KINDS, Command
from ..config import run_link
from ..format import (
    compact_json,
    duration,
    duration_text,
    is_url,
    log_is_inline,
    server_facts,
    shorten,
    state_with_exit,
    task_state,
)
from ..logref import is_run_log
from ..outcome import task_running
from ..results import (
    AuditResult,
    CancelResult,
    ChooseServerResult,
    CommandLineResult,
    DetailsResult,
    ErrorResult,
    HelpResult,
    LogsResult,
    NextPage,
    ReportResult,
    ReportScheduleResult,
    Result,
    RunsResult,
    ServersResult,
    StatusResult,
    SubscribeResult,
    SubscriptionsResult,
    TaskResult,
    TasksResult,
    TimelineResult,
    UnsubscribeResult,
    UseResult,
    WatchResult,
)
from ..runtimeline import cut_note
from ..store.reports import ReportSchedule
from ..store.watches import ChannelWatch
from ..wes.logs import LogTail, sanitize_log_text
from ..wes.models import Log, RunSummary, is_terminal, state_label
from .blocks import (
    ACTION_CANCEL,
    ACTION_KEEP,
    ACTION_PAGE,
    ACTION_RUN,
    ACTION_SHARE,
    MAX_BLOCKS,
    MAX_FALLBACK,
    MAX_SECTION,
    Block,
    Message,
    actions,
    button,
    chunk_lines,
    code,
    code_block,
    context,
    error_message,
    escape,
    fields_section,
    header,
    help_message,
    link,
    run_button,
    section,
    slack_time,
    slack_wes_time,
)
from .cards import mentions, open_button, outputs_blocks, shorten_middle, why_lines
from .report_view import report_message


def _share_button(command: Command | None) -> Block | None:
    if command is None or command.share:
        return None
    return button("Share in channel", ACTION_SHARE, command.text(page_token=command.page_token, skip=command.skip))


def _next_button(command: Command | None, next_page: NextPage | None) -> Block | None:
    if command is None or next_page is None:
        return None
    return button("Next page ›", ACTION_PAGE, command.text(page_token=next_page.page_token, skip=next_page.skip))


def _footer(host: str, shared_by: str | None, notes: list[str] | None = None) -> list[Block]:
    parts = [f"WES server: {escape(host)}"]
    if shared_by:
        parts.insert(0, f"Shared by <@{shared_by}>")
    blocks = [context(escape(note)) for note in (notes or [])]
    blocks.append(context(" · ".join(parts)))
    return blocks


def _fit(blocks: list[Block]) -> list[Block]:
    """Keep a message within MAX_BLOCKS, keeping the last two blocks (actions and footer)."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    head = blocks[: MAX_BLOCKS - 3]
    return head + [context("_…shortened to fit in one Slack message._")] + blocks[-2:]


def merge(messages: list[Message], titles: list[str]) -> Message:
    """One message from several (one server's answer each, under its title), within Slack's limit on blocks."""
    if len(messages) == 1:
        return messages[0]
    blocks: list[Block] = []
    for message, title in zip(messages, titles, strict=True):
        if blocks:
            blocks.append({"type": "divider"})
        blocks.append(context(f"*{escape(title)}*"))
        blocks += message.get("blocks") or [section(escape(str(message.get("text") or "")))]
    text = "\n".join(str(message.get("text") or "") for message in messages)
    return {"text": text[:MAX_FALLBACK], "blocks": _fit(blocks)}


def render(result: Result, *, host: str, shared_by: str | None = None, run_url: str | None = None) -> Message:
    """The Slack message for a result: ``{"text": fallback, "blocks": [...]}``. ``run_url``: the server's
    run-link template, for the Open button of the lookups of one run (status, details)."""
    run_renderer = _RUN_RENDERERS.get(type(result))
    if run_renderer is not None:
        message = run_renderer(result, host, shared_by, run_url)
    else:
        renderer = next((_RENDERERS[kind] for kind in type(result).__mro__ if kind in _RENDERERS), None)
        if renderer is None:  # pragma: no cover - every Result type has a renderer
            raise TypeError(type(result).__name__)
        message = renderer(result, host, shared_by)
    message["text"] = shorten(message["text"], MAX_FALLBACK)
    message["blocks"] = _fit(message["blocks"])
    return message


def _error(result: ErrorResult) -> Message:
    message = result.message[0].upper() + result.message[1:] if result.message else "Something went wrong"
    if not message.endswith((".", "?", "!")):
        message += "."
    return error_message(message, result.usage)


def _help(result: HelpResult) -> Message:
    return help_message(result.topic)


def _runs(result: RunsResult, host: str, shared_by: str | None) -> Message:
    command = result.command
    wanted = command.state_filter if command else None
    title = f"Runs in state {wanted.label}" if wanted else "Recent runs"
    lines = [_run_line(run) for run in result.runs]
    if not lines:
        lines = ["No runs" + (f" in state {escape(wanted.label)}." if wanted else " on this server.")]
    blocks = [section(f"*{escape(title)}* on {escape(host)}")]
    blocks += [section(chunk) for chunk in chunk_lines(lines)]
    blocks += actions(_next_button(command, result.next_page), _share_button(command))
    blocks += _footer(host, shared_by, result.notes)
    fallback = f"{title}: {len(result.runs)} shown" + (", more on the next page" if result.next_page else "")
    return {"text": fallback, "blocks": blocks}


def _run_line(run: RunSummary) -> str:
    """One run of a listing: its state, when it started and ended, and how long it took or has run so far."""
    line = f"{code(run.run_id, 80)}  *{escape(state_label(run.state))}*"
    if run.start_time:
        line += f"  started {slack_wes_time(run.start_time)}"
    if run.end_time:
        line += f", ended {slack_wes_time(run.end_time)}"
    took = duration(run.start_time, run.end_time, ended=is_terminal(run.state))
    if took:
        line += f" ({escape(took)})"
    if run.tags:
        tags = ", ".join(f"{k}={v}" for k, v in list(run.tags.items())[:5])
        line += f"  {code(tags, 120)}"
    return line


def _status(result: StatusResult, host: str, shared_by: str | None, run_url: str | None = None) -> Message:
    status = result.status
    state = escape(state_label(status.state))
    blocks = [section(f"Run {code(status.run_id, 120)} is *{state}*")]
    run_id = status.run_id
    blocks += actions(
        run_button("Details", f"details {run_id}"),
        run_button("Tasks", f"tasks {run_id}"),
        None if is_terminal(status.state) else run_button("Notify me when it ends", f"subscribe {run_id}"),
        None if is_terminal(status.state) else run_button("Cancel run…", f"cancel {run_id}"),
        _share_button(result.command),
        open_button(run_link(run_url, run_id)),
    )
    blocks += _footer(host, shared_by)
    return {"text": f"Run {escape(shorten(run_id, 120))} is {state}", "blocks": blocks}


def _log_field(label: str, value: str | None, lines: int = 10) -> list[Block]:
    """stdout/stderr: a link when it is a URL, the tail of the text when the server put the log inline.
    Nothing when the server gave none (None); "empty" for an empty log (``""``), which is not missing."""
    if value is None:
        return []
    if not value.strip():
        return [section(f"*{label}:* _empty_")]
    if is_url(value):
        return [section(f"*{label}:* {link(value, 'open ' + label)}")]
    if log_is_inline(value):
        tail, cut = sanitize_log_text(value, lines=lines, max_chars=1500)
        note = f" (last {lines} lines)" if cut else ""
        return [section(f"*{label}*{note}:\n{code_block(tail, 2000)}")]
    return [section(f"*{label}:* {code(value, 300)}")]


def _details(result: DetailsResult, host: str, shared_by: str | None, run_url: str | None = None) -> Message:
    """A run in full. A failed run says why right under its state (the reason lines of the failing stderr),
    and shows that stderr once: as the end of the failing log, not again as the run's stderr field."""
    run = result.run
    request, log = run.request, run.run_log
    workflow = " ".join(x for x in (request.workflow_type, request.workflow_type_version) if x) or "—"
    tasks = "unknown" if result.task_count is None else str(result.task_count) + ("+" if result.task_count_more else "")
    pairs = [
        ("State", escape(state_with_exit(run.state, log.exit_code))),
        ("Workflow type", escape(workflow)),
        ("Started", slack_wes_time(log.start_time)),
        ("Ended", slack_wes_time(log.end_time)),
        ("Duration", escape(duration(log.start_time, log.end_time, ended=is_terminal(run.state)) or "—")),
        ("Tasks", tasks),
    ]
    blocks = [header(f"Run {run.run_id}"), fields_section(pairs)]
    reasons = result.log_tail.reasons if result.log_tail is not None else ()
    if reasons:
        blocks.append(section("\n".join(why_lines(reasons))))
    if request.workflow_url:
        url = request.workflow_url
        blocks.append(section(f"*Workflow:* {link(url, shorten(url, 200)) if is_url(url) else code(url, 300)}"))
    if request.tags:
        tags = ", ".join(f"{k}={v}" for k, v in request.tags.items())
        blocks.append(section(f"*Tags:* {code(tags, 1000)}"))
    if request.workflow_params not in (None, {}, ""):
        params, cut = compact_json(request.workflow_params, 1500)
        note = " (shortened)" if cut else ""
        blocks.append(section(f"*Parameters*{note}:\n{code_block(params, 2000)}"))
    blocks += _command_blocks(log.cmd, f"command {run.run_id}")
    blocks += _log_field("stdout", log.stdout)
    shown_below = result.log_what is not None and result.log_tail is not None and is_run_log(result.log_what,
                                                                                              run.run_id)
    if not shown_below:
        blocks += _log_field("stderr", log.stderr)
    blocks += outputs_blocks(run.outputs)
    more_logs = None
    if result.log_what:
        blocks += log_tail_blocks(result.log_what, result.log_tail, result.log_error)
        more_logs = run_button("Show more logs", f"logs {run.run_id}" + (
            f" {result.log_task_id}" if result.log_task_id else ""))
    blocks += actions(
        more_logs,
        run_button("Tasks", f"tasks {run.run_id}"),
        run_button("Status", f"status {run.run_id}"),
        None if is_terminal(run.state) else run_button("Notify me when it ends", f"subscribe {run.run_id}"),
        None if is_terminal(run.state) else run_button("Cancel run…", f"cancel {run.run_id}"),
        _share_button(result.command),
        open_button(run_link(run_url, run.run_id)),
    )
    blocks += _footer(host, shared_by)
    fallback = f"Run {escape(shorten(run.run_id, 120))}: {escape(state_with_exit(run.state, log.exit_code))}"
    if reasons:
        fallback += f": {escape(shorten(reasons[0], 200))}"
    return {"text": fallback, "blocks": blocks}


# A command line longer than this is shown shortened in its middle: the program and its first options, and
# its end (often the files it reads and writes).
COMMAND_SHOWN = 600


# The whole command line (/wes command) in pieces of this many characters, each a code block, and at most
# this many pieces: beyond that, the terminal prints it.
COMMAND_PIECE = 2800
COMMAND_PIECES = 12


def _command_blocks(cmd: list[str], whole: str | None) -> list[Block]:
    """A task's or a run's command line; a long one shortened in its middle, with a button that shows it whole
    (``whole``: the ``command`` subcommand that does; None when the task has no id to name)."""
    text = " ".join(cmd)
    if not text.strip():
        return []
    shown, cut = shorten_middle(" ".join(text.split()), COMMAND_SHOWN)
    if not cut:
        return [section(f"*Command:*\n{code_block(shown, COMMAND_SHOWN + 200)}")]
    blocks = [section(f"*Command* (shortened in the middle from {len(text):,} characters):\n"
                      f"{code_block(shown, COMMAND_SHOWN + 200)}")]
    return blocks + actions(run_button("Whole command", whole) if whole else None)


def _command_line(result: CommandLineResult, host: str, shared_by: str | None) -> Message:
    """``/wes command``: the whole command line, in as many code blocks as it takes, up to COMMAND_PIECES."""
    text = " ".join(result.cmd)
    whose = f"task {code(result.task_id, 120)} of run " if result.task_id else "run "
    title = f"Command line of {whose}{code(result.run_id, 120)}"
    if not text.strip():
        blocks = [section(f"{title}: _the server gives none._")]
    else:
        pieces = [text[i: i + COMMAND_PIECE] for i in range(0, len(text), COMMAND_PIECE)]
        blocks = [section(f"{title} ({len(text):,} characters):")]
        blocks += [section(code_block(piece, COMMAND_PIECE + 200)) for piece in pieces[:COMMAND_PIECES]]
        if len(pieces) > COMMAND_PIECES:
            rest = len(text) - COMMAND_PIECE * COMMAND_PIECES
            terminal = f"wesbot ask command {result.run_id}" + (f" {result.task_id}" if result.task_id else "")
            blocks.append(context(f"_…and {rest:,} more characters, more than one Slack message holds: "
                                  f"{code(terminal, 600)} prints it whole._"))
    blocks += actions(_share_button(result.command))
    blocks += _footer(host, shared_by)
    return {"text": f"Command line of {whose}{escape(shorten(result.run_id, 120))}", "blocks": blocks}


def _timeline(result: TimelineResult, host: str, shared_by: str | None) -> Message:
    """``/wes timeline``: what the picture shows, in words. Its text is the picture's comment when it is posted
    (``shared_by``); to whoever asked alone, it offers to post the picture, which Slack cannot show to one person."""
    run, picture, tasks = result.run, result.picture, result.read.tasks
    state = escape(state_with_exit(run.state, run.run_log.exit_code))
    head = f":bar_chart: Timeline of run {code(run.run_id, 120)} (*{state}*)"
    if not tasks:
        lines = [f"{head}: the server gives no tasks for this run, so there is nothing to draw."]
    else:
        count = f"{len(tasks):,}{'' if result.read.complete else '+'} task{'' if len(tasks) == 1 else 's'}"
        drawn = "none has a start time, so none can be drawn"
        if picture.bars:
            per = " (one per task name)" if picture.grouped else ""
            drawn = f"drawn as {picture.bars} bar{'' if picture.bars == 1 else 's'}{per}"
        lines = [f"{head}: {count}, {drawn}."]
    if picture.untimed:
        more = f" and {picture.untimed_more} more" if picture.untimed_more else ""
        lines.append("Not drawn, no start time: " + ", ".join(code(name, 60) for name in picture.untimed) + more + ".")
    if picture.hidden:
        lines.append(f"{picture.hidden} group{'' if picture.hidden == 1 else 's'} not shown: the picture keeps the "
                     f"{picture.bars} longest.")
    note = cut_note(result.read)
    if note:
        lines.append(escape(note))
    blocks = [section("\n".join(lines))]
    command = result.command
    if command is not None and not command.share:
        blocks.append(context("_Slack cannot show a picture to you alone: posting it shows it to the channel._"))
        blocks += actions(button("Post the picture in the channel", ACTION_SHARE, command.text()))
    blocks += _footer(host, shared_by)
    text = "\n".join(lines + ([f"Shared by <@{shared_by}>"] if shared_by else []))
    return {"text": text, "blocks": blocks}


def log_tail_blocks(what: str, tail: LogTail | None, error: str | None) -> list[Block]:
    """The end of a log, in a code block; or where it is, or why it cannot be shown."""
    title = what[0].upper() + what[1:]
    if tail is None:
        return [context(f":warning: {escape(error or 'no log')}")]
    if tail.source == "path" or (not tail.text and tail.note):
        where = f" {code(tail.location, 300)}" if tail.location else ""
        return [section(f"*{escape(title)}*:{where}\n_{escape(tail.note or '')}_")]
    last = " (the end)" if tail.truncated else ""
    if not tail.text:  # an empty log: say so, it is not a log that is missing
        blocks = [section(f"*{escape(title)}*: _empty_")]
    else:
        blocks = [section(f"*{escape(title)}*{last}:\n{code_block(tail.text, MAX_SECTION - 200)}")]
    notes = [escape(tail.note)] if tail.note else []
    if tail.location and is_url(tail.location):
        notes.append(link(tail.location, "full log"))
    if notes:
        blocks.append(context(" · ".join(notes)))
    return blocks


def _logs(result: LogsResult, host: str, shared_by: str | None) -> Message:
    command = result.command
    blocks = log_tail_blocks(result.what, result.tail, None)
    other = "stdout" if result.stream == "stderr" else "stderr"
    target = f"logs {result.run_id}" + (f" {result.task_id}" if result.task_id else "") + f" {other}"
    blocks += actions(run_button(f"Show {other}", target), run_button("Details", f"details {result.run_id}"),
                      _share_button(command))
    blocks += _footer(host, shared_by)
    return {"text": escape(shorten(result.what[0].upper() + result.what[1:], 200)), "blocks": blocks}


def _task_line(task: Log, run_terminal: bool) -> str:
    name = task.name or task.id or "(unnamed)"
    line = f"{code(name, 80)}"
    if task.id and task.id != name:
        line += f" id {code(task.id, 60)}"
    line += f"  *{escape(task_state(task, run_terminal=run_terminal))}*"
    if task.start_time:
        line += f"  {slack_wes_time(task.start_time)}"
    if task.end_time:
        line += f" → {slack_wes_time(task.end_time)}"
    return line


def _tasks(result: TasksResult, host: str, shared_by: str | None) -> Message:
    command = result.command
    failed = bool(command and command.only_failed)
    title = f"{'Failed tasks' if failed else 'Tasks'} of run {code(result.run_id, 120)}"
    lines = [_task_line(task, result.run_terminal) for task in result.tasks]
    if not lines:
        lines = ["No failed tasks." if failed else "No tasks reported for this run."]
    notes = list(result.notes)
    if result.source == "inline":
        notes.append("This server has no task endpoint (WES 1.0); these tasks come from the run log.")
    blocks = [section(title)] + [section(chunk) for chunk in chunk_lines(lines)]
    blocks += actions(_next_button(command, result.next_page), _share_button(command))
    blocks += _footer(host, shared_by, notes)
    return {"text": f"{len(result.tasks)} tasks of run {escape(shorten(result.run_id, 120))}", "blocks": blocks}


def _task(result: TaskResult, host: str, shared_by: str | None) -> Message:
    task = result.task
    name = task.name or task.id or "(unnamed)"
    state = task_state(task, run_terminal=result.run_terminal)
    pairs = [
        ("Task id", escape(task.id or "—")),
        ("State", escape(state)),
        ("Started", slack_wes_time(task.start_time)),
        ("Ended", slack_wes_time(task.end_time)),
        ("Duration", escape(duration(task.start_time, task.end_time,
                                     ended=not task_running(task, result.run_terminal)) or "—")),
    ]
    if task.tes_uri:
        pairs.append(("TES task", link(task.tes_uri, "open") if is_url(task.tes_uri) else code(task.tes_uri)))
    blocks = [section(f"Task {code(name, 120)} of run {code(result.run_id, 120)}"), fields_section(pairs)]
    blocks += _command_blocks(task.cmd, f"command {result.run_id} {task.id}" if task.id else None)
    blocks += _log_field("stdout", task.stdout)
    blocks += _log_field("stderr", task.stderr)
    if task.system_logs:
        logs, _ = sanitize_log_text("\n".join(task.system_logs), lines=10, max_chars=1500)
        blocks.append(section(f"*System logs:*\n{code_block(logs, 2000)}"))
    blocks += actions(run_button("All tasks", f"tasks {result.run_id}"), _share_button(result.command))
    blocks += _footer(host, shared_by)
    return {"text": f"Task {escape(shorten(name, 120))}: {escape(state)}", "blocks": blocks}


def cancel_message(view: CancelView) -> Message:
    """Each step of a cancel, as the canceller sees it (ephemeral)."""
    run = code(view.run_id, 120)
    state = escape(state_label(view.state))
    if view.stage == "prompt":
        facts = [f"*State:* {state}"]
        if view.workflow:
            facts.append(f"*Workflow:* {code(view.workflow, 200)}")
        if view.running_for:
            facts.append(f"*Running:* {escape(view.running_for)}")
        facts.append(f"*Who may cancel:* {view.who_may}")
        confirm = {
            "title": {"type": "plain_text", "text": "Cancel this run?"},
            "text": {"type": "plain_text",
                     "text": f"Run {shorten(view.run_id, 100)} will be cancelled on the WES server. "
                             "It cannot be undone."},
            "confirm": {"type": "plain_text", "text": "Cancel the run"},
            "deny": {"type": "plain_text", "text": "Keep it running"},
            "style": "danger",
        }
        cancel = button("Cancel run", ACTION_CANCEL, f"cancel {view.run_id}", style="danger")
        if cancel is not None:
            cancel["confirm"] = confirm
        blocks = [section(f":octagonal_sign: Cancel run {run}?\n" + "\n".join(facts))]
        blocks += actions(cancel, button("Keep running", ACTION_KEEP, f"status {view.run_id}"))
        return {"text": f"Cancel run {escape(shorten(view.run_id, 120))}?", "blocks": blocks}
    when = f" at {slack_time(view.at)}" if view.at else ""
    text = {
        "denied": f":no_entry: You may not cancel runs. Who may: {view.who_may}. Nothing was sent to the WES server.",
        "already-finished": f"Run {run} has already ended: *{state}*. Nothing to cancel.",
        "already-requested": f"<@{view.by_user}> already requested cancellation of run {run}{when}. "
                             "Nothing more was sent to the WES server.",
        "requested": f":octagonal_sign: Cancellation of run {run} requested (it was *{state}*). "
                     "wesbot follows it and will say how it ends.",
        "wes-error": f":warning: The cancel was not sent: {escape(view.detail or 'the WES server failed')}.",
        "kept": f"Run {run} keeps running. Nothing was sent to the WES server.",
    }.get(view.stage, escape(view.stage))
    if view.stage == "requested" and view.channel_error:
        text += (f"\n_wesbot could not tell the channel ({escape(view.channel_error)}); "
                 "you will get the outcome here instead._")
    return {"text": text, "blocks": [section(text)]}


def _audit(result: AuditResult) -> Message:
    if not result.rows:
        where = " in this channel" if result.channel_id else ""
        text = f"No cancel attempts recorded{where}" + (f" for run {code(result.run_id)}." if result.run_id else ".")
        return {"text": text, "blocks": [section(text)]}
    lines = []
    for row in result.rows:
        status = f" ({row.wes_status})" if row.wes_status else ""
        lines.append(f"{slack_time(row.at)}  <@{row.user_id}>  {code(row.run_id, 80)}  "
                     f"was {escape(row.state_before or '?')} → *{escape(row.outcome)}*{status}")
    title = ("Cancel attempts" + (" in this channel" if result.channel_id else "")
             + (f" for run {code(result.run_id)}" if result.run_id else " (most recent first)"))
    blocks = [section(f"*{title}*")] + [section(chunk) for chunk in chunk_lines(lines)]
    return {"text": f"{len(result.rows)} cancel attempts", "blocks": blocks}


def _subscribe(result: SubscribeResult) -> Message:
    run = code(result.run_id, 120)
    state = escape(state_label(result.state))
    if result.already_ended:
        exit_code = f" (exit {result.exit_code})" if result.exit_code not in (None, -1) else ""
        text = f"Run {run} has already ended: *{state}*{exit_code}. Nothing to watch."
    elif result.created:
        text = (f":bell: Watching run {run} (now *{state}*). wesbot will post in this channel when it ends, "
                "and mention you.")
    elif result.added_user:
        text = f":bell: Added you to the watchers of run {run} in this channel (now *{state}*)."
    else:
        text = f"You are already watching run {run} in this channel (now *{state}*)."
    if result.deadline_after is not None and not result.already_ended:
        text += (f" If it has not ended {duration_text(result.deadline_after)} after it started, the channel hears "
                 "it once, in the run's thread.")
    return {"text": text, "blocks": [section(text)]}


def _unsubscribe(result: UnsubscribeResult) -> Message:
    run = code(result.run_id, 120)
    text = {
        "not_subscribed": f"You are not watching run {run} in this channel.",
        "user_removed": f"You no longer watch run {run}; others in this channel still do.",
        "subscription_removed": f"Nobody here watches run {run} any more: wesbot stopped watching it in this channel.",
    }.get(result.outcome, result.outcome)
    return {"text": text, "blocks": [section(text)]}


MAX_SUBSCRIPTION_ROWS = 40


def _watch(result: WatchResult) -> Message:
    """A watch set or removed is told to the channel (who did it, what it will hear); else only to who asked."""
    what = escape(result.description)
    who = mentions((result.by_user,) if result.by_user else ()) or "Someone"
    late = bool(result.command and result.command.watch_kind in LATE_KINDS)
    since = ("the runs already past it come in one message" if late else
             "runs that already ended are not announced")
    if result.action == "watch" and result.changed:
        text = (f":eyes: {who} set a channel watch: this channel will hear about {what}, from now on ({since}). "
                f"To stop it: `/wes un{escape(_unwatch_text(result.command))}`.")
    elif result.action == "watch":
        text = f"This channel already hears about {what}."
    elif result.changed:
        text = f":no_bell: {who} removed the channel watch: this channel no longer hears about {what}."
    else:
        text = f"This channel had no watch for {what}."
    return {"text": text, "blocks": [section(text)]}


def _unwatch_text(command: Command | None) -> str:
    """The command that removes a watch: its kind and tag, without a duration."""
    if command is None:
        return "watch failed"
    return dataclasses.replace(command, after=None).text()


def _subscriptions(result: SubscriptionsResult, host: str) -> Message:
    subs = result.subscriptions
    if not subs and not result.watches and result.report is None:
        text = ("No runs are watched in this channel. `/wes subscribe RUN_ID` watches one; "
                "`/wes watch failed` watches every run that fails.")
        return {"text": text, "blocks": [section(text)]}
    blocks: list[Block] = _report_row(result.report) + _watch_rows(result.watches)
    if not subs:
        blocks.append(context(f"WES server: {escape(host)}"))
        return {"text": f"{len(result.watches)} channel-wide watches", "blocks": blocks}
    blocks.append(section(f"*{len(subs)} run{'s' if len(subs) != 1 else ''} watched in this channel*"))
    rows = min(MAX_SUBSCRIPTION_ROWS, MAX_BLOCKS - len(blocks) - 2)  # room for "…and N more" and the footer
    for sub in subs[:rows]:
        since = slack_time(sub.created_at)
        who = mentions(sub.users)
        state = f"*{escape(sub.state or '(not polled yet)')}*"
        state += (" at the last poll" if sub.failing_since is None else
                  f" when last read; cannot reach the WES server since {slack_time(sub.failing_since)}")
        line = f"{code(sub.run_id, 80)}  {state}\nsince {since}, by {who or 'nobody'}"
        block = section(line)
        unsubscribe = button("Unsubscribe me", f"{ACTION_RUN}:unsubscribe", f"unsubscribe {sub.run_id}")
        if unsubscribe is not None:
            block["accessory"] = unsubscribe
        blocks.append(block)
    if len(subs) > rows:
        blocks.append(context(f"…and {len(subs) - rows} more."))
    blocks.append(context(f"WES server: {escape(host)}"))
    return {"text": f"{len(subs)} runs watched in this channel", "blocks": blocks}


def _report_row(schedule: ReportSchedule | None) -> list[Block]:
    """The channel's scheduled report, with the button that stops it."""
    if schedule is None:
        return []
    block = section(f":calendar: {escape(schedule.describe())}, next {slack_time(schedule.next_at)}, set by "
                    f"{mentions((schedule.set_by,)) or 'someone'}")
    stop = button("Stop the report", f"{ACTION_RUN}:report", "report off")
    if stop is not None:
        block["accessory"] = stop
    return [block]


def _report(result: ReportResult, host: str, shared_by: str | None) -> Message:
    message = report_message(result.report, host=host)
    blocks = message["blocks"] + actions(_share_button(result.command)) + _footer(host, shared_by)
    return {"text": message["text"], "blocks": blocks}


def _report_schedule(result: ReportScheduleResult) -> Message:
    """A report schedule set or removed is told to the channel."""
    who = mentions((result.by_user,) if result.by_user else ()) or "Someone"
    schedule = result.schedule
    if schedule is not None:
        text = (f":calendar: {who} scheduled the report for this channel: {escape(schedule.schedule.text())} "
                f"({escape(schedule.tz)}), the runs of the {'day' if schedule.schedule.kind == 'daily' else 'week'} "
                f"before; next {slack_time(schedule.next_at)}. To stop it: `/wes report off`.")
    elif result.removed:
        text = f":calendar: {who} stopped this channel's scheduled report."
    else:
        text = "This channel has no scheduled report."
    return {"text": text, "blocks": [section(text)]}


MAX_WATCH_ROWS = 8  # of /wes subscriptions' blocks, before the subscriptions


def _watch_rows(watches: list[ChannelWatch]) -> list[Block]:
    """The channel-wide watches, one row each with its Unwatch button (the very command that removes it)."""
    if not watches:
        return []
    blocks = [section(f"*{len(watches)} channel-wide watch{'es' if len(watches) != 1 else ''}*")]
    for watch in watches[:MAX_WATCH_ROWS]:
        who = mentions((watch.created_by,)) or "someone"
        block = section(f":eyes: {escape(watch.describe())}\nsince {slack_time(watch.created_at)}, set by {who}")
        remove = Command(name="unwatch", watch_kind=watch.kind,
                         tag=(watch.tag_key, watch.tag_value) if watch.tag_key else None).text()
        unwatch = button("Unwatch", f"{ACTION_RUN}:unwatch", remove)
        if unwatch is not None:
            block["accessory"] = unwatch
        blocks.append(block)
    if len(watches) > MAX_WATCH_ROWS:
        blocks.append(context(f"…and {len(watches) - MAX_WATCH_ROWS} more."))
    return blocks


MAX_SERVER_ROWS = 40  # one section each, within MAX_BLOCKS with the title and the footer


def _servers(result: ServersResult) -> Message:
    rows = result.servers
    reachable = sum(1 for row in rows if row.reachable)
    title = f"*{len(rows)} WES server{'s' if len(rows) != 1 else ''}*, {reachable} reachable"
    blocks: list[Block] = [section(title)]
    for row in rows[:MAX_SERVER_ROWS]:
        mark = "✅" if row.reachable else "❌"
        line = f"{mark} *{escape(row.name)}*{' (default here)' if row.is_default else ''}  {code(row.host, 120)}"
        if row.reachable:
            details = [f"{label}: {escape(text)}" for label, text in server_facts(row)]
            line += "\n" + ("\n".join(details) if details else "reachable; GET /service-info said little")
        else:
            line += "\nunreachable: " + escape(row.error or "no answer")
        blocks.append(section(line))
    if len(rows) > MAX_SERVER_ROWS:
        blocks.append(context(f"…and {len(rows) - MAX_SERVER_ROWS} more."))
    if not any(row.is_default for row in rows):
        blocks.append(context("No server is this channel's default."))
    for line in result.held[:5]:
        blocks.append(context(":package: In the database, no longer configured: " + escape(line)))
    return {"text": f"{len(rows)} WES servers, {reachable} reachable", "blocks": blocks}


def _choose_server(result: ChooseServerResult) -> Message:
    """Which server: one button per server, each running the same command there."""
    command = result.command
    run_id = command.run_id if command else None
    if run_id and result.found_on:
        why = f"Run {code(run_id, 80)} is in the recent runs of {_names(result.found_on)}."
    elif run_id:
        why = f"Run {code(run_id, 80)} is not in the recent runs of any server."
    else:
        why = "This channel has no default WES server."
    if result.unreadable:
        why += f" Could not read the runs of {_names(result.unreadable)}."
    blocks: list[Block] = [section(f"*Which WES server?* {why}")]
    if command is not None:
        buttons = [button(name, f"{ACTION_RUN}:{command.name}:{name}", command.text(server=name))
                   for name in (result.found_on or result.servers)]
        blocks += actions(*buttons)
    blocks.append(context("Add `--server NAME` to a command, or set this channel's default with `/wes use NAME`."))
    return {"text": "Which WES server?", "blocks": blocks}


def _names(names: list[str]) -> str:
    return ", ".join(f"*{escape(name)}*" for name in names[:10]) + (" and more" if len(names) > 10 else "")


def _use(result: UseResult) -> Message:
    """The channel's default server: announced in the channel when it changed, else answered to who asked."""
    if result.server is None:
        text = ("This channel has no default WES server; commands ask which one, unless they name it with "
                f"`--server NAME`. Set one with `/wes use NAME` ({_names(result.servers)}).")
    elif result.changed:
        text = (f"<@{result.set_by}> made *{escape(result.server)}* ({code(result.host or '', 120)}) this "
                "channel's WES server: commands here go to it unless they name another with `--server NAME`.")
    else:
        who = f"set by <@{result.set_by}>" if result.set_by else "from the configuration file"
        text = f"This channel's WES server is *{escape(result.server)}* ({code(result.host or '', 120)}), {who}."
    return {"text": text, "blocks": [section(text)]}


# The lookups of one run, which carry its Open button: called as (result, host, shared_by, run_url).
_RUN_RENDERERS: dict[type[Result], Callable[[Any, str, str | None, str | None], Message]] = {
    StatusResult: _status,
    DetailsResult: _details,
}

# Result type -> its renderer, each called as (result, host, shared_by).
_RENDERERS: dict[type[Result], Callable[[Any, str, str | None], Message]] = {
    ErrorResult: lambda r, host, shared_by: _error(r),
    HelpResult: lambda r, host, shared_by: _help(r),
    RunsResult: _runs,
    StatusResult: _status,
    DetailsResult: _details,
    TasksResult: _tasks,
    TaskResult: _task,
    LogsResult: _logs,
    CommandLineResult: _command_line,
    TimelineResult: _timeline,
    CancelResult: lambda r, host, shared_by: cancel_message(r.view),
    AuditResult: lambda r, host, shared_by: _audit(r),
    SubscribeResult: lambda r, host, shared_by: _subscribe(r),
    UnsubscribeResult: lambda r, host, shared_by: _unsubscribe(r),
    SubscriptionsResult: lambda r, host, shared_by: _subscriptions(r, host),
    WatchResult: lambda r, host, shared_by: _watch(r),
    ReportResult: _report,
    ReportScheduleResult: lambda r, host, shared_by: _report_schedule(r),
    ServersResult: lambda r, host, shared_by: _servers(r),
    ChooseServerResult: lambda r, host, shared_by: _choose_server(r),
    UseResult: lambda r, host, shared_by: _use(r),
}
