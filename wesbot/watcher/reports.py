"""Scheduled reports (``/wes report daily 09:00``): when one is due, read the report from WES, render it, and queue
it with a key that names its period, moving the schedule to its next time in the same transaction.

Never posts: delivery does, from the outbox. A period is reported once, across restarts and processes (the key);
after a long stop only the period that was due is reported, not every one missed. When WES cannot be read, the
channel is told so at the report's time, instead of hearing nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..logref import LogReader
from ..report import ReportWes, read_report
from ..schedule import zone
from ..slack.blocks import escape
from ..slack.cards import notice
from ..slack.report_view import report_message
from ..store.reports import ReportSchedule
from ..store.watch import WatchStore
from ..wes.errors import WesError
from .base import Clock

logger = logging.getLogger("wesbot.watcher")


class ScheduledReports:
    def __init__(self, store: WatchStore, wes: ReportWes, logs: LogReader | None, *, label: str, clock: Clock,
                 owed: Callable[[], None], owner_tag: str | None = None) -> None:
        self.owner_tag = owner_tag  # the run tag naming who started a run: the report names them
        self.store = store
        self.wes = wes
        self.logs = logs
        self.label = label  # how messages name the server
        self.clock = clock
        self.owed = owed

    def post_due(self) -> int:
        """Queue every report that is due; returns how many were queued."""
        queued = 0
        for schedule in self.store.reports.due(self.clock.now()):
            queued += self._queue(schedule)
        if queued:
            self.owed()
        return queued

    def _queue(self, schedule: ReportSchedule) -> int:
        now = self.clock.now()
        tz = zone(schedule.tz)
        title = f"{'Daily' if schedule.schedule.kind == 'daily' else 'Weekly'} report of {self.label}"
        try:
            report = read_report(self.wes, self.logs, window=schedule.schedule.window, now=now,
                                 owner_tag=self.owner_tag)
            payload = report_message(report, host=self.label, title=title)
        except WesError as error:
            logger.info("the report for %s could not be read: %s", schedule.channel_id, error)
            payload = notice(None, f":warning: {escape(title)}: the WES server could not be read "
                             f"({escape(str(error))}). The next report comes at its usual time.")
        next_at = schedule.schedule.next_after(max(now, schedule.next_at), tz)
        period = schedule.schedule.period(schedule.next_at, tz)
        return int(self.store.reports.record_posted(schedule, period=period, payload=payload, next_at=next_at,
                                                    now=now) is not None)
