"""What a notification says about a run that ended: read from WES, best effort, for both jobs that
announce ends (subscriptions and channel-wide watches); and, for the subscriptions' notifications, the run's
timeline picture (all its tasks read, bounded, and drawn here: delivery never calls WES), put down in the store's
:class:`~wesbot.store.files.Pictures` for the transaction that queues the notification to take."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..config import run_link
from ..logref import LogReader, failed_stderr
from ..outcome import RunOutcome, basic_outcome, failed_tasks
from ..runtimeline import RunTasks, draw_run, filename, read_tasks
from ..store.files import Picture, Pictures
from ..wes.errors import WesError
from ..wes.models import Log, RunLog, RunStatus, is_terminal
from .base import WatchedWes

logger = logging.getLogger("wesbot.watcher")

# The first page of a failed run's tasks, for the "Failed tasks" section of its notification.
TASKS_PAGE = 100
# At most this many ended runs a minute get a timeline picture: reading all of a run's tasks and drawing them costs
# requests and CPU (see bench.timeline), and in a burst of ends the notifications must not wait for pictures.
# Beyond it, a notification goes as it always did, without one.
PICTURES_PER_MINUTE = 20


class Budget:
    """A token bucket in monotonic time: ``per_minute`` tokens a minute, at most ``per_minute`` saved up."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._tokens = per_minute
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.per_minute, self._tokens + (now - self._at) * self.per_minute / 60)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class Details:
    """Reads the details of an ended run: the run log, the failed tasks, the end of the failing stderr.
    Each method returns how many WES requests it made, for the watcher's statistics.

    With ``pictures`` (and ``min_tasks`` > 0), :meth:`outcome` also reads all the run's tasks (bounded, see
    :mod:`wesbot.runtimeline`) and, for a run of at least ``min_tasks`` tasks of which one has a start time, draws
    its timeline and puts it in ``pictures`` under (run id, state). ``stopped`` cuts that read short; ``budget``
    bounds how many runs a minute get one (:data:`PICTURES_PER_MINUTE`)."""

    def __init__(self, wes: WatchedWes, logs: LogReader | None = None, *, run_url: str | None = None,
                 pictures: Pictures | None = None, min_tasks: int = 0, stopped: Callable[[], bool] | None = None,
                 budget: Budget | None = None) -> None:
        self.wes = wes
        self.logs = logs  # None: no log tails in notifications
        self.run_url = run_url  # the run-link template (None: no link to the run's page)
        self.pictures = pictures if min_tasks > 0 else None
        self.min_tasks = min_tasks
        self.stopped = stopped
        self.budget = budget or Budget(PICTURES_PER_MINUTE)
        self._skipping = False  # pictures are being left out (the budget is spent): said once per burst

    def outcome(self, run_id: str, status: RunStatus, log: RunLog | None = None) -> tuple[RunOutcome, int]:
        """The outcome of a run that ended ``status``; the notification goes out without details if need be."""
        requests = 0
        if log is None:
            requests += 1
            try:
                log = self.wes.get_run(run_id)
            except WesError as error:
                logger.info("run %s ended %s, but its details could not be read: %s", run_id, status.state, error)
                return RunOutcome(run_id=run_id, state=str(status.state), link=self._link(run_id)), requests
        outcome = replace(basic_outcome(log), link=self._link(log.run_id))
        if self.pictures is not None and self._may_draw(run_id):
            # Every task is read for the picture: the failed ones are then found among all, not the first page.
            tasks, more, asked = self._picture(run_id, outcome.state, log)
        elif not outcome.failed:
            return outcome, requests
        else:
            tasks, more, asked = self._tasks(run_id, log)
        if not outcome.failed:
            return outcome, requests + asked
        tail, read = self._tail(log)
        outcome = replace(outcome, failed_tasks=failed_tasks(tasks, True), more_failed_tasks=more, **tail)
        return outcome, requests + asked + read

    def _link(self, run_id: str) -> str | None:
        return run_link(self.run_url, run_id)

    def confirm_end(self, run_id: str) -> tuple[str, RunLog | None]:
        """GET /runs/{id}: the end the list showed, confirmed (None: not confirmed, so not announced)."""
        try:
            log = self.wes.get_run(run_id)
        except WesError as error:
            logger.info("the list shows run %s ended, but it could not be read: %s", run_id, error)
            return run_id, None
        return run_id, (log if is_terminal(log.state) else None)

    def _tasks(self, run_id: str, log: RunLog) -> tuple[list[Log], bool, int]:
        """The run's tasks (inline, or the first page of the task list), whether there are more, requests."""
        if log.task_logs:
            return list(log.task_logs), False, 0
        try:
            page = self.wes.list_tasks(run_id, page_size=TASKS_PAGE, run=log)
        except WesError:
            return [], False, 1
        return list(page.tasks), page.next_page_token is not None, 1

    def _may_draw(self, run_id: str) -> bool:
        if self.budget.take():
            self._skipping = False
            return True
        if not self._skipping:
            self._skipping = True
            logger.warning("many runs are ending at once: their notifications go without the timeline picture "
                           "for a while (at most %g a minute)", self.budget.per_minute)
        logger.debug("no timeline picture for the notification of %s: the budget is spent", run_id)
        return False

    def _picture(self, run_id: str, state: str, log: RunLog) -> tuple[list[Log], bool, int]:
        """All the run's tasks (bounded), whether some were not read, and the requests made; and, for enough
        tasks, the run's timeline put in :attr:`pictures`. Whatever fails here leaves the notification as it is."""
        assert self.pictures is not None
        try:
            read = read_tasks(self.wes, log, stopped=self.stopped)
        except WesError as error:
            logger.info("no timeline for the notification of %s: its tasks could not be read: %s", run_id, error)
            return [], False, 1
        if len(read.tasks) >= self.min_tasks:
            self._draw(run_id, state, log, read)
        return read.tasks, not read.complete, read.pages

    def _draw(self, run_id: str, state: str, log: RunLog, read: RunTasks) -> None:
        started = time.monotonic()
        try:
            timeline = draw_run(log, read)
        except Exception:  # a bug or a broken matplotlib: the notification goes without its picture
            logger.exception("could not draw the timeline of run %s", run_id)
            return
        if not timeline.bars:
            return  # no task has a start time: a picture of nothing says nothing in a thread
        assert self.pictures is not None
        self.pictures.put(run_id, state, Picture(filename=filename(run_id), title=f"Timeline of run {run_id[:200]}",
                                                 png=timeline.png))
        logger.debug("drew the timeline of run %s (%d tasks, %d bars) in %.2f s", run_id, len(read.tasks),
                     timeline.bars, time.monotonic() - started)

    def _tail(self, log: RunLog) -> tuple[dict[str, Any], int]:
        """The end of the failing task's stderr (or the run's), as the outcome's ``log_*`` fields: what it is,
        the text, the lines that say what went wrong, the task; and the requests made."""
        if self.logs is None:
            return {}, 0
        try:
            picked, tail = failed_stderr(log, self.wes, self.logs)
        except WesError as error:
            logger.info("no stderr tail for the notification of %s: %s", log.run_id, error)
            return {}, 1
        return {"log_what": picked.what, "log_text": tail.text or None, "log_task_id": picked.task_id,
                "log_reasons": tail.reasons}, 1
