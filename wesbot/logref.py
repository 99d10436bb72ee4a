"""Which log says why a run failed, and what reads it: shared by the command core (``/wes logs``, details) and
the watcher (failure notifications), so that both show the same log and call it by the same name."""

from __future__ import annotations

import logging
from typing import NamedTuple, Protocol

from .outcome import task_failed
from .wes.errors import WesError
from .wes.logs import LogTail
from .wes.models import Log, RunLog, TaskPage, is_terminal

logger = logging.getLogger("wesbot.core")

# The first page of a run's tasks, read when the run log lists none inline.
TASKS_PAGE = 100


class LogReader(Protocol):
    """What the core and the watcher need to read a log's end (``wesbot.wes.logs.LogFetcher`` is one)."""

    def tail(self, ref: str | None, *, what: str, lines: int = 30, max_chars: int = 2800,
             relative_to: str | None = None) -> LogTail: ...


# A failed run's details and failure notifications show this many lines of stderr; /wes logs shows 30.
DETAILS_LOG_LINES = 10


class TaskLister(Protocol):
    def list_tasks(
        self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
        run: RunLog | None = None,
    ) -> TaskPage: ...


class LogRef(NamedTuple):
    """Which log to show: the stdout/stderr field (None: the server gave none), the words that say whose
    log it is ("stderr of task align", "stderr of run R (task align has no stderr of its own)"), and
    the id of the task it was chosen for (None for the run's own log), for a "Show more logs" button."""

    ref: str | None
    what: str
    task_id: str | None


def task_log_ref(task: Log, run: RunLog | None, stream: str = "stderr") -> LogRef:
    """A task's stdout/stderr; the run's when the task has none of its own and the run has one.

    Many servers keep one log per run and leave the tasks' fields out. The description then names the
    run and says the task has none, so no reader takes the run's log for the task's. ``""`` is a log
    (an empty one) and is kept; only a missing field (None) falls back. ``run`` may be None (unknown).
    """
    name = task.name or task.id or "(unnamed)"
    own: str | None = getattr(task, stream)
    if own is None and run is not None and getattr(run.run_log, stream) is not None:
        what = f"{_of_run(stream, run.run_id)} (task {name} has no {stream} of its own)"
        return LogRef(getattr(run.run_log, stream), what, task.id)
    return LogRef(own, f"{stream} of task {name}", task.id)


def failed_log_ref(run: RunLog, wes: TaskLister, stream: str) -> LogRef:
    """The log to show for a run: the first failed task's (or the run's, for a task without one), else
    the run's own. Which task failed is :func:`wesbot.outcome.task_failed`'s rule."""
    tasks = run.task_logs
    if not tasks:
        try:
            tasks = wes.list_tasks(run.run_id, page_size=TASKS_PAGE, run=run).tasks
        except WesError as error:
            logger.info("no task list for %s: %s", run.run_id, error)
            tasks = []
    terminal = is_terminal(run.state)
    for task in tasks or []:
        if task_failed(task, terminal):
            return task_log_ref(task, run, stream)
    return LogRef(getattr(run.run_log, stream), _of_run(stream, run.run_id), None)


def _of_run(stream: str, run_id: str) -> str:
    return f"{stream} of run {run_id}"


def is_run_log(what: str, run_id: str, stream: str = "stderr") -> bool:
    """Whether the log :func:`failed_log_ref` (or :func:`task_log_ref`) described as ``what`` is the run's own
    ``stream`` field (the run's, or the run's standing in for a task's): a message showing it need not show
    that field again."""
    return what.startswith(_of_run(stream, run_id))


def failed_stderr(run: RunLog, wes: TaskLister, logs: LogReader, *, max_chars: int = 1500) -> tuple[LogRef, LogTail]:
    """The end of the stderr that says why ``run`` failed (:func:`failed_log_ref`'s), as notifications and
    reports quote it. Raises WesError when it cannot be read."""
    picked = failed_log_ref(run, wes, "stderr")
    return picked, logs.tail(picked.ref, what=picked.what, lines=DETAILS_LOG_LINES, max_chars=max_chars)
