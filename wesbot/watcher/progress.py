"""Task progress for the cards of running runs: how many tasks are done, running and failed.

Neither the status call nor the run list carries task counts, so progress costs a read of the task list. It is
read for subscribed RUNNING runs only, each at most once every ``every`` seconds, and for at most ``per_cycle``
runs a cycle, the never-read first: with many runs the cards catch up over a few cycles instead of the server
taking a burst. A run's list is read up to ``pages`` pages; beyond that the card says "N+ tasks".

Stores what it read (``store.runs.record_progress``); the card is updated by delivery only when the counts
changed. Never posts, and a failed read costs nothing but the request: the card keeps the last counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..outcome import TaskProgress, task_progress
from ..store.watch import WatchStore
from ..wes.errors import WesError
from ..wes.models import Log
from ..wes.paging import Walk, walk
from .base import Clock, WatchedWes, Workers

logger = logging.getLogger("wesbot.watcher")


@dataclass(frozen=True, kw_only=True)
class ProgressSettings:
    every: float = 300.0
    per_cycle: int = 20
    pages: int = 5
    page_size: int = 100
    concurrency: int = 4


class ProgressReader:
    def __init__(self, store: WatchStore, wes: WatchedWes, workers: Workers, *, clock: Clock,
                 settings: ProgressSettings | None = None) -> None:
        self.store = store
        self.wes = wes
        self.workers = workers
        self.clock = clock
        self.settings = settings or ProgressSettings()

    def read(self) -> int:
        """Read the progress of the runs that are due; returns how many cards it changed."""
        due = self.store.runs.progress_due(self.clock.now(), every=self.settings.every,
                                           limit=self.settings.per_cycle)
        if not due:
            return 0
        changed = 0
        for run_id, progress in self.workers.map(self._read, due, self.settings.concurrency):
            stored = progress.as_json() if progress is not None else None
            changed += self.store.runs.record_progress(run_id, stored, now=self.clock.now())
        return changed

    def _read(self, run_id: str) -> tuple[str, TaskProgress | None]:
        return run_id, read_progress(self.wes, run_id, self.settings, stopped=self.workers.stop.is_set)


def read_progress(wes: WatchedWes, run_id: str, settings: ProgressSettings,
                  stopped: Callable[[], bool] | None = None) -> TaskProgress | None:
    """The run's task progress from its task list (``settings.pages`` pages at most); None when the server gives
    no tasks or they cannot be read."""
    tasks: list[Log] = []
    walked = Walk()
    try:
        for step in walk(lambda token: wes.list_tasks(run_id, page_size=settings.page_size, page_token=token),
                         size=lambda page: len(page.tasks), max_pages=settings.pages, stopped=stopped,
                         progress=walked):
            tasks += step.page.tasks
    except WesError as error:
        logger.debug("no task progress for run %s: %s", run_id, error)
        return None
    if not tasks:
        return None  # a server that gives no tasks: the message says nothing of them
    return task_progress(tasks, more=not walked.complete)
