"""Channel-wide watches (``/wes watch failed``): read the run list once per cycle, find the runs that ended
since the last sweep, and queue what each watching channel is owed (one message per run, or one digest for a
burst). Never posts: delivery does, from the outbox.

The decisions are pure functions, tested with tables: :func:`diff` (which runs changed, which ended),
:func:`route` (which channel hears about which run) and :func:`compose` (the messages, digests included).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..outcome import RunOutcome, basic_outcome
from ..slack.cards import digest, notification
from ..slack.owners import owner_mention, owner_of
from ..store.watch import WatchStore
from ..store.watches import ChannelWatch, Owed, WatchesStore
from ..wes.errors import WesError
from ..wes.models import RunLog, RunStatus, RunSummary, State, is_terminal, parse_state
from ..wes.paging import Walk
from .base import Clock, RunList, WatchedWes, WatcherSettings, Workers
from .deadlines import compose_late, find_late, late_singles
from .details import Details
from .progress import ProgressSettings, read_progress

logger = logging.getLogger("wesbot.watcher")

COMPLETE_FLAG = "sweep_complete"


@dataclass
class SweepStats:
    listed: int = 0
    requests: int = 0
    queued: int = 0
    digests: int = 0
    confirmed: set[str] = field(default_factory=set)


# -- the pure decisions ---------------------------------------------------------------------------------


def diff(states: dict[str, State], known: dict[str, str | None], *,
         new_can_end: bool) -> tuple[list[tuple[str, str | None]], list[str]]:
    """The states that changed since the stored ones, and the runs that ended. A run not stored before counts
    as ended only when ``new_can_end``: this sweep and the last both read the whole list, so it is really new
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


def interested(ended: Iterable[str], tags: Callable[[str], dict[str, str]],
               watches: list[ChannelWatch]) -> dict[str, list[ChannelWatch]]:
    """For each ended run, the watches whose tag filter it matches (whatever its outcome, for now)."""
    found: dict[str, list[ChannelWatch]] = {}
    for run_id in ended:
        run_tags = tags(run_id)
        matching = [watch for watch in watches if watch.matches_tags(run_tags)]
        if matching:
            found[run_id] = matching
    return found


def route(outcomes: dict[str, RunOutcome], watching: dict[str, list[ChannelWatch]],
          subscribed: set[tuple[str, str]]) -> dict[str, list[tuple[RunOutcome, ChannelWatch]]]:
    """Which channel hears about which confirmed end, through which watch: a ``failed`` watch only of runs
    that failed (:func:`wesbot.outcome.run_failed`), one message per run and channel, and none in a channel
    where the run has a subscription (that one says it, with mentions)."""
    per_channel: dict[str, list[tuple[RunOutcome, ChannelWatch]]] = {}
    for run_id, outcome in outcomes.items():
        told: set[str] = set()
        for watch in watching.get(run_id, []):
            if watch.kind == "failed" and not outcome.failed:
                continue
            if watch.channel_id in told or (run_id, watch.channel_id) in subscribed:
                continue
            told.add(watch.channel_id)
            per_channel.setdefault(watch.channel_id, []).append((outcome, watch))
    return per_channel


def compose(per_channel: dict[str, list[tuple[RunOutcome, ChannelWatch]]], *, digest_after: int, host: str,
            full: dict[str, RunOutcome], owners: Mapping[str, str] | None = None) -> list[Owed]:
    """The messages owed: one per run (with the details in ``full`` where read), or, for more than
    ``digest_after`` in one channel, one digest, whose runs' own keys are reserved so that they never
    follow one by one. Keys are the subscriptions' (run, state, channel): a run is announced once per channel."""
    owed: list[Owed] = []
    for channel, items in per_channel.items():
        keys = [f"end:{o.run_id}:{o.state}:{channel}" for o, _ in items]
        if len(items) <= digest_after:
            for (outcome, watch), key in zip(items, keys, strict=True):
                note = f"Posted because this channel watches {watch.describe()} (/wes unwatch to stop)"
                owed.append(Owed(key=key, channel_id=channel, payload=notification(
                    None, full.get(outcome.run_id, outcome), host=host, note=note,
                    owner=(owners or {}).get(outcome.run_id))))
            continue
        what = "failed" if all(o.failed for o, _ in items) else "ended"
        digest_key = hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:32]
        owed.append(Owed(key=f"digest:{channel}:{digest_key}", channel_id=channel, kind="digest",
                         payload=digest([o for o, _ in items], what=what, host=host)))
        owed += [Owed(key=key, channel_id=channel, payload={}, skip=True) for key in keys]
    return owed


def singles(per_channel: dict[str, list[tuple[RunOutcome, ChannelWatch]]], digest_after: int) -> list[str]:
    """The runs announced one by one somewhere: they get the full details (a digest needs none)."""
    return sorted({o.run_id for items in per_channel.values() if len(items) <= digest_after for o, _ in items})


# -- the job --------------------------------------------------------------------------------------------


# What the told pairs in memory were read at: the table's last row, and each deadline watch as it was set.
_ToldKey = tuple[int, tuple[tuple[int, float, float | None], ...]]


@dataclass
class LateOwed:
    """The deadline watches' messages, and the (watch id, run id) of each late run they tell of."""

    owed: list[Owed] = field(default_factory=list)
    told: list[tuple[int, str]] = field(default_factory=list)



class WatchSweeper:
    def __init__(self, store: WatchStore, watches: WatchesStore, wes: WatchedWes, details: Details, runs: RunList,
                 workers: Workers, *, host: str, label: str | None = None, settings: WatcherSettings, clock: Clock,
                 owed: Callable[[], None], owner_tag: str | None = None) -> None:
        self.store = store
        self.watches = watches
        self.wes = wes
        self.details = details
        self.runs = runs
        self.workers = workers
        self.host = host
        # How messages name the server: the host, or with several servers its name and host.
        self.label = label or host
        self.settings = settings
        self.clock = clock
        self.owed = owed
        self.owner_tag = owner_tag  # the run tag naming who started a run: mentioned in what this job posts
        self._told_no_states = False
        # Set while sweeps are being cut short by a bound (warned once per episode).
        self._sweeps_cut = False
        # What the deadline watches told of: (what it was read at, the pairs); see _told.
        self._told_cache: tuple[_ToldKey, set[tuple[int, str]]] | None = None

    def sweep(self) -> SweepStats:
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
        if not self.watches.any_active():
            return stats
        started = self.clock.now()
        deadline = self.runs.deadline()
        watches = self.watches.active()
        known = self.watches.swept_states()
        seen, progress = self._read(deadline)
        stats.requests += progress.pages
        if progress.cut == "stopped":
            return stats
        stats.listed = len(seen)
        states: dict[str, State] = {run_id: item.state for run_id, item in seen.items()}
        if not self._fill_states(states, stats, deadline) and progress.complete:
            progress.complete, progress.cut = False, "time"
        self._report_cut(progress, stats.listed)
        previous_complete = self.store.values.get(COMPLETE_FLAG) == "1"
        changes, ended = diff(states, known, new_can_end=previous_complete and progress.complete)
        activate = progress.complete or progress.cut is not None
        active = [w for w in watches if w.active_from is not None and w.after is None]
        owed = self._owed(ended, seen, active, stats) if active else []
        late = self._late([w for w in watches if w.after is not None and (w.active_from is not None or activate)],
                          seen, states, started, stats)
        # A run whose end was not confirmed (or that no active watch looked at yet) keeps its old state, to be
        # looked at again next sweep.
        changes = [(run_id, state) for run_id, state in changes if run_id not in ended or run_id in stats.confirmed]
        stats.queued = self.watches.record_sweep(
            changes=changes, owed=owed + late.owed, now=started, complete=progress.complete, activate=activate,
            late=late.told)
        self._remember_told(late.told)
        if stats.queued:
            self.owed()
        return stats

    def _read(self, deadline: float) -> tuple[dict[str, RunSummary], Walk]:
        """The run list (the first listing of each run), within ``watch_max_pages``, ``watch_max_runs`` and
        ``deadline``: what one sweep may cost in requests, memory and time, whatever the server hands out."""
        seen: dict[str, RunSummary] = {}
        progress = Walk()
        limit = self.settings.watch_max_runs
        try:
            for page in self.runs.pages(progress, self.settings.watch_max_pages, deadline):
                if not _take(seen, page.runs, limit) or (len(seen) >= limit and not progress.complete):
                    progress.complete, progress.cut = False, "runs"
                    break
        except WesError as error:
            logger.info("sweeping the run list failed after %d pages: %s", progress.pages, error)
            progress.complete = False
        return seen, progress

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
            if self.workers.stop.is_set() or self.clock.monotonic() >= deadline:
                break
            for run_id, status in self.workers.map(self._status_of, stateless[start:start + batch],
                                                   self.settings.concurrency):
                asked.add(run_id)
                states[run_id] = None if status is None else status.state
                stats.requests += 1
        for run_id in stateless:
            if run_id not in asked:
                del states[run_id]
        return len(asked) == len(stateless)

    def _status_of(self, run_id: str) -> tuple[str, RunStatus | None]:
        """The run's status, None if it cannot be read; with its id, as results arrive in any order."""
        try:
            return run_id, self.wes.get_status(run_id)
        except WesError:
            return run_id, None

    def _owed(self, ended: list[str], seen: dict[str, RunSummary], watches: list[ChannelWatch],
              stats: SweepStats) -> list[Owed]:
        """Confirm each end a watch cares about, route it to its channels, and compose the messages."""
        watching = interested(ended, lambda run_id: seen[run_id].tags if run_id in seen else {}, watches)
        stats.confirmed.update(run_id for run_id in ended if run_id not in watching)
        if not watching:
            return []
        logs: dict[str, RunLog] = {}
        for run_id, log in self.workers.map(self.details.confirm_end, list(watching), self.settings.concurrency):
            stats.requests += 1
            if log is not None:
                logs[run_id] = log
        stats.confirmed.update(logs)
        subscribed = self.watches.subscribed_channels(watching)
        per_channel = route({run_id: basic_outcome(log) for run_id, log in logs.items()}, watching, subscribed)
        full: dict[str, RunOutcome] = {}
        for run_id, outcome, requests in self.workers.map(
                self._full_outcome, [(r, logs[r]) for r in singles(per_channel, self.settings.digest_after)],
                self.settings.concurrency):
            full[run_id] = outcome
            stats.requests += requests
        owed = compose(per_channel, digest_after=self.settings.digest_after, host=self.label, full=full,
                       owners=self._owners(seen, (o.run_id for items in per_channel.values() for o, _ in items)))
        stats.digests += sum(item.kind == "digest" for item in owed)
        return owed

    def _owners(self, seen: dict[str, RunSummary], run_ids: Iterable[str]) -> dict[str, str]:
        """How the messages name who started each run (the owner tag), where the setting is on."""
        if not self.owner_tag:
            return {}
        named = {run_id: owner_mention(owner_of(seen[run_id].tags, self.owner_tag))
                 for run_id in set(run_ids) if run_id in seen}
        return {run_id: mention for run_id, mention in named.items() if mention}

    def _late(self, watches: list[ChannelWatch], seen: dict[str, RunSummary], states: dict[str, State], now: float,
              stats: SweepStats) -> LateOwed:
        """What the deadline watches owe: from the list just read, and each single alert's task progress (one
        task-list read each; a digest needs none)."""
        if not watches:
            return LateOwed()
        late = find_late(watches, seen, states, self.watches.first_seen(), self._told(watches), now)
        if not late:
            return LateOwed()
        new_watches = {w.id for w in watches if w.active_from is None}
        alone = late_singles(late, new_watches=new_watches, digest_after=self.settings.digest_after)
        progress = dict(self.workers.map(
            lambda run_id: (run_id, read_progress(self.wes, run_id, ProgressSettings(), self.workers.stop.is_set)),
            alone, self.settings.concurrency))
        stats.requests += len(alone)
        owed = compose_late(late, new_watches=new_watches, digest_after=self.settings.digest_after, host=self.label,
                            progress=progress.get, owners=self._owners(seen, [run.run_id for run in late]))
        return LateOwed(owed=owed, told=[(run.watch.id, run.run_id) for run in late])

    def _told(self, watches: list[ChannelWatch]) -> set[tuple[int, str]]:
        """The late runs told of, kept between sweeps and read again when another writer recorded some, or a
        watch was set again (which forgets what it told)."""
        key = (self.watches.late_marker(), tuple((w.id, w.created_at, w.after) for w in watches))
        if self._told_cache is None or self._told_cache[0] != key:
            self._told_cache = (key, self.watches.told_late())
        return self._told_cache[1]

    def _remember_told(self, told: list[tuple[int, str]]) -> None:
        if self._told_cache is not None and told:
            key, pairs = self._told_cache
            pairs.update(told)
            self._told_cache = ((self.watches.late_marker(), key[1]), pairs)

    def _full_outcome(self, item: tuple[str, RunLog]) -> tuple[str, RunOutcome, int]:
        run_id, log = item
        outcome, requests = self.details.outcome(run_id, RunStatus(run_id=run_id, state=log.state), log)
        return run_id, outcome, requests

    def _report_cut(self, progress: Walk, listed: int) -> None:
        """A WARNING when sweeps start being cut short by a bound, an INFO when one reads the whole list
        again: once per episode, not every cycle (a long list stays long)."""
        if progress.cut is not None and not self._sweeps_cut:
            self._sweeps_cut = True
            logger.warning("the channel-watch sweep stopped early at its %s (%d pages, %d runs read); runs beyond "
                           "that are not watched until the list gets shorter", self._bound_text(progress.cut),
                           progress.pages, listed)
        elif progress.complete and self._sweeps_cut:
            self._sweeps_cut = False
            logger.info("the channel-watch sweep reads the whole run list again (%d pages, %d runs)",
                        progress.pages, listed)

    def _bound_text(self, cut: str) -> str:
        settings = self.settings
        texts = {"pages": f"page limit ({settings.watch_max_pages} pages, watch_max_pages)",
                 "runs": f"run limit ({settings.watch_max_runs} runs, watch_max_runs)",
                 "time": f"time limit ({settings.sweep_budget:g} s, min(sweep_seconds_max, poll_seconds / 2))"}
        return texts.get(cut, cut)


def _take(seen: dict[str, RunSummary], runs: Iterable[RunSummary], limit: int) -> bool:
    """Keep the first listing of each run, ``limit`` runs at most in all; False when some did not fit."""
    for item in runs:
        if item.run_id in seen:
            continue
        if len(seen) >= limit:
            return False
        seen[item.run_id] = item
    return True
