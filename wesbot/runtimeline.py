"""A run's timeline: its whole task list, read within bounds, and the picture of it (:mod:`wesbot.timeline`).

One read and one drawing for the three places that show it: ``/wes timeline`` (the command core reads, the Slack
layer draws and uploads), ``wesbot ask timeline --out`` and the picture in the thread of an end notification (the
watcher reads and draws; delivery uploads). The task list is walked with the one walk over ``next_page_token``
(:func:`wesbot.wes.paging.walk`), at most :data:`MAX_PAGES` pages of :data:`PAGE_SIZE` (5,000 tasks) and
:data:`READ_SECONDS` seconds: what was not read is said, in the picture's title and in the message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .format import shorten
from .timeline import Timeline, draw_timeline
from .wes.errors import WesError
from .wes.models import Log, RunLog, TaskPage, is_terminal
from .wes.paging import Walk, walk

__all__ = ["MAX_PAGES", "PAGE_SIZE", "READ_SECONDS", "RunTasks", "TaskLister", "cut_note", "draw_run", "filename",
           "read_tasks", "title"]

MAX_PAGES = 50
PAGE_SIZE = 100
READ_SECONDS = 30.0


class TaskLister(Protocol):
    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage: ...


@dataclass(frozen=True, kw_only=True)
class RunTasks:
    """What was read of a run's task list: the tasks, whether that is all of them, and why not when it is not
    (``cut``: "pages", "time", "stopped", or the error that stopped a later page)."""

    tasks: list[Log]
    complete: bool
    pages: int
    cut: str | None = None


def read_tasks(wes: TaskLister, run: RunLog, *, max_pages: int = MAX_PAGES, page_size: int = PAGE_SIZE,
               seconds: float = READ_SECONDS, stopped: Callable[[], bool] | None = None) -> RunTasks:
    """Every task of ``run`` (its inline ``task_logs`` when it has some, as the rest of wesbot reads them; else
    the task list, page by page, within the bounds). Raises the WesError of the first page; an error on a later
    page keeps what was read, as a cut list."""
    if run.task_logs:
        return RunTasks(tasks=list(run.task_logs), complete=True, pages=0)
    deadline = time.monotonic() + seconds
    walked = Walk()
    tasks: list[Log] = []
    try:
        for step in walk(lambda token: wes.list_tasks(run.run_id, page_size=page_size, page_token=token, run=run),
                         size=lambda page: len(page.tasks), max_pages=max_pages,
                         time_up=lambda: time.monotonic() >= deadline, stopped=stopped, progress=walked):
            tasks += step.page.tasks
    except WesError as error:
        if not walked.pages or not tasks:
            raise
        return RunTasks(tasks=tasks, complete=False, pages=walked.pages, cut=str(error))
    return RunTasks(tasks=tasks, complete=walked.complete, pages=walked.pages, cut=None if walked.complete
                    else walked.cut)


def cut_note(read: RunTasks) -> str | None:
    """What was not read, in one sentence ("Only the first 5,000 tasks were read …"); None when all were."""
    if read.complete:
        return None
    why = {"pages": f"the limit of {read.pages} pages", "time": f"the limit of {READ_SECONDS:g} s of reading",
           "stopped": "wesbot stopping"}.get(read.cut or "", f"an error on page {read.pages + 1}")
    return (f"Only the first {len(read.tasks):,} tasks were read ({why}); the server lists more, "
            "which the picture does not show.")


def title(run_id: str, read: RunTasks) -> str | None:
    """The picture's title when the list was cut (else None: the default, "Run ID: N tasks")."""
    if read.complete:
        return None
    return f"Run {shorten(run_id, 80)}: the first {len(read.tasks):,} tasks (the server lists more)"


def draw_run(run: RunLog, read: RunTasks, *, now: float | None = None) -> Timeline:
    """The picture of ``run``'s tasks (``now``, epoch: what the running tasks are drawn up to)."""
    return draw_timeline(read.tasks, run_id=run.run_id, run_start=run.run_log.start_time,
                         run_end=run.run_log.end_time, run_terminal=is_terminal(run.state),
                         now=time.time() if now is None else now, title=title(run.run_id, read))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def filename(run_id: str) -> str:
    """``timeline-RUN.png``, with only letters, digits, ``.``, ``_`` and ``-`` of the run id (at most 80)."""
    return f"timeline-{_UNSAFE.sub('_', run_id).strip('._')[:80] or 'run'}.png"
