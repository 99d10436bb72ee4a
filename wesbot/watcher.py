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

Nothing is kept only in memory but the per-channel pacing. ``tick`` and ``deliver`` take the time from
a :class:`Clock`, so tests drive them with a fake one and no real sleeps.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
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
    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()


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
    watch_max_pages: int = 2000


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
    next_allowed: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ready(self, channel: str, now: float) -> bool:
        with self.lock:
            return self.next_allowed.get(channel, 0.0) <= now

    def used(self, channel: str, until: float) -> None:
        with self.lock:
            self.next_allowed[channel] = max(self.next_allowed.get(channel, 0.0), until)


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
        self._pacing = _Pacing()
        self._post_pool: ThreadPoolExecutor | None = None
        # Set while this process holds the lease (the sender thread posts only then), and when posts are owed.
        self._holding = threading.Event()
        self._owed = threading.Event()
        self._next_tick = 0.0
        # When a sweep does not pay (few of our runs per page read), skip sweeping for a few cycles.
        self._skip_sweeps = 0
        self._told_no_states = False
        self._failing_steps: set[str] = set()
        self._token_refused_since: float | None = None

    # -- one poll cycle ---------------------------------------------------------------------------

    def tick(self) -> TickStats:
        """Read every due run once and store what was seen. Never raises for WES or Slack trouble."""
        stats = TickStats()
        now = self.clock.now()
        due = self.store.due_runs(now)
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
        """States of due runs read from GET /runs pages, when that is cheaper than a status call per run."""
        if len(due) < self.settings.sweep_min_runs:
            return {}
        if self._skip_sweeps > 0:
            self._skip_sweeps -= 1
            return {}
        wanted = {run.run_id for run in due}
        found: dict[str, State] = {}
        seen: set[str | None] = {None}
        token: str | None = None
        stateless = 0
        try:
            for _ in range(self.settings.sweep_max_pages):
                if self.stop.is_set():
                    break
                page = self.wes.list_runs(page_size=self.settings.sweep_page_size, page_token=token)
                stats.sweep_requests += 1
                for item in page.runs:
                    if item.run_id in wanted and item.run_id not in found:
                        found[item.run_id] = item.state
                        stateless += item.state is None
                nxt = page.next_page_token
                if len(found) == len(wanted) or not page.runs or not nxt or nxt in seen:
                    break
                seen.add(nxt)
                token = nxt
        except WesError as error:
            logger.info("reading the run list failed (%s); asking each run for its status", error)
        if stateless and not self._told_no_states:
            logger.info("the WES server lists runs without their state; asking each run for its status instead")
            self._told_no_states = True
        useful = len(found) - stateless
        if stats.sweep_requests and useful < 2 * stats.sweep_requests:
            # Most of what the list holds is not ours: status calls are cheaper. Try again in a while.
            self._skip_sweeps = 10
        return found

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
        """Read the whole run list once, compare each run's state with the last one stored, and queue a
        notification for each run that moved into a watched terminal state, per watching channel.

        Never announced: runs that had ended before a watch started (a watch is active only from the first
        complete sweep after it was created), and runs that disappear from the list. A run that is new since
        the last complete sweep and already ended is announced only when both sweeps read the list to its end.
        Every end is confirmed with GET /runs/{id} before it is announced, and goes through the same outbox,
        with the same dedupe keys, as run subscriptions.
        """
        stats = SweepStats()
        if self.watches is None or not self.watches.any_active():
            return stats
        started = self.clock.now()
        watches = self.watches.active()
        known = self.watches.swept_states()
        seen: dict[str, RunSummary] = {}
        complete = False
        token: str | None = None
        tokens: set[str | None] = {None}
        try:
            for _ in range(self.settings.watch_max_pages):
                if self.stop.is_set():
                    return stats
                page = self.wes.list_runs(page_size=self.settings.sweep_page_size, page_token=token)
                stats.requests += 1
                for item in page.runs:
                    seen.setdefault(item.run_id, item)
                nxt = page.next_page_token
                if not page.runs or not nxt or nxt in tokens:
                    complete = True
                    break
                tokens.add(nxt)
                token = nxt
        except WesError as error:
            logger.info("sweeping the run list failed after %d pages: %s", stats.requests, error)
        stats.listed = len(seen)
        states: dict[str, State] = {run_id: item.state for run_id, item in seen.items()}
        stateless = [run_id for run_id, state in states.items() if state is None]
        if stateless:
            if not self._told_no_states:
                logger.info("the WES server lists runs without their state; asking each run for its status instead")
                self._told_no_states = True
            for run_id, status in zip(stateless, _parallel(self._status_or_none, stateless,
                                                            self.settings.concurrency, self.stop), strict=False):
                states[run_id] = status.state if status is not None else None
                stats.requests += 1
        previous_complete = self.store.get_notice("sweep_complete") == "1"
        active = [w for w in watches if w.active_from is not None]
        changes: list[tuple[str, str | None]] = []
        ended: list[str] = []
        for run_id, state in states.items():
            label = None if state is None else str(state)
            if run_id not in known:
                changes.append((run_id, label))
                if is_terminal(state) and known and previous_complete and complete:
                    ended.append(run_id)
            elif known[run_id] != label:
                changes.append((run_id, label))
                if is_terminal(state) and not is_terminal(parse_state(known[run_id])):
                    ended.append(run_id)
        owed = self._owed_by_watches(ended, seen, active, stats) if active else []
        # A run whose end could not be confirmed keeps its old state, to be looked at again next sweep.
        unconfirmed = {run_id for run_id in ended if run_id not in stats.confirmed}
        changes = [(run_id, state) for run_id, state in changes if run_id not in unconfirmed]
        stats.queued = self.watches.record_sweep(changes=changes, owed=owed, now=started, activate=complete)
        self.store.set_notice("sweep_complete", "1" if complete else "0")
        if stats.queued:
            self._owed.set()
        return stats

    def _status_or_none(self, run_id: str) -> RunStatus | None:
        try:
            return self.wes.get_status(run_id)
        except WesError:
            return None

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
        for cancel in self.cancels.to_follow(now):
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
                if not self._pacing.ready(cancel.channel_id, now):
                    continue
                result = self.poster.update(cancel.channel_id, cancel.message_ts, message)
                self._pacing.used(cancel.channel_id, now + self.settings.pace_seconds)
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
            waiting = self.store.pending_channels(now + self.settings.pace_seconds)
            firsts: dict[str, int] = {}
            for sub_id, channel in self.store.card_candidates():
                if channel not in firsts and channel not in waiting and self._pacing.ready(channel, now):
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
            for row in self.store.deliverable(now, limit=1000):
                if row.channel_id not in firsts and self._pacing.ready(row.channel_id, now):
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
        self._pacing.used(sub.channel_id, now + self.settings.pace_seconds)
        if result.ok:
            self.store.set_card(sub.id, ts=result.ts, version=sub.card_version)
            stats.cards += 1
        elif result.permanent and result.channel_error:
            self._channel_failed(sub.channel_id, result, now)
        elif result.permanent:
            logger.warning("card of run %s in %s failed: %s", sub.run_id, sub.channel_id, result.error)
            self.store.set_card_failed(sub.id, result.error or "error")
        elif result.retry_after:
            self._pacing.used(sub.channel_id, now + result.retry_after)

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
        self._pacing.used(row.channel_id, done + self.settings.pace_seconds)
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
            self._pacing.used(row.channel_id, done + TOKEN_RETRY)
            stats.retried += 1
        else:
            self._token_refused_since = None
            wait = result.retry_after or min(2.0 ** min(row.attempts + 1, 12), self.settings.retry_cap)
            self.store.mark_retry(row.id, not_before=done + wait, error=result.error or "error")
            if result.retry_after:
                self._pacing.used(row.channel_id, done + wait)
            stats.retried += 1

    def _token_refused(self, result: PostResult) -> None:
        """Slack refuses the bot token: loud, once per episode; every row stays owed."""
        if self._token_refused_since is None:
            self._token_refused_since = self.clock.now()
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
        thread posts (:meth:`run`), so that posting starts while a long cycle is still reading runs."""
        now = self.clock.now()
        period = self.settings.lease_seconds
        if not self.store.acquire_lease(LEASE, self.owner, now=now, period=period):
            self._holding.clear()
            return max(period / 3, 0.2)
        self._holding.set()
        self._contained("expiring subscriptions", self.expire)
        self._contained("following cancels", self.follow_cancels)
        if now >= self._next_tick:
            # Subscriptions first: a long or failing channel-wide sweep must not hold up their polling.
            stats = self._contained("polling subscribed runs", self.tick)
            # errbot's habit: the next cycle is set only once this one has finished.
            self._next_tick = self.clock.now() + self.settings.poll_seconds
            if stats is not None and stats.polled:
                logger.debug("tick: %s", stats)
            next_due = self.store.next_due()
            if next_due is not None:
                self._next_tick = min(self._next_tick, max(next_due, self.clock.now() + 0.5))
        if self.watches is not None and now >= self._next_sweep:
            sweep = self._contained("sweeping channel watches", self.sweep_watches)
            self._next_sweep = self.clock.now() + self.settings.poll_seconds
            if sweep is not None and sweep.listed:
                logger.debug("sweep: %s", sweep)
        if deliver:
            self._contained("delivering to Slack", self.deliver)
        else:
            self._owed.set()
        now = self.clock.now()
        waits = [self._next_tick - now, period / 3]
        if self.watches is not None:
            waits.append(self._next_sweep - now)
        upcoming = self.store.next_outbox_time()
        if upcoming is not None:
            waits.append(upcoming - now)
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
