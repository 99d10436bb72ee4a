"""What a command answers: one frozen dataclass per kind of answer, which the renderers consume.

:func:`wesbot.core.execute` returns one of these; ``wesbot.slack.replies`` turns it into a Slack message and
``wesbot.textview`` into terminal text. Pure data: no I/O, and nothing here talks to WES.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .cancel import CancelView
from .commands import Command
from .report import Report
from .runtimeline import RunTasks, draw_run
from .store.cancels import AuditRow
from .store.reports import ReportSchedule
from .store.subscriptions import Subscription
from .store.watches import ChannelWatch
from .timeline import Timeline
from .wes.logs import LogTail
from .wes.models import Log, RunLog, RunStatus, RunSummary, State


@dataclass(frozen=True, kw_only=True)
class Result:
    command: Command | None
    ok: bool = True

    @property
    def shareable(self) -> bool:
        """May ``--share`` (or a Share button) post this in the channel?"""
        return self.ok

    @property
    def announce(self) -> bool:
        """Is this posted in the channel whoever asked, because it changes what the whole channel hears (a
        channel-wide watch, the channel's default server)?"""
        return False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        data["kind"] = type(self).__name__.removesuffix("Result").lower()
        data.pop("command", None)
        return data


@dataclass(frozen=True, kw_only=True)
class ErrorResult(Result):
    ok: bool = False
    message: str
    usage: str | None = None
    # "usage" (the command text), "wes" (the server), "slack" (wesbot cannot post in the channel),
    # "internal" (a bug in wesbot; see the logs)
    kind: str = "wes"


@dataclass(frozen=True, kw_only=True)
class HelpResult(Result):
    topic: str | None = None


@dataclass(frozen=True, kw_only=True)
class NextPage:
    """Where the next page starts: a server page token and how many of its items were already shown."""

    page_token: str | None
    skip: int = 0


@dataclass(frozen=True, kw_only=True)
class RunsResult(Result):
    runs: list[RunSummary]
    next_page: NextPage | None = None
    pages_read: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class StatusResult(Result):
    status: RunStatus


@dataclass(frozen=True, kw_only=True)
class DetailsResult(Result):
    run: RunLog
    # None when the number of tasks could not be told (the server lists them elsewhere, paged).
    task_count: int | None = None
    task_count_more: bool = False
    # For a failed run: the end of the first failed task's stderr (or the run's), or why it is missing.
    log_what: str | None = None
    log_tail: LogTail | None = None
    log_error: str | None = None
    log_task_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class TasksResult(Result):
    run_id: str
    tasks: list[Log]
    next_page: NextPage | None = None
    source: str = "endpoint"
    notes: list[str] = field(default_factory=list)
    # Whether the run had ended, which decides what a task without an end time means (outcome.py). Only
    # asked of the server when a task shown depends on it; False otherwise.
    run_terminal: bool = False


@dataclass(frozen=True, kw_only=True)
class TaskResult(Result):
    run_id: str
    task: Log
    run_terminal: bool = False  # as in TasksResult


@dataclass(frozen=True, kw_only=True)
class LogsResult(Result):
    run_id: str
    task_id: str | None
    stream: str
    # "stderr of task align", "stdout of run R"
    what: str
    tail: LogTail


@dataclass(frozen=True, kw_only=True)
class TimelineResult(Result):
    """``/wes timeline``: the run and what was read of its task list (``now``: the epoch time they were read, what
    running tasks are drawn up to). The picture is drawn on first use of :attr:`picture`, by whoever shows it."""

    run: RunLog
    read: RunTasks
    now: float

    @cached_property
    def picture(self) -> Timeline:
        """The drawn timeline (:func:`wesbot.runtimeline.draw_run`), drawn once per result."""
        return draw_run(self.run, self.read, now=self.now)


@dataclass(frozen=True, kw_only=True)
class CancelResult(Result):
    view: CancelView

    @property
    def shareable(self) -> bool:
        return False  # a cancel confirmation (its red button) is only ever shown to whoever asked


@dataclass(frozen=True, kw_only=True)
class CommandLineResult(Result):
    """The whole command line of a run (``task_id`` None) or of one of its tasks."""

    run_id: str
    task_id: str | None
    cmd: list[str]


@dataclass(frozen=True, kw_only=True)
class AuditResult(Result):
    run_id: str | None
    rows: list[AuditRow]
    # Slack's /wes audit shows the attempts made in the channel it is typed in; None: all (the terminal)
    channel_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class SubscribeResult(Result):
    run_id: str
    state: State
    # The run had already ended: nothing was stored.
    already_ended: bool = False
    exit_code: int | None = None
    created: bool = False
    added_user: bool = False
    watchers: tuple[str, ...] = ()
    # --deadline: how long after its start the run should have ended (the subscribers hear once if not).
    deadline_after: float | None = None


@dataclass(frozen=True, kw_only=True)
class UnsubscribeResult(Result):
    run_id: str
    # "not_subscribed", "user_removed" or "subscription_removed"
    outcome: str


@dataclass(frozen=True, kw_only=True)
class SubscriptionsResult(Result):
    channel_id: str
    subscriptions: list[Subscription]
    watches: list[ChannelWatch] = field(default_factory=list)
    report: ReportSchedule | None = None  # the channel's scheduled report


@dataclass(frozen=True, kw_only=True)
class WatchResult(Result):
    # "watch" or "unwatch"; changed: a watch was added (or removed), else it already was (or was not) there
    action: str
    changed: bool
    description: str
    # who set or removed it (the channel is told)
    by_user: str | None = None

    @property
    def announce(self) -> bool:
        return self.changed


@dataclass(frozen=True, kw_only=True)
class ReportResult(Result):
    """``/wes report 24h``: what ended in the window, the failures, the longest and the active runs."""

    report: Report


@dataclass(frozen=True, kw_only=True)
class ReportScheduleResult(Result):
    """``/wes report daily 09:00`` (``schedule`` set) or ``/wes report off``; the channel is told."""

    schedule: ReportSchedule | None
    removed: bool = False
    by_user: str | None = None

    @property
    def announce(self) -> bool:
        return self.schedule is not None or self.removed

    @property
    def shareable(self) -> bool:
        return False


@dataclass(frozen=True, kw_only=True)
class ServerRow:
    """One configured WES server as ``/wes servers`` shows it: what GET /service-info said, or why it did not."""

    name: str
    host: str
    reachable: bool
    is_default: bool = False
    # From GET /service-info when reachable (every field is optional there).
    service_name: str | None = None
    version: str | None = None
    wes_versions: list[str] = field(default_factory=list)
    workflow_types: dict[str, list[str]] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)
    state_counts: dict[str, int] = field(default_factory=dict)
    # Why it is unreachable: the WesError's message (already masked), on one line.
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServersResult(Result):
    servers: list[ServerRow]
    # Stored servers the configuration no longer names (or names at another URL): one line each.
    held: list[str] = field(default_factory=list)

    @property
    def shareable(self) -> bool:
        return False  # the server list is answered to whoever asked


@dataclass(frozen=True, kw_only=True)
class ChooseServerResult(Result):
    """Several servers, none named and no channel default: which one? ``found_on`` lists the servers whose
    recent runs include the command's run (none, or more than one, or it would not be asked)."""

    servers: list[str]
    found_on: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def shareable(self) -> bool:
        return False


@dataclass(frozen=True, kw_only=True)
class UseResult(Result):
    """``/wes use``: this channel's default server. ``changed`` when this command set it (the channel is told);
    ``set_by`` is who chose it, None when it comes from the configuration file (or there is none)."""

    server: str | None
    host: str | None = None
    changed: bool = False
    set_by: str | None = None
    servers: list[str] = field(default_factory=list)

    @property
    def shareable(self) -> bool:
        return False

    @property
    def announce(self) -> bool:
        return self.changed


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return value


__all__ = [
    "AuditResult",
    "CancelResult",
    "DetailsResult",
    "ErrorResult",
    "HelpResult",
    "LogsResult",
    "NextPage",
    "ReportResult",
    "ReportScheduleResult",
    "Result",
    "RunsResult",
    "ServerRow",
    "ServersResult",
    "StatusResult",
    "SubscribeResult",
    "SubscriptionsResult",
    "TaskResult",
    "TasksResult",
    "TimelineResult",
    "UnsubscribeResult",
    "WatchResult",
]
