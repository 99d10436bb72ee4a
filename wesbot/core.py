"""The command core: run a parsed :class:`~wesbot.commands.Command` against WES and return a result.

Slack (``wesbot.slack``) and the terminal (``wesbot ask``) both call :func:`execute` and only differ in
how they render what it returns. :func:`execute` never raises for anything a user or a server can
cause: usage mistakes and every :class:`~wesbot.wes.errors.WesError` come back as an
:class:`~wesbot.results.ErrorResult` carrying one sentence. What each command answers is defined in
:mod:`wesbot.results`; this module only runs commands against WES.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .cancel import Cancelers
from .cancel import prompt as cancel_prompt
from .commands import SLACK_ONLY, Command, UsageError, parse
from .format import shorten
from .logref import DETAILS_LOG_LINES, LogReader, LogRef, failed_log_ref, task_log_ref
from .outcome import run_failed as outcome_run_failed
from .outcome import task_failed, task_running
from .report import WINDOWS, read_report
from .results import (
    AuditResult,
    CancelResult,
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
    ServerRow,
    ServersResult,
    StatusResult,
    SubscribeResult,
    SubscriptionsResult,
    TaskResult,
    TasksResult,
    TimelineResult,
    UnsubscribeResult,
    WatchResult,
)
from .runtimeline import read_tasks
from .store.cancels import CancelStore
from .store.watch import WatchStore
from .store.watches import ChannelWatch, WatchesStore
from .wes.errors import NotFound, WesError, WesHTTPError
from .wes.models import (
    Log,
    RunListPage,
    RunLog,
    RunStatus,
    RunSummary,
    ServiceInfo,
    TaskLog,
    TaskPage,
    is_terminal,
    state_label,
)
from .wes.paging import walk

logger = logging.getLogger("wesbot.core")
T = TypeVar("T")

# How many rows one reply lists. 40 one-line rows fit in a few Block Kit sections.
RUNS_PER_REPLY = 25
TASKS_PER_REPLY = 25
# How many server pages `/wes runs STATE` and `/wes tasks RUN failed` read before they give up.
MAX_SCAN_PAGES = 20
SERVER_PAGE_SIZE = 100


LOGS_LINES = 30
# `/wes servers` asks this many servers at once, so that the answer takes one WES deadline, not one per server.
SERVER_PROBES = 8
MAX_REASON = 300


class Wes(Protocol):
    """What the core needs of a WES client (``wesbot.wes.WesClient`` is one)."""

    @property
    def host(self) -> str: ...
    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage: ...
    def get_status(self, run_id: str) -> RunStatus: ...
    def get_run(self, run_id: str) -> RunLog: ...
    def list_tasks(
        self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
        run: RunLog | None = None,
    ) -> TaskPage: ...
    def get_task(self, run_id: str, task_id: str) -> TaskLog: ...
    def cancel_run(self, run_id: str) -> str | None: ...
    def service_info(self) -> ServiceInfo: ...


class ServiceInfoSource(Protocol):
    """What ``/wes servers`` needs of each server's client."""

    @property
    def host(self) -> str: ...
    def service_info(self) -> ServiceInfo: ...


@dataclass(frozen=True, kw_only=True)
class ServerEntry:
    """A configured server for ``/wes servers``: its name, its client, and whether this channel (or terminal)
    uses it."""

    name: str
    wes: ServiceInfoSource
    is_default: bool = False


@dataclass(frozen=True, kw_only=True)
class Context:
    """Who asked, where, and the store: what the Slack-only subcommands need."""

    store: WatchStore
    channel_id: str
    user_id: str
    now: float
    subscription_days: float = 14.0
    # Called after a new subscription, so the watcher posts its card at once.
    wake: Callable[[], None] | None = None
    # Why wesbot cannot post in this channel (None: it can, or Slack does not say): asked before a
    # subscription or a watch is stored, so a promise that cannot be kept is refused at once.
    can_post: Callable[[], str | None] | None = None
    # The time zone Slack gives for whoever asked (``Europe/Paris``; None: none), for a scheduled report.
    user_tz: Callable[[], str | None] | None = None
    # The run tag naming who started a run (WESBOT_OWNER_TAG): the report names them, `watch mine` filters on it.
    owner_tag: str | None = None
    # The email address Slack gives for whoever asked (None: none, or no users:read.email scope).
    user_email: Callable[[], str | None] | None = None
    cancels: CancelStore | None = None
    cancelers: Cancelers | None = None
    watches: WatchesStore | None = None


def run_text(text: str, wes: Wes, ctx: Context | None = None, logs: LogReader | None = None, *,
             servers: Sequence[ServerEntry] | None = None) -> Result:
    """Parse and execute ``/wes`` text. Never raises for bad input or a failing server."""
    try:
        command = parse(text)
    except UsageError as error:
        return ErrorResult(command=None, message=error.message, usage=error.usage, kind="usage")
    return execute(command, wes, ctx, logs, servers=servers)


def execute(command: Command, wes: Wes, ctx: Context | None = None, logs: LogReader | None = None, *,
            servers: Sequence[ServerEntry] | None = None) -> Result:
    """``servers`` are what ``/wes servers`` lists; None lists ``wes`` alone, as the server named ``default``."""
    if command.name == "servers":
        return list_servers(command, servers or [ServerEntry(name="default", wes=wes, is_default=True)])
    try:
        return _execute(command, wes, ctx, logs)
    except NotFound as error:
        return ErrorResult(command=command, message=_not_found(error, wes), kind="wes")
    except WesError as error:
        return ErrorResult(command=command, message=str(error), kind="wes")


def _not_found(error: NotFound, wes: Wes) -> str:
    """What to say of a run that is "not found": when GET /runs is a 404 too, the URL's path is wrong (a
    missing /v1), and that is the answer, not "run not found". GET /runs has no side effects on any server."""
    if error.what != "run":
        return str(error)
    try:
        wes.list_runs(page_size=1)
    except NotFound:
        pass
    except WesHTTPError as probe:
        if probe.status_code == 404:
            return str(probe)
    except Exception:  # noqa: BLE001 - a best-effort probe: whatever it hits, the answer stays "not found"
        pass
    return str(error)


def list_servers(command: Command, servers: Sequence[ServerEntry]) -> ServersResult:
    """Ask every server for GET /service-info, at once (each call is bounded by its client's deadline)."""
    if len(servers) == 1:
        return ServersResult(command=command, servers=[_probe(servers[0])])
    with ThreadPoolExecutor(max_workers=min(SERVER_PROBES, len(servers)), thread_name_prefix="wesbot-servers") as pool:
        rows = list(pool.map(_probe, servers))
    return ServersResult(command=command, servers=rows)


def _probe(entry: ServerEntry) -> ServerRow:
    host = entry.wes.host
    try:
        info = entry.wes.service_info()
    except WesError as error:
        reason = " ".join(str(error).split())  # one line: the message is already masked by the client
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 1] + "…"
        return ServerRow(name=entry.name, host=host, reachable=False, is_default=entry.is_default,
                         error=reason or type(error).__name__)
    return ServerRow(
        name=entry.name, host=host, reachable=True, is_default=entry.is_default, service_name=info.name,
        version=info.version, wes_versions=info.supported_wes_versions, workflow_types=info.workflow_type_versions,
        engines=info.workflow_engine_versions, state_counts=info.system_state_counts,
    )


def _execute(command: Command, wes: Wes, ctx: Context | None, logs: LogReader | None) -> Result:
    if command.name == "help":
        return HelpResult(command=command, topic=command.topic)
    if command.name in SLACK_ONLY:
        if ctx is None:
            return ErrorResult(command=command, kind="usage", message=f"/wes {command.name} works in Slack only: "
                               "it acts on the channel you type it in")
        return _slack_only(command, wes, ctx)
    if command.name in _LISTINGS:
        return _LISTINGS[command.name](command, wes, ctx, logs)
    assert command.run_id is not None
    if command.name == "status":
        status = wes.get_status(command.run_id)
        if not is_terminal(status.state):
            _run_of(wes, status)  # a ghost (an id the server answers RUNNING for) is "no such run"
        return StatusResult(command=command, status=status)
    if command.name == "details":
        run = wes.get_run(command.run_id)
        count, more = _task_count(run, wes)
        result = DetailsResult(command=command, run=run, task_count=count, task_count_more=more)
        if logs is not None and run_failed(run):
            try:
                ref, what, task_id = failed_log_ref(run, wes, "stderr")
                result = dataclasses.replace(result, log_what=what, log_task_id=task_id)
                tail = logs.tail(ref, what=what, lines=DETAILS_LOG_LINES, max_chars=1800)
                result = dataclasses.replace(result, log_tail=tail)
            except WesError as error:
                result = dataclasses.replace(result, log_error=str(error))
        return result
    if command.name == "logs":
        if logs is None:
            return ErrorResult(command=command, message="reading logs is not set up here")
        return _logs(command, wes, logs)
    if command.name in ("tasks", "timeline"):
        return _tasks(command, wes) if command.name == "tasks" else _timeline(command, wes)
    if command.name == "command":
        cmd = (wes.get_run(command.run_id).run_log if command.task_id is None
               else wes.get_task(command.run_id, command.task_id)).cmd
        return CommandLineResult(command=command, run_id=command.run_id, task_id=command.task_id, cmd=cmd)
    if command.name == "task":
        assert command.task_id is not None
        task = wes.get_task(command.run_id, command.task_id)
        ended = _RunEnded(wes, command.run_id)
        return TaskResult(command=command, run_id=command.run_id, task=task, run_terminal=ended.for_task(task))
    raise AssertionError(f"no handler for {command.name}")  # the parser only yields known names


def _timeline(command: Command, wes: Wes) -> TimelineResult:
    """The run, then all its tasks (bounded: see wesbot.runtimeline); the picture is drawn where it is shown."""
    assert command.run_id is not None
    run = wes.get_run(command.run_id)
    return TimelineResult(command=command, run=run, read=read_tasks(wes, run), now=time.time())


def _slack_only(command: Command, wes: Wes, ctx: Context) -> Result:
    if command.name in ("cancel", "audit"):
        if ctx.cancels is None or ctx.cancelers is None:
            return ErrorResult(command=command, message="cancelling is not set up here")
        if command.name == "audit":
            rows = ctx.cancels.recent_audit(command.run_id, channel_id=ctx.channel_id)  # never other channels
            return AuditResult(command=command, run_id=command.run_id, rows=rows, channel_id=ctx.channel_id)
        assert command.run_id is not None
        view = cancel_prompt(wes, run_id=command.run_id, user_id=ctx.user_id, channel_id=ctx.channel_id,
                             cancelers=ctx.cancelers, store=ctx.cancels, now=ctx.now)
        return CancelResult(command=command, view=view)
    if command.name in ("watch", "unwatch"):
        return _watch(command, ctx)
    if command.name == "subscriptions":
        return SubscriptionsResult(command=command, channel_id=ctx.channel_id,
                                   subscriptions=ctx.store.subscriptions.of_channel(ctx.channel_id),
                                   watches=ctx.watches.of_channel(ctx.channel_id) if ctx.watches else [],
                                   report=ctx.store.reports.of_channel(ctx.channel_id))
    run_id = command.run_id
    assert run_id is not None
    if command.name == "unsubscribe":
        removed = ctx.store.subscriptions.unsubscribe(run_id=run_id, channel_id=ctx.channel_id, user_id=ctx.user_id)
        return UnsubscribeResult(command=command, run_id=run_id, outcome=removed)
    # subscribe: an unknown run is refused, a server that is down stores nothing (both raise WesError here)
    status = wes.get_status(run_id)
    run = _run_of(wes, status)
    if is_terminal(status.state):
        return SubscribeResult(command=command, run_id=run_id, state=status.state, already_ended=True,
                               exit_code=run.run_log.exit_code if run else None)
    if (refused := _cannot_post(command, ctx)) is not None:
        return refused
    workflow = run.request.workflow_url if run else None
    outcome = ctx.store.subscriptions.subscribe(
        run_id=run_id, channel_id=ctx.channel_id, user_id=ctx.user_id, now=ctx.now,
        expires_at=ctx.now + ctx.subscription_days * 86400, state=None if status.state is None else str(status.state),
        workflow=workflow.rsplit("/", 1)[-1] if workflow else None,
        start_time=run.run_log.start_time if run else None, deadline_after=command.after,
    )
    if ctx.wake is not None:
        ctx.wake()
    return SubscribeResult(command=command, run_id=run_id, state=status.state, created=outcome.created,
                           added_user=outcome.added_user, watchers=outcome.subscription.users,
                           deadline_after=outcome.subscription.deadline_after)


def _report(command: Command, wes: Wes, ctx: Context | None, logs: LogReader | None) -> Result:
    """The report of a window, read now; or the channel's schedule set (in the asker's time zone) or removed."""
    if command.schedule is None and not command.unschedule:
        report = read_report(wes, logs, window=command.window or WINDOWS["24h"], now=time.time(),
                             owner_tag=ctx.owner_tag if ctx is not None else None)
        return ReportResult(command=command, report=report)
    if ctx is None:
        return ErrorResult(command=command, kind="usage", message="a scheduled report is set in Slack only: it posts "
                           "in the channel you type it in")
    if command.unschedule or command.schedule is None:
        return ReportScheduleResult(command=command, schedule=None, removed=ctx.store.reports.remove(ctx.channel_id),
                                    by_user=ctx.user_id)
    if (refused := _cannot_post(command, ctx)) is not None:
        return refused
    tz = (ctx.user_tz() if ctx.user_tz is not None else None) or "UTC"
    schedule = ctx.store.reports.set(channel_id=ctx.channel_id, schedule=command.schedule, tz=tz,
                                     user_id=ctx.user_id, now=ctx.now)
    if ctx.wake is not None:
        ctx.wake()
    return ReportScheduleResult(command=command, schedule=schedule, by_user=ctx.user_id)


# The commands that read one of the server's lists (runs, or runs for a report): (command, wes, ctx, logs).
_LISTINGS: dict[str, Callable[[Command, Wes, Context | None, LogReader | None], Result]] = {
    "runs": lambda command, wes, ctx, logs: _runs(command, wes),
    "report": _report,
}


def _watch(command: Command, ctx: Context) -> Result:
    """Set or remove a channel watch; ``mine``: one for each way the owner tag may name whoever asked (their
    email address and their user id), in their direct messages with wesbot."""
    if ctx.watches is None:
        return ErrorResult(command=command, message="channel-wide watches are not set up here")
    kind = command.watch_kind or "failed"
    tags = [command.tag or ("", "")]
    if command.mine:
        mine = _mine(command, ctx)
        if isinstance(mine, ErrorResult):
            return mine
        tags = mine
    if command.name == "watch":
        if (refused := _cannot_post(command, ctx)) is not None:
            return refused
        added = [ctx.watches.add(channel_id=ctx.channel_id, kind=kind, tag_key=key, tag_value=value,
                                 user_id=ctx.user_id, now=ctx.now, after=command.after) for key, value in tags]
        if ctx.wake is not None:
            ctx.wake()
        return WatchResult(command=command, action="watch", changed=any(created for _, created in added),
                           description=" or ".join(watch.describe() for watch, _ in added), by_user=ctx.user_id)
    gone = [ctx.watches.remove(channel_id=ctx.channel_id, kind=kind, tag_key=key, tag_value=value)
            for key, value in tags]
    described = " or ".join(ChannelWatch(id=0, channel_id=ctx.channel_id, kind=kind, tag_key=key, tag_value=value,
                                         created_by="", created_at=0, active_from=None).describe()
                            for key, value in tags)
    return WatchResult(command=command, action="unwatch", changed=any(gone), description=described,
                       by_user=ctx.user_id)


def _mine(command: Command, ctx: Context) -> list[tuple[str, str]] | ErrorResult:
    """The owner-tag filters that mean "runs I started": by user id, and by email address where Slack gives it."""
    if not ctx.owner_tag:
        return ErrorResult(command=command, kind="usage", message="`mine` needs WESBOT_OWNER_TAG (or owner_tag for "
                           "this server): the run tag that names who started a run")
    if not ctx.channel_id.startswith("D"):
        return ErrorResult(command=command, kind="usage", message="`mine` is sent to you alone: type it in your "
                           "direct messages with wesbot (its Messages tab)")
    email = ctx.user_email() if ctx.user_email is not None else None
    return [(ctx.owner_tag, ctx.user_id)] + ([(ctx.owner_tag, email)] if email else [])


def _cannot_post(command: Command, ctx: Context) -> ErrorResult | None:
    reason = ctx.can_post() if ctx.can_post is not None else None
    if reason is None:
        return None
    return ErrorResult(command=command, kind="slack", message=f"{reason} Nothing was stored.")


def _run_of(wes: Wes, status: RunStatus) -> RunLog | None:
    """GET /runs/{id} after its status: the run log, or None when it cannot be read (a timeout, a 4xx).

    Raises NotFound for a run that does not exist, and for a *ghost*: a server that answers RUNNING to the
    status of any id (the reference server, which then lists it forever) cannot give the run log of one that
    never existed, and answers 5xx there. A real run whose log the server fails to give is then reported as
    probably not there, with a hint to try again, rather than shown as running."""
    try:
        return wes.get_run(status.run_id)
    except WesHTTPError as error:
        if isinstance(error, NotFound):
            raise
        if error.status_code >= 500 and not is_terminal(status.state):
            raise NotFound(
                f"no such run {shorten(status.run_id, 80)} on the WES server at {wes.host}: it answers "
                f"{state_label(status.state)} for its status but cannot give its run log ({error.status_code}), as "
                "servers do for ids they never ran; if the run exists, try again", run_id=status.run_id) from None
        logger.info("no details of %s: %s", status.run_id, error)
    except WesError as error:
        logger.info("no details of %s: %s", status.run_id, error)
    return None


def run_failed(run: RunLog) -> bool:
    """Did this run fail? The rule is :func:`wesbot.outcome.run_failed`'s; this reads it off a RunLog."""
    return outcome_run_failed(run.state, run.run_log.exit_code)


def _run_or_none(wes: Wes, run_id: str) -> RunLog | None:
    """The run's log, or None when it cannot be read: a fallback must not turn an answer into an error."""
    try:
        return wes.get_run(run_id)
    except WesError as error:
        logger.info("could not read run %s for its logs: %s", run_id, error)
        return None


def _logs(command: Command, wes: Wes, logs: LogReader) -> Result:
    run_id = command.run_id
    assert run_id is not None
    stream = command.stream or "stderr"
    if command.task_id is not None:
        task = wes.get_task(run_id, command.task_id)
        task = dataclasses.replace(task, id=task.id or command.task_id)
        run = _run_or_none(wes, run_id) if getattr(task, stream) is None else None
        picked = task_log_ref(task, run, stream)._replace(task_id=command.task_id)
    else:
        picked = failed_log_ref(wes.get_run(run_id), wes, stream)
    tail = logs.tail(picked.ref, what=picked.what, lines=LOGS_LINES, max_chars=2800)
    return LogsResult(command=command, run_id=run_id, task_id=picked.task_id, stream=stream, what=picked.what,
                      tail=tail)


class _RunEnded:
    """Whether a run has ended, asked of the server at most once, and only for a task whose state
    depends on it (no end time, no real exit code: see :func:`wesbot.outcome.task_running`)."""

    def __init__(self, wes: Wes, run_id: str) -> None:
        self._wes = wes
        self._run_id = run_id
        self._known: bool | None = None

    def get(self) -> bool:
        if self._known is None:
            try:
                self._known = is_terminal(self._wes.get_status(self._run_id).state)
            except WesError as error:
                logger.info("could not tell whether run %s has ended: %s", self._run_id, error)
                self._known = False
        return self._known

    def for_task(self, task: Log) -> bool:
        """The ``run_terminal`` to judge ``task`` with: the server's answer only when it matters."""
        return self.get() if task_running(task, run_terminal=False) else False

    def for_tasks(self, tasks: list[Log]) -> bool:
        return self.get() if any(task_running(task, run_terminal=False) for task in tasks) else False


def _task_count(run: RunLog, wes: Wes) -> tuple[int | None, bool]:
    """Count the run's tasks: from the inline list, or from the first page of the task endpoint."""
    if run.task_logs:
        return len(run.task_logs), False
    try:
        page = wes.list_tasks(run.run_id, page_size=SERVER_PAGE_SIZE, run=run)
    except WesError as error:
        logger.info("could not count the tasks of %s: %s", run.run_id, error)
        return (0 if run.task_logs is not None else None), False
    return len(page.tasks), page.next_page_token is not None


@dataclass(frozen=True, kw_only=True)
class _Collected(Generic[T]):
    rows: list[T]
    next_page: NextPage | None
    pages_read: int
    notes: list[str]
    source: str = "endpoint"


def _collect(
    fetch: Callable[[str | None], tuple[list[T], str | None, str]],
    start: NextPage,
    keep: Callable[[T], bool] | None,
    limit: int,
) -> _Collected[T]:
    """Read server pages from ``start`` until ``limit`` rows are kept or the list ends.

    Unfiltered (``keep`` is None), one server page is one reply. Filtered, pages are read until the reply
    is full, the list ends, a page token repeats, or MAX_SCAN_PAGES were read. The returned ``next_page``
    resumes exactly after the last row shown, even in the middle of a server page (``skip``).
    """
    rows: list[T] = []
    skip = start.skip
    source = "endpoint"
    pages = 0

    def fetch_page(token: str | None) -> _Fetched[T]:
        return _Fetched(*fetch(token))

    for step in walk(fetch_page, size=lambda page: len(page.items), start=start.page_token,
                     max_pages=MAX_SCAN_PAGES if keep is not None else 1):
        pages, source = pages + 1, step.page.source
        rest = step.page.items[skip:]
        for index, item in enumerate(rest):
            if keep is None or keep(item):
                rows.append(item)
            if len(rows) == limit:
                nxt: NextPage | None = None
                if index + 1 < len(rest):
                    nxt = NextPage(page_token=step.token, skip=skip + index + 1)
                elif step.next:
                    nxt = NextPage(page_token=step.next)
                return _Collected(rows=rows, next_page=nxt, pages_read=pages, notes=[], source=source)
        if step.next is None:
            return _Collected(rows=rows, next_page=None, pages_read=pages, notes=[], source=source)
        if keep is None or pages >= MAX_SCAN_PAGES:
            notes = [f"Stopped after reading {pages} pages from the server; there are more."] if keep else []
            return _Collected(rows=rows, next_page=NextPage(page_token=step.next), pages_read=pages, notes=notes,
                              source=source)
        skip = 0
    return _Collected(rows=rows, next_page=None, pages_read=pages, notes=[], source=source)


@dataclass(frozen=True)
class _Fetched(Generic[T]):
    """One server page as :func:`_collect` reads it."""

    items: list[T]
    next_page_token: str | None
    source: str


def _runs(command: Command, wes: Wes) -> Result:
    wanted = command.state_filter
    page_size = SERVER_PAGE_SIZE if wanted else RUNS_PER_REPLY

    def fetch(token: str | None) -> tuple[list[RunSummary], str | None, str]:
        page = wes.list_runs(page_size=page_size, page_token=token)
        return page.runs, page.next_page_token, "endpoint"

    got = _collect(
        fetch,
        NextPage(page_token=command.page_token, skip=command.skip),
        (lambda run: wanted.matches(run.state)) if wanted else None,
        RUNS_PER_REPLY,
    )
    return RunsResult(command=command, runs=got.rows, next_page=got.next_page, pages_read=got.pages_read,
                      notes=got.notes)


def _tasks(command: Command, wes: Wes) -> Result:
    run_id = command.run_id
    assert run_id is not None

    def fetch(token: str | None) -> tuple[list[Log], str | None, str]:
        page = wes.list_tasks(run_id, page_size=SERVER_PAGE_SIZE, page_token=token)
        return page.tasks, page.next_page_token, page.source

    ended = _RunEnded(wes, run_id)
    got = _collect(
        fetch,
        NextPage(page_token=command.page_token, skip=command.skip),
        (lambda task: task_failed(task, ended.for_task(task))) if command.only_failed else None,
        TASKS_PER_REPLY,
    )
    return TasksResult(command=command, run_id=run_id, tasks=got.rows, next_page=got.next_page,
                       source=got.source, notes=got.notes, run_terminal=ended.for_tasks(got.rows))


__all__ = [
    "DETAILS_LOG_LINES",
    "Context",
    "LogReader",
    "LogRef",
    "ServerEntry",
    "ServiceInfoSource",
    "Wes",
    "execute",
    "failed_log_ref",
    "list_servers",
    "run_failed",
    "run_text",
    "task_log_ref",
]
