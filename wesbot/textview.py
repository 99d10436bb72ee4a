"""Render command results as plain text for the terminal (``wesbot ask``). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .commands import (
    SUBCOMMANDS,
    TERMINAL_OPTIONS,
    grouped,
    on_terminal,
    runs_on_terminal,
    subcommand,
    terminal_options,
)
from .format import (
    compact_json,
    duration,
    human_duration,
    local_epoch,
    local_time,
    log_is_inline,
    server_facts,
    shorten,
    state_with_exit,
    task_state,
)
from .outcome import task_running
from .results import (
    AuditResult,
    CancelResult,
    ChooseServerResult,
    CommandLineResult,
    DetailsResult,
    ErrorResult,
    HelpResult,
    LogsResult,
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
from .runtimeline import cut_note
from .wes.logs import sanitize_log_text, sanitize_text
from .wes.models import Log, RunSummary, is_terminal, state_label


def _clean(text: object) -> str:
    """Terminal-safe: no escape sequences from WES reach the operator's terminal."""
    return sanitize_text(str(text))


def _log(label: str, value: str | None) -> list[str]:
    """A stdout/stderr field: nothing when the server gave none, "(empty)" for an empty log (``""``)."""
    if value is None:
        return []
    if not value.strip():
        return [f"{label}: (empty)"]
    if log_is_inline(value):
        tail, cut = sanitize_log_text(value, lines=10, max_chars=4000)
        return [f"{label}{' (last 10 lines)' if cut else ''}:", *("  " + line for line in tail.splitlines())]
    return [f"{label}: {_clean(value)}"]


def render_text(result: Result, *, host: str) -> str:
    """The terminal text for ``result``: one renderer per result type, found through the type's MRO so that
    a subclass of a result renders like its base."""
    for cls in type(result).__mro__:
        renderer = _RENDERERS.get(cls)
        if renderer is not None:
            return "\n".join(renderer(result))
    raise TypeError(type(result).__name__)  # pragma: no cover


def _next_hint(result: RunsResult | TasksResult) -> str:
    assert result.command is not None and result.next_page is not None
    return "wesbot ask " + result.command.text(page_token=result.next_page.page_token, skip=result.next_page.skip)


# The widest a column of a terminal table gets (longer cells are shortened); the last column is never cut.
MAX_COLUMN = 40


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A table with a header row and fixed columns, two spaces apart, each as wide as its widest cell (at most
    MAX_COLUMN): what a person scans. Scripts use --json."""
    widths = [min(MAX_COLUMN, max(len(row[i]) for row in [header, *rows])) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [shorten(cell, width).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


RUN_COLUMNS = ["RUN", "STATE", "STARTED", "ENDED", "TOOK", "TAGS"]


def _run_row(run: RunSummary) -> list[str]:
    """One run of a listing: id, state, start, end (local time), how long it took or has run so far, tags."""
    start, end = run.start_time, run.end_time
    tags = _clean(" ".join(f"{k}={v}" for k, v in run.tags.items())) if run.tags else ""
    return [_clean(run.run_id), _clean(state_label(run.state)), local_time(start) if start else "-",
            local_time(end) if end else "-", duration(start, end, ended=is_terminal(run.state)) or "-", tags]


def _tail_lines(text: str) -> list[str]:
    """The lines of a log's end, indented; "(empty)" for an empty log, which is not a missing one."""
    return ["  " + line for line in text.splitlines()] or ["  (empty)"]


TASK_COLUMNS = ["TASK", "ID", "STATE", "STARTED", "ENDED"]


def _task_row(task: Log, run_terminal: bool) -> list[str]:
    return [_clean(task.name or "(unnamed)"), _clean(task.id or "-"), task_state(task, run_terminal=run_terminal),
            local_time(task.start_time), local_time(task.end_time)]


def _details(result: DetailsResult) -> list[str]:
    run, req, log = result.run, result.run.request, result.run.run_log
    count = "unknown" if result.task_count is None else f"{result.task_count}{'+' if result.task_count_more else ''}"
    lines = [
        f"run:        {_clean(run.run_id)}",
        f"state:      {_clean(state_with_exit(run.state, log.exit_code))}",
        f"workflow:   {_clean(req.workflow_url or '—')}",
        f"type:       {_clean(' '.join(x for x in (req.workflow_type, req.workflow_type_version) if x) or '—')}",
        f"started:    {local_time(log.start_time)}",
        f"ended:      {local_time(log.end_time)}",
        f"duration:   {duration(log.start_time, log.end_time, ended=is_terminal(run.state)) or '—'}",
        f"tasks:      {count}",
    ]
    if req.tags:
        lines.append("tags:       " + _clean(", ".join(f"{k}={v}" for k, v in req.tags.items())))
    if req.workflow_params not in (None, {}, ""):
        params, _ = compact_json(req.workflow_params, 4000)
        lines += ["parameters:", *("  " + _clean(line) for line in params.splitlines())]
    if " ".join(log.cmd).strip():
        lines.append("command:    " + _clean(" ".join(log.cmd)))
    lines += _log("stdout", log.stdout) + _log("stderr", log.stderr)
    if run.outputs not in (None, {}, []):
        outputs, _ = compact_json(run.outputs, 4000)
        lines += ["outputs:", *("  " + _clean(line) for line in outputs.splitlines())]
    if result.log_what and result.log_tail is not None and result.log_tail.source != "inline":
        lines.append(f"{_clean(result.log_what)}:")
        lines += _tail_lines(result.log_tail.text)
    elif result.log_what and result.log_error:
        lines.append(f"{_clean(result.log_what)}: {_clean(result.log_error)}")
    return lines


def _task(task: Log, run_terminal: bool) -> list[str]:
    lines = [
        f"task:       {_clean(task.name or '(unnamed)')}",
        f"id:         {_clean(task.id or '—')}",
        f"state:      {task_state(task, run_terminal=run_terminal)}",
        f"started:    {local_time(task.start_time)}",
        f"ended:      {local_time(task.end_time)}",
        f"duration:   {duration(task.start_time, task.end_time, ended=not task_running(task, run_terminal)) or '—'}",
    ]
    if " ".join(task.cmd).strip():
        lines.append("command:    " + _clean(" ".join(task.cmd)))
    if task.tes_uri:
        lines.append("tes:        " + _clean(task.tes_uri))
    lines += _log("stdout", task.stdout) + _log("stderr", task.stderr)
    lines += ["system log: " + _clean(line) for line in task.system_logs[-10:]]
    return lines


def _error(result: ErrorResult) -> list[str]:
    lines = [f"error: {_clean(result.message)}"]
    if result.usage:
        lines.append(result.usage)
    return lines


def _help(result: HelpResult) -> list[str]:
    """``wesbot ask help``: what the terminal can do, under the headings of ``/wes help``, each as it is typed
    here; ``help NAME``: one subcommand in full (a Slack-only one says so)."""
    if result.topic is not None:
        sub = subcommand(result.topic)
        terminal = runs_on_terminal(sub.name)
        here, keys = (on_terminal(sub), terminal_options(sub)) if terminal else (sub, ())
        forms = here.usage.split(" | ")
        lines = [forms[0] + (f"   (alias: {', '.join(sub.aliases)})" if sub.aliases else ""), *forms[1:]]
        if not terminal:
            lines.append("    (in Slack only: it acts on the channel you type it in)")
        return lines + ["    " + sub.summary.replace("`", ""), "    Example: " + here.example,
                        *(f"    Option {key}: {TERMINAL_OPTIONS[key]}" for key in keys)]
    lines = ["On the terminal, wesbot ask runs the lookups (wesbot ask help COMMAND tells more about one):"]
    for title, subs in grouped(sub.name for sub in SUBCOMMANDS if runs_on_terminal(sub.name)):
        lines.append(title)
        for sub in map(on_terminal, subs):
            example = f"; e.g. {sub.example}" if sub.example != sub.usage else ""
            lines += [f"  {sub.usage}", f"      {sub.brief}" + (f" (alias: {', '.join(sub.aliases)})" if sub.aliases
                                                                else "") + example]
    lines += ["Options of wesbot ask:", *(f"  {key:<15}{text}" for key, text in TERMINAL_OPTIONS.items())]
    return lines + ["In Slack only: " + ", ".join(sub.name for sub in SUBCOMMANDS if not runs_on_terminal(sub.name))]


def _runs(result: RunsResult) -> list[str]:
    lines = table(RUN_COLUMNS, [_run_row(run) for run in result.runs]) if result.runs else ["no runs"]
    return lines + _page_footer(result)


def _status(result: StatusResult) -> list[str]:
    return [f"{_clean(result.status.run_id)}\t{_clean(state_label(result.status.state))}"]


def _tasks(result: TasksResult) -> list[str]:
    lines = (table(TASK_COLUMNS, [_task_row(task, result.run_terminal) for task in result.tasks])
             if result.tasks else ["no tasks"])
    if result.source == "inline":
        lines.append("(this server has no task endpoint; tasks come from the run log)")
    return lines + _page_footer(result)


def _page_footer(result: RunsResult | TasksResult) -> list[str]:
    """A listing's notes, then how to ask for its next page."""
    lines = [_clean(note) for note in result.notes]
    if result.next_page:
        lines.append(f"(more: {_next_hint(result)})")
    return lines


def _one_task(result: TaskResult) -> list[str]:
    return _task(result.task, result.run_terminal)


def _logs(result: LogsResult) -> list[str]:
    tail = result.tail
    lines = [f"{_clean(result.what)}{' (the end)' if tail.truncated else ''}:"]
    if tail.source == "path" or (not tail.text and tail.note):
        # Nothing to show but where the log is and why it was not read.
        return lines + [f"  {_clean(tail.location or '')}", f"  ({_clean(tail.note or '')})"]
    lines += _tail_lines(tail.text)
    if tail.note:
        lines.append(f"({_clean(tail.note)})")
    return lines


def _audit(result: AuditResult) -> list[str]:
    if not result.rows:
        return ["no cancel attempts recorded"]
    several = len({r.server for r in result.rows}) > 1
    header = ["WHEN", "USER", *(["SERVER"] if several else []), "RUN", "BEFORE", "OUTCOME", "DETAIL"]
    rows = [[local_epoch(r.at), _clean(r.user_id), *([_clean(r.server)] if several else []), _clean(r.run_id),
             _clean(r.state_before or "-"), r.outcome + (f" ({r.wes_status})" if r.wes_status else ""),
             _clean(r.detail or "")] for r in result.rows]
    return table(header, rows)


def _servers(result: ServersResult) -> list[str]:
    lines: list[str] = []
    for row in result.servers:
        mark = "ok " if row.reachable else "DOWN"
        lines.append(f"{mark}  {_clean(row.name)}{' (default)' if row.is_default else ''}\t{_clean(row.host)}")
        if row.reachable:
            lines += [f"      {label}: {_clean(text)}" for label, text in server_facts(row)]
        else:
            lines.append(f"      unreachable: {_clean(row.error or 'no answer')}")
    if result.servers and not any(row.is_default for row in result.servers):
        lines.append("(no default: name one with wesbot ask --server NAME)")
    lines += [f"kept in the database, no longer configured: {_clean(line)}" for line in result.held]
    return lines or ["no WES servers are configured"]


def _choose_server(result: ChooseServerResult) -> list[str]:
    command = result.command
    where = result.found_on or result.servers
    found = f"run {_clean(command.run_id)} is listed by {', '.join(where)}; " if command and command.run_id \
        and result.found_on else ""
    return [f"several WES servers: {found}name one with wesbot ask --server NAME ({', '.join(where)})"]


def _timeline(result: TimelineResult) -> list[str]:
    """What the picture shows, in words (drawing it: the untimed tasks and the groups left out come from it)."""
    run, picture, tasks = result.run, result.picture, result.read.tasks
    lines = [f"run:        {_clean(run.run_id)}",
             f"state:      {_clean(state_with_exit(run.state, run.run_log.exit_code))}"]
    if not tasks:
        return lines + ["tasks:      0 (the server gives no tasks for this run)"]
    per = " (one per task name)" if picture.grouped else ""
    lines.append(f"tasks:      {len(tasks)}{'' if result.read.complete else '+'}, drawn as {picture.bars} "
                 f"bar{'' if picture.bars == 1 else 's'}{per}")
    if picture.untimed:
        more = f" and {picture.untimed_more} more" if picture.untimed_more else ""
        lines.append(f"not drawn:  {_clean(', '.join(picture.untimed))}{more} (no start time)")
    if picture.hidden:
        lines.append(f"not shown:  {picture.hidden} group{'' if picture.hidden == 1 else 's'} (the picture keeps "
                     f"the {picture.bars} longest)")
    note = cut_note(result.read)
    return lines + ([_clean(note)] if note else [])


def _slack_only(result: Result) -> list[str]:
    """These subcommands act on a channel and a user, so they run in Slack only."""
    return [f"{type(result).__name__}: see Slack"]


# Each renderer takes exactly the result type it is filed under; Any because a dict cannot say so.
def _command_line(result: CommandLineResult) -> list[str]:
    """The whole command line, unshortened: the terminal is where a very long one can be read in full."""
    text = _clean(" ".join(result.cmd))
    return [text] if text.strip() else ["(the server gives no command line)"]


def _report(result: ReportResult) -> list[str]:
    report = result.report
    lines = [f"runs that ended from {local_epoch(report.since)} to {local_epoch(report.until)}: "
             f"{sum(report.ended.values())}"]
    lines += [f"  {_clean(state)}: {count}" for state, count in sorted(report.ended.items(), key=lambda i: -i[1])]
    if report.failures:
        lines += ["", "failures:"]
        lines += table(["RUN", "STATE", "ENDED", "WHY"], [
            [_clean(run.run_id), _clean(run.state), local_epoch(run.end), _clean(run.reason or "")]
            for run in report.failures])
    for title, runs in (("longest runs:", report.longest), (f"active now ({report.active_count}):", report.active)):
        if runs:
            lines += ["", title]
            lines += table(["RUN", "STATE", "TIME"], [
                [_clean(run.run_id), _clean(run.state), human_duration(run.seconds(report.until) or 0)]
                for run in runs])
    if report.cut is not None:
        lines.append(f"(the run list was read only in part: {report.listed} runs, the {report.cut} bound)")
    if report.undated:
        lines.append(f"({report.undated} ended runs are listed without an end time and were not counted)")
    return lines


_RENDERERS: dict[type[Result], Callable[[Any], list[str]]] = {
    ErrorResult: _error,
    HelpResult: _help,
    RunsResult: _runs,
    StatusResult: _status,
    DetailsResult: _details,
    TasksResult: _tasks,
    TaskResult: _one_task,
    LogsResult: _logs,
    CommandLineResult: _command_line,
    TimelineResult: _timeline,
    AuditResult: _audit,
    SubscribeResult: _slack_only,
    UnsubscribeResult: _slack_only,
    SubscriptionsResult: _slack_only,
    CancelResult: _slack_only,
    WatchResult: _slack_only,
    ReportResult: _report,
    ReportScheduleResult: _slack_only,
    ServersResult: _servers,
    ChooseServerResult: _choose_server,
    UseResult: _slack_only,
}
