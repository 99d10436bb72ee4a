"""The report of a window of runs (``/wes report 24h``): what ended in it, by state; the failures and the line that
says why; the longest runs; what is active now and for how long. Read from ``GET /runs`` pages.

Reading the window costs one request per page, not per run, on servers that list ``end_time`` (WES 1.1). Where
an ended run is listed without one, at most :data:`MAX_UNDATED_READS` are read one by one and the report says
how many could not be dated. The first failing line is read for the first :data:`MAX_REASONS` failures only
(their run log and the end of the failing stderr). Every read is bounded in pages and in time, and the report
says what it did not read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .format import parse_time
from .logref import LogReader, TaskLister, failed_stderr
from .outcome import FAILED_STATES
from .wes.errors import WesError
from .wes.models import RunListPage, RunLog, RunSummary, is_terminal, parse_state
from .wes.paging import Walk, walk

logger = logging.getLogger("wesbot.report")

WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0}
PAGE_SIZE = 1000
MAX_PAGES = 50
BUDGET_SECONDS = 20.0
MAX_UNDATED_READS = 50
MAX_REASONS = 5
MAX_LONGEST = 5
MAX_ACTIVE = 10


@dataclass(frozen=True, kw_only=True)
class ReportRun:
    run_id: str
    state: str
    start: float | None = None
    end: float | None = None
    reason: str | None = None  # a failure's first failing line, when it was read
    workflow: str | None = None
    owner: str | None = None  # the value of the run's owner tag (WESBOT_OWNER_TAG), where it has one

    def seconds(self, now: float) -> float | None:
        """How long it ran (an ended run) or has been running (an active one)."""
        if self.start is None:
            return None
        return max(0.0, (self.end if self.end is not None else now) - self.start)


@dataclass(frozen=True, kw_only=True)
class Report:
    since: float
    until: float
    ended: dict[str, int] = field(default_factory=dict)  # runs that ended in the window, by state
    failures: list[ReportRun] = field(default_factory=list)  # newest first
    longest: list[ReportRun] = field(default_factory=list)
    active: list[ReportRun] = field(default_factory=list)  # longest running first
    active_count: int = 0
    listed: int = 0
    cut: str | None = None  # "pages" or "time": the list was not read to its end
    undated: int = 0  # ended runs listed without an end time that were not read

    @property
    def failed_count(self) -> int:
        return sum(count for state, count in self.ended.items() if parse_state(state) in FAILED_STATES)


class ReportWes(TaskLister, Protocol):
    """What a report needs of a WES client (``wesbot.wes.WesClient`` is one)."""

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage: ...
    def get_run(self, run_id: str) -> RunLog: ...


class _Reader:
    """Reads one report from one server's client; ``logs`` reads the failing lines (None: none are read)."""

    def __init__(self, wes: ReportWes, logs: LogReader | None, *, now: float,
                 monotonic: Callable[[], float] = time.monotonic, owner_tag: str | None = None) -> None:
        self.owner_tag = owner_tag
        self.wes = wes
        self.logs = logs
        self.now = now
        self.monotonic = monotonic

    def read(self, window: float) -> Report:
        since = self.now - window
        listed, walked = self._list()
        ended: list[ReportRun] = []
        active: list[ReportRun] = []
        undated: list[RunSummary] = []
        for item in listed:
            run = _run_of(item, self.owner_tag)
            if not is_terminal(parse_state(run.state)):
                active.append(run)
            elif run.end is None:
                undated.append(item)
            elif run.end >= since:
                ended.append(run)
        dated, left = self._date(undated)
        ended += [run for run in dated if run.end is not None and run.end >= since]
        return self._report(since, ended, active, listed=len(listed), walked=walked, undated=left)

    def _list(self) -> tuple[list[RunSummary], Walk]:
        walked = Walk()
        until = self.monotonic() + BUDGET_SECONDS
        seen: dict[str, RunSummary] = {}
        try:
            for step in walk(lambda token: self.wes.list_runs(page_size=PAGE_SIZE, page_token=token),
                             size=lambda page: len(page.runs), max_pages=MAX_PAGES, progress=walked,
                             time_up=lambda: self.monotonic() >= until):
                for item in step.page.runs:
                    seen.setdefault(item.run_id, item)
        except WesError as error:
            if not seen:
                raise
            logger.info("the run list was read only in part for a report: %s", error)
            walked.complete, walked.cut = False, walked.cut or "error"
        return list(seen.values()), walked

    def _date(self, undated: list[RunSummary]) -> tuple[list[ReportRun], int]:
        """The end times of ended runs the list gives none for: read one by one, at most MAX_UNDATED_READS."""
        dated: list[ReportRun] = []
        for item in undated[:MAX_UNDATED_READS]:
            try:
                log = self.wes.get_run(item.run_id)
            except WesError:
                continue
            dated.append(ReportRun(run_id=item.run_id, state=str(log.state),
                                   start=_epoch(log.run_log.start_time or item.start_time),
                                   end=_epoch(log.run_log.end_time)))
        return dated, len(undated) - len([run for run in dated if run.end is not None])

    def _report(self, since: float, ended: list[ReportRun], active: list[ReportRun], *, listed: int, walked: Walk,
                undated: int) -> Report:
        counts: dict[str, int] = {}
        for run in ended:
            counts[run.state] = counts.get(run.state, 0) + 1
        failures = sorted((run for run in ended if parse_state(run.state) in FAILED_STATES),
                          key=lambda run: run.end or 0.0, reverse=True)
        failures = [self._why(run) for run in failures[:MAX_REASONS]] + failures[MAX_REASONS:]
        longest = sorted((run for run in ended if run.start is not None),
                         key=lambda run: run.seconds(self.now) or 0.0, reverse=True)[:MAX_LONGEST]
        running = sorted(active, key=lambda run: run.seconds(self.now) or -1.0, reverse=True)
        return Report(since=since, until=self.now, ended=counts, failures=failures, longest=longest,
                      active=running[:MAX_ACTIVE], active_count=len(active), listed=listed,
                      cut=None if walked.complete else (walked.cut or "pages"), undated=undated)

    def _why(self, run: ReportRun) -> ReportRun:
        """The failure with its workflow and first failing line, when they can be read."""
        try:
            log = self.wes.get_run(run.run_id)
        except WesError:
            return run
        workflow = (log.request.workflow_url or "").rstrip("/").rsplit("/", 1)[-1] or None
        reason = None
        if self.logs is not None:
            try:
                _, tail = failed_stderr(log, self.wes, self.logs)
                reason = tail.reasons[0] if tail.reasons else None
            except WesError as error:
                logger.debug("no failing line for run %s: %s", run.run_id, error)
        return ReportRun(run_id=run.run_id, state=run.state, start=run.start, end=run.end, reason=reason,
                         workflow=workflow, owner=run.owner)


def read_report(wes: ReportWes, logs: LogReader | None, *, window: float, now: float,
                monotonic: Callable[[], float] = time.monotonic, owner_tag: str | None = None) -> Report:
    """The report of the ``window`` seconds before ``now``; ``owner_tag`` names who started each run. Raises
    WesError only when not one page was read."""
    return _Reader(wes, logs, now=now, monotonic=monotonic, owner_tag=owner_tag).read(window)


def _epoch(value: str | None) -> float | None:
    moment = parse_time(value)
    return moment.timestamp() if moment is not None else None


def _run_of(item: RunSummary, owner_tag: str | None) -> ReportRun:
    owner = item.tags.get(owner_tag) if owner_tag else None
    return ReportRun(run_id=item.run_id, state=str(item.state), start=_epoch(item.start_time),
                     end=_epoch(item.end_time), owner=owner if isinstance(owner, str) and owner.strip() else None)

