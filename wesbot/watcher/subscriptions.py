"""Polling the runs people subscribed to: read each due run once, store what was seen, and queue what is
owed (the end notification, "the run is gone", "cannot read it", "lost access") in the same transaction.

Never posts: delivery does, from the outbox. Many due runs are read from GET /runs pages first (one request
per page, not per run); the runs the list does not settle get a status call each, concurrently.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from .. import observe
from ..format import parse_time
from ..outcome import RunOutcome
from ..slack.alerts import deadline_text
from ..slack.cards import (
    auth_lost_text,
    card_running_time,
    expired_text,
    gone_text,
    notice,
    notification,
    unreadable_text,
)
from ..store.watch import WatchedRun, WatchStore
from ..wes.errors import NotFound, WesAuthError, WesError, WesUnreachable
from ..wes.models import RunStatus, RunSummary, is_terminal, parse_state
from ..wes.paging import Walk
from .base import Clock, RunList, WatchedWes, WatcherSettings, Workers
from .details import Details

logger = logging.getLogger("wesbot.watcher")

AUTH_EPISODE = "auth_failing_since"


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
    bugs: int = 0
    wes_requests: int = 0
    unreachable: int = 0  # reads that got no answer at all (an outage, when that is all of them)
    late: int = 0  # missed --deadline notes queued
    stopped: bool = False


@dataclass(frozen=True, kw_only=True)
class Poll:
    """What one read of a run gave: its status (still going), its outcome (ended), a WES error, or a bug in
    wesbot (``bug`` is the error id in the log: the run is polled again, the channel is not told)."""

    run: WatchedRun
    status: RunStatus | None = None
    outcome: RunOutcome | None = None
    error: WesError | None = None
    bug: str | None = None
    requests: int = 1
    start_time: str | None = None  # the run's start time, when this read learned it


class SubscriptionPoller:
    def __init__(self, store: WatchStore, wes: WatchedWes, details: Details, runs: RunList, workers: Workers, *,
                 host: str, label: str | None = None, server: str | None = None, settings: WatcherSettings,
                 clock: Clock, owed: Callable[[], None]) -> None:
        self.store = store
        self.wes = wes
        self.details = details
        self.runs = runs
        self.workers = workers
        self.host = host
        # How messages name the server: the host, or with several servers its name and host.
        self.label = label or host
        self.server = server  # its name, when there are several
        self.settings = settings
        self.clock = clock
        self.owed = owed  # called once something was queued for delivery
        # When a sweep does not pay (few of our runs per page read), skip sweeping for a few cycles.
        self._skip_sweeps = 0
        self._told_no_states = False
        # Since when (monotonic) WES has been unreachable, and why, while an outage lasts.
        self._outage_since: float | None = None
        self._unreachable_reason: str | None = None

    def tick(self) -> TickStats:
        """Read every due run once and store what was seen. Never raises for WES or Slack trouble.
        A cycle that ran to its end is observed (the time of the last poll, an outage starting or ending)."""
        stats = self._read_due()
        if not stats.stopped:
            self._judge_outage(stats)
            observe.poll_completed(self.host, self.clock.now())
            stats.late = self.deadlines()
        return stats

    def deadlines(self) -> int:
        """Say once, in the card's thread, that a subscribed run is still going past its ``--deadline`` (counted
        from its start, else from the subscription). From the states stored: no WES request."""
        now = self.clock.now()
        owed = {}
        for sub in self.store.subscriptions.with_deadlines():
            started = parse_time(sub.start_time)
            since = started.timestamp() if started is not None else sub.created_at
            if sub.state is None or is_terminal(parse_state(sub.state)) or now - since < (sub.deadline_after or 0):
                continue
            owed[sub.id] = notice(sub, deadline_text(sub.run_id, sub.state, sub.deadline_after or 0, now - since,
                                                     server=self.server), mention=True)
        if not owed:
            return 0
        queued = len(self.store.subscriptions.tell_deadline(owed, now=now))
        self.owed()
        return queued

    def _judge_outage(self, stats: TickStats) -> None:
        """An outage starts with a cycle whose reads all went unanswered, and ends with the first answer:
        told once each way, whatever the number of runs."""
        answered = stats.swept + stats.polled - stats.unreachable - stats.bugs
        if answered > 0 and self._outage_since is not None:
            observe.wes_outage(self.host, False, seconds=self.clock.monotonic() - self._outage_since)
            self._outage_since = None
        elif answered <= 0 and stats.unreachable and self._outage_since is None:
            self._outage_since = self.clock.monotonic()
            observe.wes_outage(self.host, True, self._unreachable_reason)

    def _read_due(self) -> TickStats:
        stats = TickStats()
        now = self.clock.now()
        # A due time further ahead than any wait we set was written before the wall clock went back: due now.
        due = self.store.runs.due(now, horizon=self.settings.longest_wait)
        stats.due = len(due)
        if not due:
            return stats
        listed = self._sweep(due, stats)
        settled = self._settle(due, listed, stats, now)
        to_poll = [run for run in due if run.run_id not in settled]
        listed_ended = {run_id for run_id, item in listed.items() if is_terminal(item.state)}
        quiet: list[Poll] = []

        def arrived(poll: Poll) -> None:
            """Runs still going are recorded together at the end; an end is recorded (and can be posted by
            the sender thread) as soon as it is read, not after the whole cycle."""
            stats.polled += 1
            stats.wes_requests += poll.requests
            if isinstance(poll.error, WesUnreachable):
                stats.unreachable += 1
                self._unreachable_reason = str(poll.error)
            if poll.status is not None and poll.outcome is None:
                quiet.append(poll)
                return
            try:
                self._apply(poll, self.clock.now(), stats)
            except Exception:  # one bad run must not stop the others (errbot's poller does the same)
                logger.exception("could not record the poll of run %s", poll.run.run_id)

        polls = self.workers.map(lambda run: self._poll(run, run.run_id in listed_ended), to_poll,
                                 self.settings.concurrency, on_result=arrived)
        stats.stopped = len(polls) < len(to_poll)
        self._record_quiet(quiet, stats)
        stats.wes_requests += stats.sweep_requests
        return stats

    def expire(self) -> int:
        """End the subscriptions that reached their age, telling their subscribers."""
        days = self.settings.subscription_days
        now = self.clock.now()
        owed = {sub.id: notice(sub, expired_text(sub, days, server=self.server), mention=True)
                for sub in self.store.subscriptions.due_to_expire(now)}
        expired = len(self.store.subscriptions.end(owed, status="expired", reason="expired", now=now,
                                                   key_prefix="expired")) if owed else 0
        if expired:
            self.owed()
        return expired

    # -- reading -------------------------------------------------------------------------------------

    def _sweep(self, due: list[WatchedRun], stats: TickStats) -> dict[str, RunSummary]:
        """States of due runs read from GET /runs pages, when that is cheaper than a status call per run.
        At most ``sweep_max_pages`` pages and ``sweep_budget`` seconds: the runs it did not reach get a status
        call, so a list that never ends costs a bounded delay, never a missed poll."""
        if len(due) < self.settings.sweep_min_runs:
            return {}
        if self._skip_sweeps > 0:
            self._skip_sweeps -= 1
            return {}
        wanted = {run.run_id for run in due}
        found: dict[str, RunSummary] = {}
        progress = Walk()
        try:
            for page in self.runs.pages(progress, self.settings.sweep_max_pages, self.runs.deadline()):
                found.update((item.run_id, item) for item in page.runs if item.run_id in wanted
                             and item.run_id not in found)
                if len(found) == len(wanted):
                    break
        except WesError as error:
            logger.info("reading the run list failed (%s); asking each run for its status", error)
        stats.sweep_requests += progress.pages
        if progress.cut is not None:
            logger.debug("the run list was read only in part (%s bound, %d pages)", progress.cut, progress.pages)
        self._judge_sweep(found, progress.pages)
        return found

    def _judge_sweep(self, found: dict[str, RunSummary], pages: int) -> None:
        stateless = sum(item.state is None for item in found.values())
        if stateless and not self._told_no_states:
            logger.info("the WES server lists runs without their state; asking each run for its status instead")
            self._told_no_states = True
        if pages and len(found) - stateless < 2 * pages:
            # Most of what the list holds is not ours: status calls are cheaper. Try again in a while.
            self._skip_sweeps = 10

    def _settle(self, due: list[WatchedRun], listed: dict[str, RunSummary], stats: TickStats,
                now: float) -> set[str]:
        """Runs the list showed as still going are settled; the rest (not listed, ended, no state) get a
        status call. Returns the settled run ids."""
        settled = [(run, listed[run.run_id]) for run in due
                   if listed.get(run.run_id) is not None and listed[run.run_id].state is not None
                   and not is_terminal(listed[run.run_id].state)]
        if not settled:
            return set()
        try:
            stats.changed += self.store.runs.record_states(
                [(run.run_id, str(item.state)) for run, item in settled], now=now,
                next_poll_at=now + self.settings.poll_seconds,
                start_times={run.run_id: item.start_time for run, item in settled if item.start_time},
                refresh=[run.run_id for run, item in settled if self._card_changes(run, item.start_time, now)])
            stats.swept = len(settled)
            self._auth_recovered()
        except Exception:
            logger.exception("could not record the states read from the run list")
            return set()
        return {run.run_id for run, _ in settled}

    def _card_changes(self, run: WatchedRun, start_time: str | None, now: float) -> bool:
        """Whether the cards of a run read (successfully) at ``now`` show something new besides its state: it
        had been unreadable, its start time was just learned, or its running time moved on a step. Never
        otherwise: a card is only updated when what it shows changes (:func:`card_running_time`)."""
        if run.failing_since is not None:
            return True
        start = start_time or run.start_time
        return (start, card_running_time(start, now)) != (run.start_time,
                                                           card_running_time(run.start_time, run.read_at))

    def _poll(self, run: WatchedRun, listed_ended: bool = False) -> Poll:
        """Read one run. When the run list already showed it ended, GET /runs/{id} confirms it and gives
        the details in one request (its state is the confirmation); otherwise the cheap status call first."""
        try:
            if listed_ended:
                log = self.wes.get_run(run.run_id)
                status = RunStatus(run_id=run.run_id, state=log.state)
                if not is_terminal(status.state):
                    return Poll(run=run, status=status, start_time=log.run_log.start_time)
                outcome, requests = self.details.outcome(run.run_id, status, log)
                return Poll(run=run, status=status, outcome=outcome, requests=1 + requests)
            status = self.wes.get_status(run.run_id)
            if not is_terminal(status.state):
                return self._going(run, status)
            outcome, requests = self.details.outcome(run.run_id, status)
            return Poll(run=run, status=status, outcome=outcome, requests=1 + requests)
        except WesError as error:
            return Poll(run=run, error=error)
        except Exception:  # a bug in wesbot, not the server's doing: logged as one, and the run polled again
            if self.workers.stop.is_set():
                # Stopping: the client may be closed under a read that was still waiting. Not a bug, and not
                # logged as one; the run is polled again, as after one.
                return Poll(run=run, bug="stopping")
            error_id = uuid.uuid4().hex[:8]
            logger.exception("error %s: a bug in wesbot while polling run %s; it is polled again", error_id,
                             run.run_id)
            return Poll(run=run, bug=error_id)

    def _going(self, run: WatchedRun, status: RunStatus) -> Poll:
        """A run still going. When it has just moved (QUEUED to RUNNING) and its start time is not known yet,
        one GET /runs/{id} reads it for its card: a request per change of state, never one per cycle."""
        if run.start_time is not None or status.state is None or str(status.state) == run.state:
            return Poll(run=run, status=status)
        try:
            log = self.wes.get_run(run.run_id)
        except WesError as error:  # the state was read: a run log that fails to come costs nothing but the time
            logger.debug("could not read run %s for its start time: %s", run.run_id, error)
            return Poll(run=run, status=status, requests=2)
        return Poll(run=run, status=status, requests=2, start_time=log.run_log.start_time)

    # -- recording -----------------------------------------------------------------------------------

    def _record_quiet(self, quiet: list[Poll], stats: TickStats) -> None:
        if not quiet:
            return
        now = self.clock.now()
        stats.changed += self.store.runs.record_states(
            [(p.run.run_id, None if p.status is None or p.status.state is None else str(p.status.state))
             for p in quiet], now=now, next_poll_at=now + self.settings.poll_seconds,
            start_times={p.run.run_id: p.start_time for p in quiet if p.start_time},
            refresh=[p.run.run_id for p in quiet if self._card_changes(p.run, p.start_time, now)])
        self._auth_recovered()

    def _apply(self, poll: Poll, now: float, stats: TickStats) -> None:
        """Record one run's end, disappearance or failed read (runs still going are recorded in bulk)."""
        if poll.error is None and poll.bug is None:
            self._auth_recovered()
        if poll.outcome is not None:
            outcome = poll.outcome
            owed = {sub.id: notification(sub, outcome, host=self.label)
                    for sub in self.store.subscriptions.of_run(poll.run.run_id)}
            self.store.runs.record_terminal(
                poll.run.run_id, state=outcome.state, now=now, exit_code=outcome.exit_code,
                start_time=outcome.start_time, end_time=outcome.end_time, owed=owed)
            stats.ended += 1
            self.owed()
        elif poll.bug is not None:
            stats.bugs += 1
            self.store.runs.record_bug(poll.run.run_id, next_poll_at=now + self._backoff(poll.run))
        elif isinstance(poll.error, NotFound):
            self._gone(poll.run.run_id, poll.error, now)
            stats.gone += 1
        elif poll.error is not None:
            self._unreadable(poll.run, poll.error, now)
            stats.failed += 1

    def _backoff(self, run: WatchedRun) -> float:
        return float(min(self.settings.poll_seconds * (2 ** min(run.failures, 10)), self.settings.backoff_cap))

    def _gone(self, run_id: str, error: NotFound, now: float) -> None:
        text = gone_text(run_id, str(error), server=self.server)
        owed = {sub.id: notice(sub, text, mention=True) for sub in self.store.subscriptions.of_run(run_id)}
        self.store.subscriptions.end(owed, status="gone", reason=str(error), now=now, key_prefix="gone")
        self.owed()

    def _unreadable(self, run: WatchedRun, error: WesError, now: float) -> None:
        """A failed read: back off; tell the channel once when the run has been unreadable for a while."""
        # A run that has just become unreadable: its cards say so, instead of its last state as if current.
        watched = self.store.runs.record_failure(run.run_id, now=now, reason=str(error),
                                                 next_poll_at=now + self._backoff(run),
                                                 refresh=run.failing_since is None)
        if isinstance(error, WesAuthError):
            self._report_auth(run.run_id, error, now)
            return
        since = watched.failing_since or now
        if not watched.unreadable_reported and now - since >= self.settings.unreadable_after:
            text = unreadable_text(run.run_id, since, now, str(error), server=self.server)
            owed = {sub.id: notice(sub, text) for sub in self.store.subscriptions.of_run(run.run_id)}
            self.store.runs.mark_unreadable_reported(run.run_id, now=now, since=since, owed=owed)
            self.owed()

    def _report_auth(self, run_id: str, error: WesAuthError, now: float) -> None:
        """401/403: tell each subscribed channel once per episode; the subscriptions are kept."""
        episode = self.store.values.get(AUTH_EPISODE)
        if episode is None:
            episode = str(int(now))
            self.store.values.set(AUTH_EPISODE, episode)
        payload = notice(None, auth_lost_text(self.label, str(error)))
        for channel in self.store.subscriptions.active_channels_of_runs([run_id]):
            self.store.outbox.notice_once(f"auth-lost:{channel}:{episode}", channel_id=channel, payload=payload,
                                          now=now)
        self.owed()

    def _auth_recovered(self) -> None:
        if self.store.values.get(AUTH_EPISODE) is not None:
            self.store.values.set(AUTH_EPISODE, None)
