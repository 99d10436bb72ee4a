"""What a notification says about a run that ended: read from WES, best effort, for both jobs that
announce ends (subscriptions and channel-wide watches)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ..config import run_link
from ..logref import DETAILS_LOG_LINES, LogReader, failed_log_ref
from ..outcome import RunOutcome, basic_outcome, failed_tasks
from ..wes.errors import WesError
from ..wes.models import Log, RunLog, RunStatus, is_terminal
from .base import WatchedWes

logger = logging.getLogger("wesbot.watcher")

# The first page of a failed run's tasks, for the "Failed tasks" section of its notification.
TASKS_PAGE = 100


class Details:
    """Reads the details of an ended run: the run log, the failed tasks, the end of the failing stderr.
    Each method returns how many WES requests it made, for the watcher's statistics."""

    def __init__(self, wes: WatchedWes, logs: LogReader | None = None, *, run_url: str | None = None) -> None:
        self.wes = wes
        self.logs = logs  # None: no log tails in notifications
        self.run_url = run_url  # the run-link template (None: no link to the run's page)

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
        if not outcome.failed:
            return outcome, requests
        tasks, more, asked = self._tasks(run_id, log)
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

    def _tail(self, log: RunLog) -> tuple[dict[str, Any], int]:
        """The end of the failing task's stderr (or the run's), as the outcome's ``log_*`` fields: what it is,
        the text, the lines that say what went wrong, the task; and the requests made."""
        if self.logs is None:
            return {}, 0
        try:
            ref, what, task_id = failed_log_ref(log, self.wes, "stderr")
            tail = self.logs.tail(ref, what=what, lines=DETAILS_LOG_LINES, max_chars=1500)
        except WesError as error:
            logger.info("no stderr tail for the notification of %s: %s", log.run_id, error)
            return {}, 1
        return {"log_what": what, "log_text": tail.text or None, "log_task_id": task_id,
                "log_reasons": tail.reasons}, 1
