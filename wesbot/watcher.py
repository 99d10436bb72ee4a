"""The watcher: polls watched runs, records what it sees in SQLite, and posts what is owed to Slack.

One loop, in ``wesbot serve`` (a thread) or ``wesbot watch`` (alone), and only in the process that holds
the lease row in SQLite, so two processes on one database never both post. Each step:

1. renew the lease (a second process waits, and takes over within one lease period if this one dies);
2. expire old subscriptions (some servers report RUNNING forever for ids they never saw);
3. :meth:`Watcher.tick`: read each distinct due run once (concurrently, bounded), and store the result.
   A terminal state and the notifications it owes are written in one transaction, before any post;
4. :meth:`Watcher.deliver`: post cards and the outbox to Slack, paced per channel, retrying what can be
   retried (429 after its Retry-After, 5xx and connection errors with backoff) and giving up, with a DM
   to the subscribers, on permanent errors (``not_in_channel``...).

Nothing is kept only in memory but the per-channel pacing and the loop's schedule. ``tick`` and ``deliver``
take the time from a :class:`Clock`, so tests drive them with a fake one and no real sleeps: wall time for
what is stored and shown, monotonic time for the in-process schedule. Every pass over GET /runs is bounded
in pages, runs held and time, so a server whose list never ends cannot take the loop over.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import httpx

from .cancel import follow as follow_cancel
from .cancel import outcome_text as cancel_outcome_text
from .cancel import recover as recover_cancels
from .core import DETAILS_LOG_LINES, LogReader, failed_log_ref, run_failed
from .slack.blocks import section
from .slack.cards import FailedTask, RunOutcome, card, digest, notice, notification, unreadable_text
from .slack.poster import PostResult, SlackPoster
from .store.cancels import CancelStore
from .store.watch import OutboxRow, Subscription, WatchedRun, WatchStore
from .store.watches import ChannelWatch, Owed, WatchesStore
from .wes.errors import NotFound, WesAuthError, WesError
from .wes.models import (
    FAILED,
    RunListPage,
    RunLog,
    RunState,
    RunStatus,
    RunSummary,
    State,
    TaskPage,
    is_terminal,
    parse_state,
    state_label,
)

logger = logging.getLogger("wesbot.watcher")

LEASE = "watcher"
# Slack refuses the bot token: try again this often (a person has to fix the token).
TOKEN_RETRY = 300.0
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

    @property
    def sweep_budget(self) -> float:
        """How long one sweep may read pages: at most half a poll period, so subscriptions keep their pace."""
        return min(self.sweep_seconds_max, self.poll_seconds / 2)

    @property
    def longest_wait(self) -> float:
        """The longest a run can legitimately wait for its next poll. A stored due time further ahead than
        this was written before the wall clock was set back, and is treated as due now."""
        return max(self.poll_seconds, self.backoff_cap)


@dataclass
class TickStats:
    due: int = 0
    swept: int = 0  # runs whose state came from the list
    sweep_requests: int = 0
    polled: int = 0
    changed: int = 0
    ended: int = 0
    failed: int = 0
    gone: int = 0
    wes_requests: int = 0
    stopped: bool = False


@dataclass
class SweepStats:
    listed: int = 0
    requests: int = 0
    queued: int = 0
    digests: int = 0
    confirmed: set[str] = field(default_factory=set)


@dataclass
class _Paging:
    """How one pass over GET /runs went: ``complete`` when it read the list to its end; ``cut`` names the
    bound that stopped it early ("pages", "runs" or "time"); ``stopped`` when the watcher is stopping."""

    pages: int = 0
    complete: bool = False
    cut: str | None = None
    stopped: bool = False


@dataclass
class DeliverStats:
    sent: int = 0
    cards: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: DeliverStats) -> None:
        self.sent += other.sent
        self.cards += other.cards
        self.retried += other.retried
        self.failed += other.failed


@dataclass(frozen=True, kw_only=True)
class _Poll:
    run: WatchedRun
    status: RunStatus | None = None
    outcome: RunOutcome | None = None
    error: WesError | None = None
    requests: int = 1


@dataclass
class _Pacing:
    """When each channel may take its next post. Kept in memory only, so in monotonic time: callers give
    durations, never times, and a wall clock set back cannot hold a channel's posts for an hour."""

    clock: Clock
    next_allowed: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ready(self, channel: str) -> bool:
        now = self.clock.monotonic()
        with self.lock:
            return self.next_allowed.get(channel, now) <= now

    def hold(self, channel: str, seconds: float) -> None:
        """No post to ``channel`` for ``seconds`` from now (a longer hold already set stays)."""
        until = self.clock.monotonic() + seconds
        with self.lock:
            self.next_allowed[channel] = max(self.next_allowed.get(channel, until), until)


class Watcher:
    def __init__(self, store: WatchStore, wes: WatchedWes, poster: SlackPoster, *, host: str,
                 settings: WatcherSettings | None = None, clock: Clock | None = None,
                 owner: str | None = None) -> None:
        self.store = store
        self.wes = wes
        self.poster = poster
        self.host = host
        self.settings = settings or WatcherSettings()
        self.clock = clock or SystemClock()
        self.owner = owner or f"wesbot-{uuid.uuid4().hex[:12]}"
        self.stop = threading.Event()
        self.wake = threading.Event()
        # Reads the end of the first failed task's stderr for failure notifications (None: no tails).
        self.logs: LogReader | None = None
        # Cancels requested from Slack, followed until their run ends (None: not followed here).
        self.cancels: CancelStore | None = None
        # Channel-wide watches (None: not swept here).
        self.watches: WatchesStore | None = None
        self._next_sweep = 0.0
        self._pacing = _Pacing(self.clock)
        self._post_pool: ThreadPoolExecutor | None = None
        # Set while this process holds the lease (the sender thread posts only then), and when posts are owed.
        self._holding = threading.Event()
        self._owed = threading.Event()
        self._next_tick = 0.0
        # When a sweep does not pay (few of our runs per page read), skip sweeping for a few cycles.
        self._skip_sweeps = 0
        self._told_no_states = False
        # Set while channel-watch sweeps are being cut short by a bound (warned once per episode).
        self._sweeps_cut = False
        self._failing_steps: set[str] = set()
        self._token_refused_since: float | None = None

    # -- one poll cycle ---------------------------------------------------------------------------

    def tick(self) -> TickStats:
        """Read every due run once and store what was seen. Never raises for WES or Slack trouble."""
        stats = TickStats()
        now = self.clock.now()
        # A due time further ahead than any wait we set was written before the wall clock went back: due now.
        due = self.store.due_runs(now, horizon=self.settings.longest_wait)
        stats.due = len(due)
        if not due:
            return stats
        listed = self._sweep(due, stats)
        # Runs the list showed as still going are settled; the rest (not listed, ended, no state) get a status call.
        settled = [(run.run_id, listed[run.run_id]) for run in due
                   if run.run_id in listed and listed[run.run_id] is not None and not is_terminal(listed[run.run_id])]
        settled_ids = {run_id for run_id, _ in settled}
        if settled:
            try:
                stats.changed += self.store.record_states(
                    [(run_id, str(state)) for run_id, state in settled], now=now,
                    next_poll_at=now + self.settings.poll_seconds)
                stats.swept = len(settled)
                self._auth_recovered()
            except Exception:
                logger.exception("could not record the states read from the run list")
        to_poll = [run for run in due if run.run_id not in settled_ids]
        listed_ended = {run_id for run_id, state in listed.items() if is_terminal(state)}
        quiet: list[_Poll] = []

        def arrived(poll: _Poll) -> None:
            """Runs still going are recorded together at the end; an end is recorded (and can be posted by
            the sender thread) as soon as it is read, not after the whole cycle."""
            stats.polled += 1
            stats.wes_requests += poll.requests
            if poll.status is not None and poll.outcome is None:
                quiet.append(poll)
                return
            try:
                self._apply(poll, self.clock.now(), stats)
            except Exception:  # one bad run must not stop the others (errbot's poller does the same)
                logger.exception("could not record the poll of run %s", poll.run.run_id)

        polls = _parallel(lambda run: self._poll(run, run.run_id in listed_ended), to_poll, self.settings.concurrency,
                          self.stop, on_result=arrived)
        if len(polls) < len(to_poll):
            stats.stopped = True
        if quiet:
            now = self.clock.now()
            stats.changed += self.store.record_states(
                [(p.run.run_id, None if p.status is None or p.status.state is None else str(p.status.state))
                 for p in quiet], now=now, next_poll_at=now + self.settings.poll_seconds)
            self._auth_recovered()
        stats.wes_requests += stats.sweep_requests
        return stats

    def _sweep(self, due: list[WatchedRun], stats: TickStats) -> dict[str, State]:
        """States of due runs read from GET /runs pages, when that is cheaper than a status call per run.
        At most ``sweep_max_pages`` pages and ``sweep_budget`` seconds: the runs it did not reach get a status
        call, so a list that never ends costs a bounded delay, never a missed poll."""
        if len(due) < self.settings.sweep_min_runs:
            return {}
        if self._skip_sweeps > 0:
            self._skip_sweeps -= 1
            return {}
        wanted = {run.run_id for run in due}
        found: dict[str, State] = {}
        paging = _Paging()
        try:
            for page in self._pages(paging, self.settings.sweep_max_pages, self._sweep_deadline()):
                found.update((item.run_id, item.state) for item in page.runs if item.run_id in wanted
                             and item.run_id not in found)
                if len(found) == len(wanted):
                    break
        except WesError as error:
            logger.info("reading the run list failed (%s); asking each run for its status", error)
        stats.sweep_requests += paging.pages
        if paging.cut is not None:
            logger.debug("the run list was read only in part (%s bound, %d pages)", paging.cut, paging.pages)
        stateless = sum(state is None for state in found.values())
        if stateless and not self._told_no_states:
            logger.info("the WES server lists runs without their state; asking each run for its status instead")
            self._told_no_states = True
        useful = len(found) - stateless
        if paging.pages and useful < 2 * paging.pages:
            # Most of what the list holds is not ours: status calls are cheaper. Try again in a while.
            self._skip_sweeps = 10
        return found

    def _sweep_deadline(self) -> float:
        """When a sweep starting now must stop reading pages (monotonic time)."""
        return self.clock.monotonic() + self.settings.sweep_budget

    def _pages(self, paging: _Paging, max_pages: int, deadline: float) -> Iterator[RunListPage]:
        """GET /runs, page after page, until the end of the list or a bound; ``paging`` records which.

        The end is an empty page, an empty token, or a token seen before (some servers repeat one forever);
        ``paging.complete`` is set before the last page is yielded. Never more than ``max_pages`` pages, and no
        page is asked for once ``deadline`` (monotonic) has passed: a server that hands out a new token and new
        runs on every page cannot hold the loop, or anything waiting behind it, for longer than that."""
        token: str | None = None
        tokens: set[str | None] = {None}
        while True:
            if self.stop.is_set():
                paging.stopped = True
                return
            paging.cut = _page_bound(paging.pages, max_pages, self.clock.monotonic(), deadline)
            if paging.cut is not None:
                return
            page = self.wes.list_runs(page_size=self.settings.sweep_page_size, page_token=token)
            paging.pages += 1
            nxt = page.next_page_token
            paging.complete = not page.runs or not nxt or nxt in tokens
            yield page
            if paging.complete:
                return
            tokens.add(nxt)
            token = nxt

    def _poll(self, run: WatchedRun, listed_ended: bool = False) -> _Poll:
        """Read one run. When the run list already showed it ended, GET /runs/{id} confirms it and gives
        the details in one request (its state is the confirmation); otherwise the cheap status call first."""
        try:
            if listed_ended:
                log = self.wes.get_run(run.run_id)
                status = RunStatus(run_id=run.run_id, state=log.state)
                if not is_terminal(status.state):
                    return _Poll(run=run, status=status)
                outcome, requests = self._outcome(run.run_id, status, log)
                return _Poll(run=run, status=status, outcome=outcome, requests=requests)
            status = self.wes.get_status(run.run_id)
            if not is_terminal(status.state):
                return _Poll(run=run, status=status)
            outcome, requests = self._outcome(run.run_id, status)
            return _Poll(run=run, status=status, outcome=outcome, requests=1 + requests)
        except WesError as error:
            return _Poll(run=run, error=error)
        except Exception:  # a bug must not lose the run: it is polled again, with backoff
            logger.exception("polling run %s failed", run.run_id)
            return _Poll(run=run, error=WesError("wesbot could not poll the run (see its log)"))

    def _outcome(self, run_id: str, status: RunStatus, log: RunLog | None = None) -> tuple[RunOutcome, int]:
        """Details for the notification: best effort, the notification goes out without them if need be."""
        state = str(status.state)
        requests = 1
        if log is None:
            try:
                log = self.wes.get_run(run_id)
            except WesError as error:
                logger.info("run %s ended %s, but its details could not be read: %s", run_id, state, error)
                return RunOutcome(run_id=run_id, state=state), requests
        failed_tasks: list[FailedTask] = []
        more = False
        is_failure = status.state in FAILED or (log.run_log.exit_code not in (None, 0, -1))
        if is_failure:
            tasks = log.task_logs
            if not tasks:
                try:
                    requests += 1
                    page = self.wes.list_tasks(run_id, page_size=100, run=log)
                    tasks, more = page.tasks, page.next_page_token is not None
                except WesError:
                    tasks = []
            failed_tasks = [
                FailedTask(name=t.name or t.id or "(unnamed)", exit_code=t.exit_code, stderr=t.stderr, stdout=t.stdout)
                for t in tasks or [] if t.exit_code not in (None, 0)
            ]
        log_what = log_text = log_task_id = None
        if self.logs is not None and run_failed(log):
            try:
                ref, log_what, log_task_id = failed_log_ref(log, self.wes, "stderr")
                requests += 1
                log_text = self.logs.tail(ref, what=log_what, lines=DETAILS_LOG_LINES, max_chars=1500).text or None
            except WesError as error:
                logger.info("no stderr tail for the notification of %s: %s", run_id, error)
        workflow = log.request.workflow_url
        return RunOutcome(
            log_what=log_what, log_text=log_text, log_task_id=log_task_id,
            run_id=run_id, state=state, exit_code=log.run_log.exit_code, start_time=log.run_log.start_time,
            end_time=log.run_log.end_time, workflow=workflow.rsplit("/", 1)[-1] if workflow else None,
            stdout=log.run_log.stdout, stderr=log.run_log.stderr, failed_tasks=failed_tasks,
            more_failed_tasks=more, outputs=log.outputs,
        ), requests

    def _apply(self, poll: _Poll, now: float, stats: TickStats) -> None:
        run_id = poll.run.run_id
        if poll.error is None:
            self._auth_recovered()
        if poll.outcome is not None:
            outcome = poll.outcome
            self.store.record_terminal(
                run_id, state=outcome.state, now=now, exit_code=outcome.exit_code, start_time=outcome.start_time,
                end_time=outcome.end_time, render=lambda sub: notification(sub, outcome, host=self.host),
            )
            stats.ended += 1
            self._owed.set()
            return
        if poll.status is not None:  # recorded in bulk by tick(); kept for callers that apply one poll
            state = poll.status.state
            changed = self.store.record_state(run_id, state=None if state is None else str(state), now=now,
                                              next_poll_at=now + self.settings.poll_seconds)
            stats.changed += int(changed)
            return
        error = poll.error
        assert error is not None
        if isinstance(error, NotFound):
            stats.gone += 1
            text = (f":ghost: Run `{run_id}` is no longer on the WES server ({error}). "
                    "wesbot has stopped watching it.").replace("<", "&lt;").replace(">", "&gt;")
            self.store.end_subscriptions(run_id, status="gone", reason=str(error), now=now,
                                         render=lambda sub: notice(sub, text, mention=True), key_prefix="gone")
            return
        stats.failed += 1
        backoff = min(self.settings.poll_seconds * (2 ** min(poll.run.failures, 10)), self.settings.backoff_cap)
        watched = self.store.record_failure(run_id, now=now, reason=str(error), next_poll_at=now + backoff)
        if isinstance(error, WesAuthError):
            self._report_auth(run_id, error, now)
            return
        since = watched.failing_since or now
        if not watched.unreadable_reported and now - since >= self.settings.unreadable_after:
            text = unreadable_text(run_id, since, now, str(error))
            self.store.mark_unreadable_reported(run_id, now=now, render=lambda sub: notice(sub, text))

    def _report_auth(self, run_id: str, error: WesAuthError, now: float) -> None:
        """401/403: tell each subscribed channel once per episode; the subscriptions are kept."""
        episode = self.store.get_notice("auth_failing_since")
        if episode is None:
            episode = str(int(now))
            self.store.set_notice("auth_failing_since", episode)
        safe = str(error).replace("<", "&lt;").replace(">", "&gt;")
        text = (f":lock: wesbot lost access to the WES server at {self.host}: {safe}. "
                "Subscriptions are kept; notifications resume once access is restored.")
        for channel in self.store.active_channels_of_runs([run_id]):
            self.store.notice_once(f"auth-lost:{channel}:{episode}", channel_id=channel,
                                   payload=notice(None, text), now=now)

    def _auth_recovered(self) -> None:
        if self.store.get_notice("auth_failing_since") is not None:
            self.store.set_notice("auth_failing_since", None)

    def expire(self) -> int:
        now = self.clock.now()

        def render(sub: Subscription) -> dict[str, object]:
            days = self.settings.subscription_days
            return notice(sub, f":hourglass: wesbot stopped watching run `{sub.run_id}` after {days:g} days "
                               f"(last state: {state_label(sub.state)}). Subscribe again to keep watching.",
                          mention=True)

        return len(self.store.expire_due(now, render))

    # -- channel-wide watches ----------------------------------------------------------------------

    def sweep_watches(self) -> SweepStats:
        """Read the run list once, compare each run's state with the last one stored, and queue a
        notification for each run that moved into a watched terminal state, per watching channel.

        Never announced: runs that had ended before a watch started (a watch is active only from the first
        sweep after it was created that read the list to its end, or to one of its bounds), and runs that
        disappear from the list. A run that is new since the last sweep and already ended is announced only
        when both sweeps read the list to its end. A sweep cut short by a bound (pages, runs held, time; see
        :class:`WatcherSettings`) is incomplete: it announces only ends of runs already stored, and the runs
        beyond the bound are not watched until the list gets shorter. Every end is confirmed with
        GET /runs/{id} before it is announced, and goes through the same outbox, with the same dedupe keys,
        as run subscriptions.
        """
        stats = SweepStats()
        if self.watches is None or not self.watches.any_active():
            return stats
        started = self.clock.now()
        deadline = self._sweep_deadline()
        watches = self.watches.active()
        known = self.watches.swept_states()
        seen, paging = self._read_run_list(deadline)
        stats.requests += paging.pages
        if paging.stopped:
            return stats
        stats.listed = len(seen)
        states: dict[str, State] = {run_id: item.state for run_id, item in seen.items()}
        if not self._fill_states(states, stats, deadline) and paging.complete:
            paging.complete, paging.cut = False, "time"
        self._report_cut(paging, stats.listed)
        previous_complete = self.store.get_notice("sweep_complete") == "1"
        changes, ended = _compare(states, known, new_can_end=bool(known) and previous_complete and paging.complete)
        active = [w for w in watches if w.active_from is not None]
        owed = self._owed_by_watches(ended, seen, active, stats) if active else []
        # A run whose end could not be confirmed keeps its old state, to be looked at again next sweep.
        unconfirmed = {run_id for run_id in ended if run_id not in stats.confirmed}
        changes = [(run_id, state) for run_id, state in changes if run_id not in unconfirmed]
        stats.queued = self.watches.record_sweep(changes=changes, owed=owed, now=started,
                                                 activate=paging.complete or paging.cut is not None)
        self.store.set_notice("sweep_complete", "1" if paging.complete else "0")
        if stats.queued:
            self._owed.set()
        return stats

    def _read_run_list(self, deadline: float) -> tuple[dict[str, RunSummary], _Paging]:
        """The run list (the first listing of each run), within ``watch_max_pages``, ``watch_max_runs`` and
        ``deadline``: what one sweep may cost in requests, memory and time, whatever the server hands out."""
        seen: dict[str, RunSummary] = {}
        paging = _Paging()
        limit = self.settings.watch_max_runs
        try:
            for page in self._pages(paging, self.settings.watch_max_pages, deadline):
                if not _take(seen, page.runs, limit) or (len(seen) >= limit and not paging.complete):
                    paging.complete, paging.cut = False, "runs"
                    break
        except WesError as error:
            logger.info("sweeping the run list failed after %d pages: %s", paging.pages, error)
        return seen, paging

    def _fill_states(self, states: dict[str, State], stats: SweepStats, deadline: float) -> bool:
        """Ask each run the list showed without a state for its status, in batches, while the sweep has time.
        A run left unasked is dropped from ``states`` (looked at next sweep), so that it is neither compared nor
        stored; False when any was."""
        stateless = [run_id for run_id, state in states.items() if state is None]
        if not stateless:
            return True
        if not self._told_no_states:
            logger.info("the WES server lists runs without their state; asking each run for its status instead")
            self._told_no_states = True
        asked: set[str] = set()
        batch = max(1, self.settings.concurrency) * 4
        for start in range(0, len(stateless), batch):
            if self.stop.is_set() or self.clock.monotonic() >= deadline:
                break
            for run_id, status in _parallel(self._status_of, stateless[start:start + batch],
                                            self.settings.concurrency, self.stop):
                asked.add(run_id)
                states[run_id] = None if status is None else status.state
                stats.requests += 1
        for run_id in stateless:
            if run_id not in asked:
                del states[run_id]
        return len(asked) == len(stateless)

    def _report_cut(self, paging: _Paging, listed: int) -> None:
        """A WARNING when sweeps start being cut short by a bound, an INFO when one reads the whole list
        again: once per episode, not every cycle (a long list stays long)."""
        if paging.cut is not None and not self._sweeps_cut:
            self._sweeps_cut = True
            logger.warning("the channel-watch sweep stopped early at its %s (%d pages, %d runs read); runs beyond "
                           "that are not watched until the list gets shorter", self._bound_text(paging.cut),
                           paging.pages, listed)
        elif paging.complete and self._sweeps_cut:
            self._sweeps_cut = False
            logger.info("the channel-watch sweep reads the whole run list again (%d pages, %d runs)",
                        paging.pages, listed)

    def _bound_text(self, cut: str) -> str:
        settings = self.settings
        texts = {"pages": f"page limit ({settings.watch_max_pages} pages, watch_max_pages)",
                 "runs": f"run limit ({settings.watch_max_runs} runs, watch_max_runs)",
                 "time": f"time limit ({settings.sweep_budget:g} s, min(sweep_seconds_max, poll_seconds / 2))"}
        return texts.get(cut, cut)

    def _status_of(self, run_id: str) -> tuple[str, RunStatus | None]:
        """The run's status, None if it cannot be read; with its id, as results arrive in any order."""
        try:
            return run_id, self.wes.get_status(run_id)
        except WesError:
            return run_id, None

    def _owed_by_watches(self, ended: list[str], seen: dict[str, RunSummary], watches: list[ChannelWatch],
                         stats: SweepStats) -> list[Owed]:
        interested: dict[str, list[ChannelWatch]] = {}
        for run_id in ended:
            tags = seen[run_id].tags if run_id in seen else {}
            for watch in watches:
                if watch.matches_tags(tags):
                    interested.setdefault(run_id, []).append(watch)
        if not interested:
            stats.confirmed.update(ended)
            return []
        subscribed = self.watches.subscribed_channels(interested) if self.watches is not None else set()
        confirmed = _parallel(self._confirm_end, list(interested), self.settings.concurrency, self.stop)
        logs: dict[str, RunLog] = {}
        per_channel: dict[str, list[tuple[RunOutcome, ChannelWatch]]] = {}
        for run_id, log in confirmed:
            stats.requests += 1
            if log is None:
                continue
            logs[run_id] = log
            outcome = _basic_outcome(log)
            stats.confirmed.add(run_id)
            failed = outcome.state in FAILED or outcome.state == RunState.PREEMPTED
            channels_done: set[str] = set()
            for watch in interested[run_id]:
                if watch.kind == "failed" and not failed:
                    continue
                if watch.channel_id in channels_done or (run_id, watch.channel_id) in subscribed:
                    continue  # one message per channel; a run subscription there says it, with mentions
                channels_done.add(watch.channel_id)
                per_channel.setdefault(watch.channel_id, []).append((outcome, watch))
        stats.confirmed.update(run_id for run_id in ended if run_id not in interested)
        # Runs announced one by one get the full details (failed tasks, the end of stderr); a digest needs none.
        single = sorted({o.run_id for items in per_channel.values() if len(items) <= self.settings.digest_after
                         for o, _ in items})
        full: dict[str, RunOutcome] = {}
        for run_id, outcome, requests in _parallel(self._full_outcome, [(r, logs[r]) for r in single],
                                                   self.settings.concurrency, self.stop):
            full[run_id] = outcome
            stats.requests += requests
        owed: list[Owed] = []
        for channel, items in per_channel.items():
            keys = [f"end:{o.run_id}:{o.state}:{channel}" for o, _ in items]
            if len(items) > self.settings.digest_after:
                what = "failed" if all(o.state in FAILED or o.state == RunState.PREEMPTED for o, _ in items) \
                    else "ended"
                payload = digest([o for o, _ in items], what=what, host=self.host)
                digest_key = hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:32]
                owed.append(Owed(key=f"digest:{channel}:{digest_key}", channel_id=channel, payload=payload,
                                 kind="digest"))
                owed += [Owed(key=key, channel_id=channel, payload={}, skip=True) for key in keys]
                stats.digests += 1
            else:
                for (outcome, watch), key in zip(items, keys, strict=True):
                    note = f"Posted because this channel watches {watch.describe()} (/wes unwatch to stop)"
                    owed.append(Owed(key=key, channel_id=channel, payload=notification(
                        None, full.get(outcome.run_id, outcome), host=self.host, note=note)))
        return owed

    def _full_outcome(self, item: tuple[str, RunLog]) -> tuple[str, RunOutcome, int]:
        run_id, log = item
        outcome, requests = self._outcome(run_id, RunStatus(run_id=run_id, state=log.state), log)
        return run_id, outcome, requests - 1  # the GET /runs/{id} was counted when the end was confirmed

    def _confirm_end(self, run_id: str) -> tuple[str, RunLog | None]:
        """GET /runs/{id}: the end, confirmed (None: not confirmed, so not announced)."""
        try:
            log = self.wes.get_run(run_id)
        except WesError as error:
            logger.info("the list shows run %s ended, but it could not be read: %s", run_id, error)
            return run_id, None
        return run_id, (log if is_terminal(log.state) else None)

    # -- cancels ---------------------------------------------------------------------------------

    def follow_cancels(self) -> int:
        """Poll each requested cancel's run; once it ended (or the deadline passed), record the outcome."""
        if self.cancels is None:
            return 0
        now = self.clock.now()
        recover_cancels(self.cancels, self.poster.post, now)
        decided = 0
        for cancel in self.cancels.to_follow(now, horizon=self.settings.longest_wait):
            if self.stop.is_set():
                break
            try:
                status: RunStatus | None = self.wes.get_status(cancel.run_id)
            except WesError as error:
                logger.info("following the cancel of %s: %s", cancel.run_id, error)
                status = None
            verdict = follow_cancel(cancel, status, self.clock.now())
            if verdict is None:
                self.cancels.poll_later(cancel.run_id, self.clock.now() + min(self.settings.poll_seconds, 5.0))
                continue
            outcome, final_state = verdict
            self.cancels.finish(cancel.run_id, final_state=final_state, outcome=outcome)
            decided += 1
        return decided

    def _sync_cancels(self, stats: DeliverStats) -> None:
        """Update each decided cancel's channel message in place (or tell the canceller, if it had none)."""
        if self.cancels is None:
            return
        for cancel in self.cancels.to_sync():
            if self.stop.is_set():
                return
            now = self.clock.now()
            text = cancel_outcome_text(cancel, now)
            message = {"text": text, "blocks": [section(text)]}
            if cancel.message_ts and cancel.channel_id:
                if not self._pacing.ready(cancel.channel_id):
                    continue
                result = self.poster.update(cancel.channel_id, cancel.message_ts, message)
                self._pacing.hold(cancel.channel_id, self.settings.pace_seconds)
                if not result.ok and not result.permanent:
                    continue  # retried on the next turn
            elif cancel.response_url:
                self._respond(cancel.response_url, {**message, "response_type": "ephemeral",
                                                    "replace_original": False})
            self.cancels.synced(cancel.run_id)
            stats.cards += 1

    @staticmethod
    def _respond(response_url: str, body: dict[str, object]) -> None:
        try:
            httpx.post(response_url, json=body, timeout=10)
        except httpx.HTTPError as error:
            logger.info("could not send the cancel outcome to the canceller: %s", type(error).__name__)

    # -- posting ----------------------------------------------------------------------------------

    def deliver(self, *, limit: int = 200) -> DeliverStats:
        """Post the cards and the outbox rows that are due, paced per channel. Stops early on ``stop``."""
        stats = DeliverStats()
        self._sync_cancels(stats)
        # Notifications first: they are what people wait for; card updates take the channel's next slots.
        self._send_outbox(stats, limit)
        while not self.stop.is_set():
            now = self.clock.now()
            # A channel with a notification waiting keeps its next slot for it, not for a card update.
            waiting = self.store.pending_channels(now + self.settings.pace_seconds, horizon=self.settings.longest_wait)
            firsts: dict[str, int] = {}
            for sub_id, channel in self.store.card_candidates():
                if channel not in firsts and channel not in waiting and self._pacing.ready(channel):
                    firsts[channel] = sub_id
            if not firsts:
                break
            subs = [self.store.subscription(sub_id) for sub_id in firsts.values()]
            for part in self._in_parallel(lambda s, st: self._sync_card(s, self.clock.now(), st), subs):
                stats.add(part)
        return stats

    def _send_outbox(self, stats: DeliverStats, limit: int) -> None:
        """Post due rows: in each round, the oldest row of every channel that may post now, several channels
        at once (``post_concurrency``); a channel's own rows go out one at a time, in order, paced."""
        done = 0
        while done < limit and not self.stop.is_set():
            now = self.clock.now()
            firsts: dict[str, OutboxRow] = {}
            for row in self.store.deliverable(now, limit=1000, horizon=self.settings.longest_wait):
                if row.channel_id not in firsts and self._pacing.ready(row.channel_id):
                    firsts[row.channel_id] = row
            batch = list(firsts.values())[: limit - done]
            if not batch:
                break
            for part in self._in_parallel(self._send, batch):
                stats.add(part)
            done += len(batch)

    def _in_parallel(self, fn: Callable[[T, DeliverStats], None], items: list[T]) -> list[DeliverStats]:
        """``fn(item, stats)`` for each item, up to ``post_concurrency`` at once; one stats object per item."""
        results = [DeliverStats() for _ in items]
        if self.settings.post_concurrency <= 1 or len(items) == 1:
            for item, stats in zip(items, results, strict=True):
                fn(item, stats)
            return results
        if self._post_pool is None:
            self._post_pool = ThreadPoolExecutor(max_workers=self.settings.post_concurrency,
                                                 thread_name_prefix="wesbot-post")
        futures = [self._post_pool.submit(fn, item, stats) for item, stats in zip(items, results, strict=True)]
        for future in futures:
            future.result()
        return results

    def _sync_card(self, sub: Subscription, now: float, stats: DeliverStats) -> None:
        message = card(sub, host=self.host)
        if sub.card_ts is None:
            result = self.poster.post(sub.channel_id, message)
        else:
            result = self.poster.update(sub.channel_id, sub.card_ts, message)
        self._pacing.hold(sub.channel_id, self.settings.pace_seconds)
        if result.ok:
            self._token_refused_since = None
            self.store.set_card(sub.id, ts=result.ts, version=sub.card_version)
            stats.cards += 1
        elif result.token_error:
            # The installation, not the card: try this channel again after the token backoff, not every second.
            self._token_refused(result)
            self._pacing.hold(sub.channel_id, TOKEN_RETRY)
        elif result.permanent and result.channel_error:
            self._channel_failed(sub.channel_id, result, now)
        elif result.permanent:
            logger.warning("card of run %s in %s failed: %s", sub.run_id, sub.channel_id, result.error)
            self.store.set_card_failed(sub.id, result.error or "error")
        elif result.retry_after:
            self._pacing.hold(sub.channel_id, result.retry_after)

    def _send(self, row: OutboxRow, stats: DeliverStats) -> None:
        now = self.clock.now()
        thread_ts = None
        if row.in_thread and row.subscription_id is not None:
            sub = self.store.subscription(row.subscription_id)
            if sub.card_ts is None and sub.card_failed is None and sub.status == "active":
                return  # the card is not posted yet: the note goes in its thread once it is
            thread_ts = sub.card_ts
        if row.status == "sending":
            # A previous attempt was cut short (a crash, kill -9): it may have reached Slack. Look before posting.
            found = self.poster.find_posted(row.channel_id, row.dedupe_key, thread_ts=thread_ts,
                                            oldest=row.created_at - 60)
            if found:
                logger.info("outbox %s (%s) had reached Slack before wesbot stopped", row.id, row.dedupe_key)
                self.store.mark_sent(row.id, ts=found if isinstance(found, str) else None, now=now)
                return
            if found is None:
                logger.warning("outbox %s (%s) was being sent when wesbot stopped and Slack cannot tell whether "
                               "it arrived; sending it again", row.id, row.dedupe_key)
        self.store.mark_sending(row.id, now)
        result = self.poster.post(row.channel_id, row.payload, thread_ts=thread_ts,
                                  broadcast=row.kind == "notification" and thread_ts is not None, key=row.dedupe_key)
        if (not result.ok and result.permanent and not result.channel_error and row.payload.get("blocks")):
            # A message Slack will not take as blocks: the plain-text fallback still says what happened.
            result = self.poster.post(row.channel_id, {"text": row.payload.get("text", "")}, thread_ts=thread_ts,
                                      key=row.dedupe_key)
        done = self.clock.now()
        self._pacing.hold(row.channel_id, self.settings.pace_seconds)
        if result.ok:
            self._token_refused_since = None
            self.store.mark_sent(row.id, ts=result.ts, now=done)
            stats.sent += 1
            return
        if result.permanent and result.channel_error:
            self.store.mark_failed(row.id, error=result.error or "error")
            self._channel_failed(row.channel_id, result, done)
            stats.failed += 1
        elif result.permanent:
            self.store.mark_failed(row.id, error=result.error or "error")
            stats.failed += 1
        elif result.token_error:
            self._token_refused(result)
            self.store.mark_retry(row.id, not_before=done + TOKEN_RETRY, error=result.error or "error")
            self._pacing.hold(row.channel_id, TOKEN_RETRY)
            stats.retried += 1
        else:
            self._token_refused_since = None
            wait = result.retry_after or min(2.0 ** min(row.attempts + 1, 12), self.settings.retry_cap)
            self.store.mark_retry(row.id, not_before=done + wait, error=result.error or "error")
            if result.retry_after:
                self._pacing.hold(row.channel_id, wait)
            stats.retried += 1

    def _token_refused(self, result: PostResult) -> None:
        """Slack refuses the bot token: loud, once per episode; every row stays owed."""
        if self._token_refused_since is None:
            self._token_refused_since = self.clock.monotonic()
            logger.error("Slack rejects the bot token (%s): fix SLACK_BOT_TOKEN; %d notifications waiting",
                         result.error, self.store.pending_count())

    def _channel_failed(self, channel: str, result: PostResult, now: float) -> None:
        """Slack will not take posts in ``channel``: end its subscriptions and tell their subscribers by DM."""
        if channel.startswith(("U", "W")):
            return  # a DM that failed: nobody left to tell
        failed = self.store.fail_channel(channel, error=result.error or "error", now=now)
        logger.warning("Slack refuses posts in %s (%s); %d subscriptions failed", channel, result.error, len(failed))
        hint = " Invite wesbot with `/invite @wesbot`, then subscribe again." if result.error == "not_in_channel" \
            else ""
        for sub in failed:
            for user in sub.users:
                text = (f"wesbot could not post in <#{channel}> ({result.error}), so it stopped watching run "
                        f"`{sub.run_id}` there.{hint}")
                self.store.notice_once(f"dm:{sub.id}:{user}", channel_id=user, payload=notice(None, text), now=now)

    # -- the loop ---------------------------------------------------------------------------------

    def step(self, *, deliver: bool = True) -> float:
        """One turn of the loop; returns how long to wait before the next. ``deliver=False`` when a sender
        thread posts (:meth:`run`), so that posting starts while a long cycle is still reading runs.

        The schedule is kept in monotonic time (the lease and stored due times are wall time, shared with
        other processes and restarts): setting the wall clock back does not stop the polling."""
        started = self.clock.monotonic()
        period = self.settings.lease_seconds
        if not self.store.acquire_lease(LEASE, self.owner, now=self.clock.now(), period=period):
            self._holding.clear()
            return max(period / 3, 0.2)
        self._holding.set()
        self._contained("expiring subscriptions", self.expire)
        self._contained("following cancels", self.follow_cancels)
        if started >= self._next_tick:
            # Subscriptions first: a long or failing channel-wide sweep must not hold up their polling (and a
            # sweep is bounded in time, so the next cycle's polls wait at most that long behind it).
            self._poll_subscriptions()
        if self.watches is not None and started >= self._next_sweep:
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
        due_in = self._next_due_in()
        if due_in is not None:
            self._next_tick = min(self._next_tick, self.clock.monotonic() + max(due_in, 0.5))

    def _next_due_in(self) -> float | None:
        """Seconds until the earliest stored due time (wall time). A due time further ahead than any wait the
        watcher sets was written before the wall clock went back: due now (the tick reads it as due too)."""
        next_due = self.store.next_due()
        if next_due is None:
            return None
        wait = next_due - self.clock.now()
        return 0.0 if wait > self.settings.longest_wait else wait

    def _wait(self, period: float) -> float:
        """How long until something is due: the schedule's own times in monotonic time, stored ones in wall."""
        mono, wall = self.clock.monotonic(), self.clock.now()
        waits = [self._next_tick - mono, period / 3]
        if self.watches is not None:
            waits.append(self._next_sweep - mono)
        upcoming = self.store.next_outbox_time()
        if upcoming is not None:
            waits.append(0.0 if upcoming - wall > self.settings.longest_wait else upcoming - wall)
        if self.store.pending_count() or self.store.cards_to_sync(limit=1):
            waits.append(min(self.settings.pace_seconds, 1.0))
        if self.cancels is not None and (self.cancels.following() or self.cancels.to_sync()):
            waits.append(1.0)
        return max(min(waits), 0.05)

    def _contained(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one step of the loop so that its failure (a bug, a hostile body's RecursionError) never stops
        the others. Logged with its traceback once per episode, not every cycle."""
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

    def _send_loop(self) -> None:
        """The sender thread: posts whatever is owed while this process holds the lease."""
        while not self.stop.is_set():
            busy = False
            if self._holding.is_set():
                try:
                    stats = self.deliver()
                    busy = bool(stats.sent or stats.cards or stats.retried or stats.failed)
                except Exception:
                    logger.exception("delivering to Slack failed; trying again shortly")
            pending = self.store.pending_count() > 0 or bool(self.store.cards_to_sync(limit=1))
            if self._owed.wait(0.05 if busy else (0.25 if pending else 1.0)):
                self._owed.clear()

    def run(self) -> None:
        """Loop until :attr:`stop` is set; ``wake`` cuts a wait short (a new subscription's card).
        Polling runs in this thread, posting in a sender thread, so neither waits for the other."""
        logger.info("watcher %s started (poll every %g s)", self.owner, self.settings.poll_seconds)
        holding = False
        sender = threading.Thread(target=self._send_loop, name="wesbot-sender", daemon=True)
        sender.start()
        try:
            while not self.stop.is_set():
                try:
                    wait = self.step(deliver=False)
                    holder = self.store.lease_holder(LEASE)
                    now_holding = holder is not None and holder[0] == self.owner
                    if now_holding != holding:
                        logger.info("watcher %s %s the lease", self.owner, "holds" if now_holding else "waits for")
                        holding = now_holding
                except Exception:
                    logger.exception("watcher step failed; trying again shortly")
                    wait = 5.0
                if self.wake.wait(min(wait, 1.0)):
                    self.wake.clear()
                    self._owed.set()
        finally:
            self._owed.set()
            sender.join(3.0)
            try:
                self.store.release_lease(LEASE, self.owner)
            except Exception:
                logger.warning("could not release the watcher lease", exc_info=True)
            logger.info("watcher %s stopped", self.owner)


def _page_bound(pages: int, max_pages: int, now: float, deadline: float) -> str | None:
    """The bound that forbids reading another page, if any (the first page is always read)."""
    if pages >= max_pages:
        return "pages"
    if pages and now >= deadline:
        return "time"
    return None


def _take(seen: dict[str, RunSummary], runs: Iterable[RunSummary], limit: int) -> bool:
    """Keep the first listing of each run, ``limit`` runs at most in all; False when some did not fit."""
    for item in runs:
        if item.run_id in seen:
            continue
        if len(seen) >= limit:
            return False
        seen[item.run_id] = item
    return True


def _compare(states: dict[str, State], known: dict[str, str | None], *,
             new_can_end: bool) -> tuple[list[tuple[str, str | None]], list[str]]:
    """The states that changed since the stored ones, and the runs that ended. A run not stored before counts
    as ended only when ``new_can_end``: both this sweep and the last read the whole list, so it is really new
    and not one a shorter read never reached (which may have ended long before any watch started)."""
    changes: list[tuple[str, str | None]] = []
    ended: list[str] = []
    for run_id, state in states.items():
        label = None if state is None else str(state)
        if run_id in known and known[run_id] == label:
            continue
        changes.append((run_id, label))
        was_going = not is_terminal(parse_state(known[run_id])) if run_id in known else new_can_end
        if is_terminal(state) and was_going:
            ended.append(run_id)
    return changes, ended


def _basic_outcome(log: RunLog) -> RunOutcome:
    """What GET /runs/{id} alone tells of an ended run (no task list, no log tail)."""
    workflow = log.request.workflow_url
    return RunOutcome(run_id=log.run_id, state=str(log.state), exit_code=log.run_log.exit_code,
                      start_time=log.run_log.start_time, end_time=log.run_log.end_time,
                      workflow=workflow.rsplit("/", 1)[-1] if workflow else None)


def _parallel(fn: Callable[[T], R], items: Iterable[T], workers: int, stop: threading.Event,
              on_result: Callable[[R], None] | None = None) -> list[R]:
    """``map`` on daemon threads, at most ``workers`` at once; returns early (partial) when ``stop`` is set.
    ``on_result`` is called in the calling thread with each result as soon as it arrives.

    Daemon threads, not a ThreadPoolExecutor: a read stuck on a slow WES server must not hold up exit.
    """
    todo: queue.SimpleQueue[T] = queue.SimpleQueue()
    count = 0
    for item in items:
        todo.put(item)
        count += 1
    results: queue.SimpleQueue[R] = queue.SimpleQueue()

    def worker() -> None:
        while not stop.is_set():
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            results.put(fn(item))

    threads = [threading.Thread(target=worker, daemon=True, name=f"wesbot-poll-{i}")
               for i in range(max(1, min(workers, count)))]
    for thread in threads:
        thread.start()
    out: list[R] = []
    while len(out) < count:
        if stop.is_set():
            break
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
