"""The watcher's loop: the lease and the schedule, nothing else. Each step is a list of named jobs (arq's
worker loop is the model): expire, follow cancels, poll subscriptions, sweep channel watches, deliver.

Only the process that holds the lease row in SQLite runs the jobs, so two processes on one database never
both post; another waits, and takes over within one lease period if this one dies. The schedule is kept in
monotonic time (the lease and stored due times are wall time, shared with other processes and restarts).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from .. import observe
from ..config import Settings
from ..logref import LogReader
from ..routing import server_label
from ..servers import ServerConfig
from ..slack.owners import OwnerDirectory
from ..store.cancels import CancelStore
from ..store.watch import WatchStore
from ..store.watches import WatchesStore
from .base import Clock, RunList, SystemClock, WatchedWes, WatcherSettings, Workers
from .cancels import CancelFollower
from .delivery import DeliverStats, Delivery, Poster
from .details import Details
from .progress import ProgressReader
from .reports import ScheduledReports
from .subscriptions import SubscriptionPoller, TickStats
from .sweep import SweepStats, WatchSweeper

logger = logging.getLogger("wesbot.watcher")

LEASE = "watcher"
# How long stopping waits for the watchers to finish their step.
WATCHER_JOIN_SECONDS = 2.0
T = TypeVar("T")


def lease_name(server: str | None) -> str:
    """The lease of one server's watcher: ``watcher`` with one server, ``watcher:NAME`` with several."""
    return LEASE if server is None else f"{LEASE}:{server}"


class Watcher:
    """The background half of wesbot: built from its collaborators, run by :meth:`run` (or :meth:`step` by
    step in tests). ``logs`` adds log tails to failure notifications; ``cancels`` and ``watches`` turn on
    following cancels and sweeping channel-wide watches; ``on_ended`` is delivery's (see :class:`Delivery`)."""

    def __init__(self, store: WatchStore, wes: WatchedWes, poster: Poster, *, host: str, server: str | None = None,
                 settings: WatcherSettings | None = None, clock: Clock | None = None, owner: str | None = None,
                 logs: LogReader | None = None, cancels: CancelStore | None = None,
                 watches: WatchesStore | None = None, stop: threading.Event | None = None,
                 run_url: str | None = None, on_ended: Callable[[list[str]], None] | None = None,
                 owner_tag: str | None = None, owners: Callable[[str], str | None] | None = None) -> None:
        self.store = store
        self.watches = watches
        self.cancels = cancels
        self.settings = settings or WatcherSettings()
        self.clock = clock or SystemClock()
        self.owner = owner or f"wesbot-{uuid.uuid4().hex[:12]}"
        self.stop = stop or threading.Event()
        self.wake = threading.Event()
        # Set while this process holds the lease (the sender thread posts only then), and when posts are owed.
        self._holding = threading.Event()
        self._owed = threading.Event()
        workers = Workers(self.stop)
        # run_url: the server's run-link template; notifications get an Open button to the run's page.
        self.run_url = run_url
        details = Details(wes, logs, run_url=run_url)
        # The subscriptions' end notifications carry the run's timeline picture (record_terminal takes it from
        # store.pictures, in the transaction that queues them); the channel watches' do not.
        drawing = Details(wes, logs, run_url=run_url, pictures=store.pictures,
                          min_tasks=self.settings.timeline_min_tasks, stopped=self.stop.is_set)
        runs = RunList(wes, self.settings, self.clock, self.stop)
        # With several servers, ``server`` names this one: in its messages, its buttons and its lease.
        self.server = server
        self.lease = lease_name(server)
        label = server_label(server or "", host, several=server is not None)
        jobs = {"host": host, "label": label, "settings": self.settings, "clock": self.clock,
                "owed": self._owed.set}
        self.subscriptions = SubscriptionPoller(store, wes, drawing, runs, workers, server=server,
                                                **jobs)  # type: ignore[arg-type]
        self.sweeper = None if watches is None else WatchSweeper(store, watches, wes, details, runs, workers,
                                                                  owner_tag=owner_tag, **jobs)  # type: ignore[arg-type]
        self.follower = None if cancels is None else CancelFollower(cancels, wes, settings=self.settings,
                                                                    clock=self.clock, stop=self.stop)
        self.progress = ProgressReader(store, wes, workers, clock=self.clock)
        self.reports = ScheduledReports(store, wes, logs, label=label, clock=self.clock, owed=self._owed.set,
                                        owner_tag=owner_tag)
        self.delivery = Delivery(store, poster, workers, host=host, settings=self.settings, clock=self.clock,
                                 cancels=cancels, server=server, run_url=run_url, on_ended=on_ended, owners=owners)
        self._next_tick = 0.0
        self._next_sweep = 0.0
        self._failing_steps: set[str] = set()

    # -- the jobs, one call each (tests drive them one by one) -------------------------------------------

    def tick(self) -> TickStats:
        return self.subscriptions.tick()

    def expire(self) -> int:
        return self.subscriptions.expire()

    def read_progress(self) -> int:
        return self.progress.read()

    def post_reports(self) -> int:
        return self.reports.post_due()

    def sweep_watches(self) -> SweepStats:
        return self.sweeper.sweep() if self.sweeper is not None else SweepStats()

    def follow_cancels(self) -> int:
        return self.follower.follow() if self.follower is not None else 0

    def deliver(self, *, limit: int = 200) -> DeliverStats:
        return self.delivery.deliver(limit=limit)

    # -- the loop --------------------------------------------------------------------------------------

    def step(self, *, deliver: bool = True) -> float:
        """One turn of the loop; returns how long to wait before the next. ``deliver=False`` when a sender
        thread posts (:meth:`run`), so that posting starts while a long cycle is still reading runs."""
        started = self.clock.monotonic()
        period = self.settings.lease_seconds
        if not self.store.leases.acquire(self.lease, self.owner, now=self.clock.now(), period=period):
            self._holding.clear()
            observe.lease(False)
            return max(period / 3, 0.2)
        self._holding.set()
        observe.lease(True)
        self._contained("expiring subscriptions", self.expire)
        self._contained("following cancels", self.follow_cancels)
        if started >= self._next_tick:
            # Subscriptions first: a long or failing channel-wide sweep must not hold up their polling (and a
            # sweep is bounded in time, so the next cycle's polls wait at most that long behind it).
            self._poll_subscriptions()
            self._contained("reading task progress", self.read_progress)
            self._contained("making scheduled reports", self.post_reports)
        if self.sweeper is not None and started >= self._next_sweep:
            sweep = self._contained("sweeping channel watches", self.sweep_watches)
            self._next_sweep = self.clock.monotonic() + self.settings.poll_seconds
            if sweep is not None and sweep.listed:
                logger.debug("sweep: %s", sweep)
        if deliver:
            self._contained("delivering to Slack", self.deliver)
        else:
            self._owed.set()
        return self._wait(period)

    def _poll_subscriptions(self) -> None:
        """:meth:`tick`, then the next one scheduled: a poll period on, or sooner if a stored run is due."""
        stats = self._contained("polling subscribed runs", self.tick)
        # errbot's habit: the next cycle is set only once this one has finished.
        self._next_tick = self.clock.monotonic() + self.settings.poll_seconds
        if stats is not None and stats.polled:
            logger.debug("tick: %s", stats)
        due_in = self._stored_wait(self.store.runs.next_due())
        if due_in is not None:
            self._next_tick = min(self._next_tick, self.clock.monotonic() + max(due_in, 0.5))

    def _stored_wait(self, when: float | None) -> float | None:
        """Seconds until a stored (wall) time. One further ahead than any wait the watcher sets was written
        before the wall clock went back: due now (the store reads it as due too)."""
        if when is None:
            return None
        wait = when - self.clock.now()
        return 0.0 if wait > self.settings.longest_wait else wait

    def _wait(self, period: float) -> float:
        """How long until something is due: the schedule's own times in monotonic time, stored ones in wall."""
        mono = self.clock.monotonic()
        waits = [self._next_tick - mono, period / 3]
        if self.sweeper is not None:
            waits.append(self._next_sweep - mono)
        upcoming = self._stored_wait(self.store.outbox.next_time())
        if upcoming is not None:
            waits.append(upcoming)
        if self.delivery.owed():
            waits.append(min(self.settings.pace_seconds, 1.0))
        if self.follower is not None and self.follower.cancels.following():
            waits.append(1.0)
        return max(min(waits), 0.05)

    def _contained(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one job so that its failure (a bug, a hostile body's RecursionError) never stops the others.
        Logged with its traceback once per episode, not every cycle."""
        try:
            result = fn()
        except Exception:
            if what not in self._failing_steps:
                self._failing_steps.add(what)
                logger.exception("%s failed; the other steps go on, and it is tried again next cycle", what)
            return None
        if what in self._failing_steps:
            self._failing_steps.discard(what)
            logger.info("%s works again", what)
        return result

    def send_forever(self) -> None:
        """The sender thread: posts whatever is owed while this process holds the lease."""
        while not self.stop.is_set():
            busy = False
            if self._holding.is_set():
                stats = self._contained("delivering to Slack", self.deliver)
                busy = stats is not None and stats.busy
            if self._owed.wait(0.05 if busy else (0.25 if self.delivery.owed() else 1.0)):
                self._owed.clear()

    def run(self) -> None:
        """Loop until :attr:`stop` is set; ``wake`` cuts a wait short (a new subscription's card).
        Polling runs in this thread, posting in a sender thread, so neither waits for the other."""
        logger.info("watcher %s started (poll every %g s)", self.owner, self.settings.poll_seconds)
        sender = threading.Thread(target=self.send_forever, name="wesbot-sender", daemon=True)
        sender.start()
        holding = False
        try:
            while not self.stop.is_set():
                wait, holding = self._turn(holding)
                if self.wake.wait(min(wait, 1.0)):
                    self.wake.clear()
                    self._owed.set()
        finally:
            self._owed.set()
            sender.join(3.0)
            observe.lease(False)
            try:
                self.store.leases.release(self.lease, self.owner)
            except Exception:
                logger.warning("could not release the watcher lease", exc_info=True)
            logger.info("watcher %s stopped", self.owner)

    def _turn(self, holding: bool) -> tuple[float, bool]:
        """One step of :meth:`run`, logging when this process starts or stops holding the lease."""
        try:
            wait = self.step(deliver=False)
            holder = self.store.leases.holder(self.lease)
        except Exception:
            logger.exception("watcher step failed; trying again shortly")
            return 5.0, holding
        now_holding = holder is not None and holder[0] == self.owner
        if now_holding != holding:
            logger.info("watcher %s %s the lease", self.owner, "holds" if now_holding else "waits for")
        return wait, now_holding


def build_watcher(settings: Settings, store: WatchStore, wes: WatchedWes, poster: Poster, *,
                  server: ServerConfig | None = None, several: bool = False, logs: LogReader | None = None,
                  stop: threading.Event | None = None, on_ended: Callable[[list[str]], None] | None = None) -> Watcher:
    """The watcher of one WES server (default: the first configured) as ``wesbot serve`` and ``wesbot watch``
    run it: subscriptions, channel-wide watches and cancels, on ``store`` (scoped to that server), at that
    server's poll interval. ``several``: other servers are watched too, so messages name this one.
    ``on_ended``: told who watched a run once its end notification is posted (the Home tabs)."""
    server = server or settings.servers[0]
    return Watcher(
        store, wes, poster, host=wes.host, server=server.name if several else None, logs=logs, stop=stop,
        cancels=CancelStore(store, server.url), watches=WatchesStore(store), run_url=server.run_url, on_ended=on_ended,
        owner_tag=server.owner_tag, owners=_owners(server, poster),
        settings=WatcherSettings(poll_seconds=server.poll_seconds, concurrency=settings.poll_concurrency,
                                 subscription_days=settings.subscription_days,
                                 lease_seconds=settings.lease_seconds, digest_after=settings.digest_after,
                                 timeline_min_tasks=settings.timeline_min_tasks),
    )


def _owners(server: ServerConfig, poster: Poster) -> Callable[[str], str | None] | None:
    """Email address -> Slack user id for the owner mentions, when the server names owners and the poster can
    ask Slack (``SlackPoster.user_by_email``)."""
    find = getattr(poster, "user_by_email", None)
    return OwnerDirectory(find) if server.owner_tag and callable(find) else None


class Fleet:
    """One watcher per WES server, each in its own thread with its own schedule, backoff and lease: a server
    that hangs or is down holds up its own polls only, never another server's polls, cards or notifications."""

    def __init__(self, watchers: list[Watcher], stop: threading.Event) -> None:
        self.watchers = watchers
        self.stop = stop
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for watcher in self.watchers:
            name = f"wesbot-watcher-{watcher.server}" if watcher.server else "wesbot-watcher"
            thread = threading.Thread(target=watcher.run, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self) -> None:
        """Until ``stop``: for ``wesbot watch``, which has nothing else to do in its main thread."""
        self.start()
        while not self.stop.wait(1.0):
            pass
        self.join(WATCHER_JOIN_SECONDS)

    def join(self, timeout: float) -> None:
        """Wake every watcher (``stop`` is set) and wait for them, at most ``timeout`` seconds in all."""
        for watcher in self.watchers:
            watcher.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
