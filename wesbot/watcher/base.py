"""What every part of the watcher shares: its clocks, its settings, what it needs of WES, its one way of
doing things concurrently, and its bounded read of the run list."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..wes.models import RunListPage, RunLog, RunStatus, TaskPage
from ..wes.paging import Walk, walk

logger = logging.getLogger("wesbot.watcher")

T = TypeVar("T")
R = TypeVar("R")


class Clock(Protocol):
    """Two clocks, for two jobs. ``now()`` is wall time: what is stored in SQLite (due times survive a restart,
    and another process reads them) and shown to people. ``monotonic()`` never jumps: the in-process schedule
    (when to tick, sweep, post again, how long a sweep has run) follows it, so setting the wall clock back an
    hour does not stop the watcher for an hour."""

    def now(self) -> float: ...
    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class WatchedWes(Protocol):
    """What the watcher needs of a WES client."""

    @property
    def host(self) -> str: ...
    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage: ...
    def get_status(self, run_id: str) -> RunStatus: ...
    def get_run(self, run_id: str) -> RunLog: ...
    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage: ...


@dataclass(frozen=True, kw_only=True)
class WatcherSettings:
    poll_seconds: float = 30.0
    concurrency: int = 16
    subscription_days: float = 14.0
    lease_seconds: float = 30.0
    # Report a run that cannot be read once, after this long.
    unreadable_after: float = 600.0
    backoff_cap: float = 600.0
    # At most one post per channel per this many seconds.
    pace_seconds: float = 1.0
    # Posts to different channels go out this many at a time.
    post_concurrency: int = 8
    # Outbox retries back off up to this.
    retry_cap: float = 300.0
    # With at least this many runs due, read their states from GET /runs pages first (one request per page
    # instead of one per run); runs the list does not show, or shows as ended, still get a status call.
    sweep_min_runs: int = 50
    sweep_page_size: int = 1000
    sweep_max_pages: int = 100
    # Channel-wide watches: a burst of more than this many ends in one channel in one sweep is one digest.
    digest_after: int = 5
    # Bounds on one pass over GET /runs, so that a server handing out pages forever cannot take the watcher
    # over: a channel-watch sweep stops after this many pages (200k runs at the default page size) or once it
    # holds this many runs; both kinds of sweep stop after ``sweep_budget`` seconds. A sweep cut short only
    # announces ends of runs it already knew.
    watch_max_pages: int = 200
    watch_max_runs: int = 50_000
    sweep_seconds_max: float = 20.0
    # The end notification of a subscribed run with at least this many tasks carries the run's timeline picture
    # in its thread (WESBOT_TIMELINE_MIN_TASKS, 5 in `wesbot serve` and `wesbot watch`); 0: never.
    timeline_min_tasks: int = 0

    @property
    def sweep_budget(self) -> float:
        """How long one sweep may read pages: at most half a poll period, so subscriptions keep their pace."""
        return min(self.sweep_seconds_max, self.poll_seconds / 2)

    @property
    def longest_wait(self) -> float:
        """The longest a run can legitimately wait for its next poll. A stored due time further ahead than
        this was written before the wall clock was set back, and is treated as due now."""
        return max(self.poll_seconds, self.backoff_cap)


class Workers:
    """The watcher's one way of doing things at once: ``map`` on daemon threads, at most ``workers`` at a
    time, returning early (with what arrived) once ``stop`` is set.

    Daemon threads that end with each call, not a pool: a read stuck on a slow WES server must not hold up
    exit, and there is nothing to shut down but ``stop``, which the loop owns.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def map(self, fn: Callable[[T], R], items: Iterable[T], workers: int,
            on_result: Callable[[R], None] | None = None) -> list[R]:
        """``fn`` over ``items``; ``on_result`` is called in the calling thread with each result as it arrives.
        An exception in ``fn`` is a bug: it is logged and that item has no result."""
        todo: queue.SimpleQueue[T] = queue.SimpleQueue()
        count = 0
        for item in items:
            todo.put(item)
            count += 1
        if count == 0:
            return []
        results: queue.SimpleQueue[R] = queue.SimpleQueue()
        threads = [threading.Thread(target=self._work, args=(fn, todo, results), daemon=True,
                                    name=f"wesbot-worker-{i}") for i in range(max(1, min(workers, count)))]
        for thread in threads:
            thread.start()
        return self._gather(results, threads, count, on_result)

    def _work(self, fn: Callable[[T], R], todo: queue.SimpleQueue[T], results: queue.SimpleQueue[R]) -> None:
        while not self.stop.is_set():
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results.put(fn(item))
            except Exception:
                logger.exception("a watcher worker failed on %r", item)

    def _gather(self, results: queue.SimpleQueue[R], threads: list[threading.Thread], count: int,
                on_result: Callable[[R], None] | None) -> list[R]:
        out: list[R] = []
        while len(out) < count and not self.stop.is_set():
            try:
                result = results.get(timeout=0.1)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    break
                continue
            out.append(result)
            if on_result is not None:
                on_result(result)
        return out


class RunList:
    """GET /runs, page after page, within bounds (see :func:`wesbot.wes.paging.walk`): the one read of the run
    list that the subscription poller and the channel-watch sweep share."""

    def __init__(self, wes: WatchedWes, settings: WatcherSettings, clock: Clock, stop: threading.Event) -> None:
        self.wes = wes
        self.settings = settings
        self.clock = clock
        self.stop = stop

    def deadline(self) -> float:
        """When a sweep starting now must stop reading pages (monotonic time)."""
        return self.clock.monotonic() + self.settings.sweep_budget

    def pages(self, progress: Walk, max_pages: int, deadline: float) -> Iterator[RunListPage]:
        """No page is asked for once ``deadline`` has passed, nor after ``max_pages``: a server that hands out
        a new token and new runs on every page cannot hold the loop, or anything behind it, for longer."""
        size = self.settings.sweep_page_size
        for step in walk(lambda token: self.wes.list_runs(page_size=size, page_token=token),
                         size=lambda page: len(page.runs), max_pages=max_pages, progress=progress,
                         time_up=lambda: self.clock.monotonic() >= deadline, stopped=self.stop.is_set):
            yield step.page
