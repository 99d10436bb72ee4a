"""The report (``/wes report``, and the scheduled one) as a Slack message. Pure.

What ended by state first, then the failures (run, workflow, when, the line that says why) as far as they fit,
the longest runs, and what is active now with how long each has been running. Then what could not be read.
"""

from __future__ import annotations

from ..format import human_duration
from ..report import Report, ReportRun
from .blocks import Block, Message, chunk_lines, code, context, escape, header, section, slack_time
from .cards import state_icon
from .owners import owner_mention

MAX_FAILURE_LINES = 15
MAX_SECTIONS = 6


def report_message(report: Report, *, host: str, title: str | None = None) -> Message:
    """The report of ``report.since`` to ``report.until`` on ``host``."""
    span = "week" if report.until - report.since > 2 * 86400 else "day"
    head = title or f"The last {span} on {host}"
    total = sum(report.ended.values())
    blocks: list[Block] = [header(head[:150]),
                           context(f"{slack_time(report.since)} to {slack_time(report.until)} · WES server: "
                                   f"{escape(host)}")]
    blocks.append(section(_counts(report, total)))
    blocks += _failures(report)
    blocks += _listing("*Longest runs*", report.longest, report.until)
    blocks += _listing(f"*Active now* ({report.active_count})", report.active, report.until,
                       more=report.active_count - len(report.active))
    notes = _notes(report)
    if notes:
        blocks.append(context(" ".join(notes)))
    failed = report.failed_count
    text = f"{head}: {total} runs ended, {failed} failed; {report.active_count} active"
    return {"text": escape(text), "blocks": blocks}


def _counts(report: Report, total: int) -> str:
    if not total:
        return "*No run ended in this window.*"
    parts = [f"{state_icon(state, None)} {escape(state)} {count}"
             for state, count in sorted(report.ended.items(), key=lambda item: -item[1])]
    return f"*{total} runs ended:* " + " · ".join(parts)


def _failures(report: Report) -> list[Block]:
    if not report.failures:
        return []
    lines = []
    for run in report.failures[:MAX_FAILURE_LINES]:
        when = f" at {slack_time(run.end)}" if run.end is not None else ""
        workflow = f" `{escape(run.workflow[:80])}`" if run.workflow else ""
        why = f" — {code(run.reason, 160)}" if run.reason else ""
        owner = owner_mention(run.owner)
        by = f", started by {owner}" if owner else ""
        lines.append(f"• {code(run.run_id, 80)}{workflow} *{escape(run.state)}*{when}{by}{why}")
    if len(report.failures) > MAX_FAILURE_LINES:
        lines.append(f"…and {len(report.failures) - MAX_FAILURE_LINES} more (`/wes runs failed` lists them).")
    chunks = chunk_lines([f"*Failures* ({len(report.failures)})", *lines])
    return [section(chunk) for chunk in chunks[:MAX_SECTIONS]]


def _listing(title: str, runs: list[ReportRun], now: float, *, more: int = 0) -> list[Block]:
    if not runs:
        return []
    lines = [title]
    for run in runs:
        seconds = run.seconds(now)
        took = f" {human_duration(seconds)}" if seconds is not None else ""
        lines.append(f"• {code(run.run_id, 80)} *{escape(run.state)}*{took}")
    if more > 0:
        lines.append(f"…and {more} more (`/wes runs active` lists them).")
    return [section(chunk) for chunk in chunk_lines(lines)[:MAX_SECTIONS]]


def _notes(report: Report) -> list[str]:
    notes = []
    if report.cut is not None:
        notes.append(f"_The run list was read only in part ({report.listed:,} runs, stopped at its "
                     f"{escape(report.cut)} bound): older runs are not counted._")
    if report.undated:
        notes.append(f"_{report.undated:,} ended runs are listed without an end time and could not all be read: "
                     "they are not counted._")
    return notes
