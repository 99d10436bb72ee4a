"""Deadline watches (``/wes watch long 6h``, ``/wes watch queued 30m``): which runs the channel hears of before
they end. Pure decisions, tested with tables; the sweep (:mod:`wesbot.watcher.sweep`) feeds them the run list it
already reads, so a deadline costs no WES request of its own, and the alerts go out through the outbox.

A run is *late* for a ``long`` watch once it has been active (not ended) for the watch's duration since it
started: its ``start_time`` from the run list, else when wesbot first saw it. For a ``queued`` watch, once it has
been QUEUED or INITIALIZING that long since wesbot first saw it (WES gives no time of submission). Each run is
told once per watch (``late_runs``); the runs already late when a watch is set come in one digest.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..format import parse_time
from ..outcome import TaskProgress
from ..slack.alerts import late_alert, late_digest
from ..store.watches import ChannelWatch, Owed
from ..wes.models import RunState, RunSummary, State, is_terminal

WAITING = frozenset({RunState.QUEUED, RunState.INITIALIZING})


@dataclass(frozen=True, kw_only=True)
class LateRun:
    """A run that passed a watch's deadline: how long it has been in that state, from when."""

    run_id: str
    state: str
    since: float
    age: float
    watch: ChannelWatch


def _starts(seen: Mapping[str, RunSummary], states: Mapping[str, State],
            first_seen: Mapping[str, float], now: float) -> dict[str, list[tuple[float, str]]]:
    """When each active run's clock started, for each kind of deadline watch, oldest first: a ``long`` watch
    counts from the run's start time (else when wesbot first saw it), a ``queued`` one from when wesbot first
    saw it, for runs QUEUED or INITIALIZING only. Each start time is parsed once per sweep, not once per watch."""
    long: list[tuple[float, str]] = []
    queued: list[tuple[float, str]] = []
    for run_id, item in seen.items():
        state = states.get(run_id, item.state)
        if state is None or is_terminal(state):
            continue
        seen_at = first_seen.get(run_id, now)
        started = parse_time(item.start_time)
        long.append((started.timestamp() if started is not None else seen_at, run_id))
        if state in WAITING:
            queued.append((seen_at, run_id))
    return {"long": sorted(long), "queued": sorted(queued)}


def find_late(watches: list[ChannelWatch], seen: Mapping[str, RunSummary], states: Mapping[str, State],
              first_seen: Mapping[str, float], told: set[tuple[int, str]], now: float) -> list[LateRun]:
    """The runs that are late for each deadline watch and that it has not told of yet, oldest first. Only the
    runs started before the watch's limit are looked at (a prefix of the sorted starts)."""
    starts = _starts(seen, states, first_seen, now)
    late: list[LateRun] = []
    for watch in watches:
        if watch.after is None or watch.kind not in starts:
            continue
        runs = starts[watch.kind]
        for start, run_id in runs[:bisect_right(runs, (now - watch.after, "\U0010ffff"))]:
            if (watch.id, run_id) in told or not watch.matches_tags(seen[run_id].tags):
                continue
            state = states.get(run_id, seen[run_id].state)
            late.append(LateRun(run_id=run_id, state=str(state), since=start, age=now - start, watch=watch))
    return late


def compose_late(late: list[LateRun], *, new_watches: set[int], digest_after: int, host: str,
                 progress: Callable[[str], TaskProgress | None], owners: Mapping[str, str] | None = None) -> list[Owed]:
    """The alerts owed: one per run and watch, or one digest per watch for the runs that were already late
    when it was set (``new_watches``) and for a burst of more than ``digest_after``."""
    by_watch: dict[int, list[LateRun]] = {}
    for run in late:
        by_watch.setdefault(run.watch.id, []).append(run)
    owed: list[Owed] = []
    for watch_id, runs in by_watch.items():
        watch = runs[0].watch
        if len(runs) > 1 and (watch_id in new_watches or len(runs) > digest_after):
            digest_key = hashlib.sha256(",".join(run.run_id for run in runs).encode()).hexdigest()[:32]
            owed.append(Owed(key=f"late-digest:{watch_id}:{watch.created_at}:{digest_key}", channel_id=watch.channel_id,
                             kind="digest",
                             payload=late_digest(runs, watch, host=host, already=watch_id in new_watches,
                                                 owners=owners or {})))
            continue
        owed += [Owed(key=late_key(run), channel_id=watch.channel_id,
                      payload=late_alert(run, watch, host=host, progress=progress(run.run_id),
                                         owner=(owners or {}).get(run.run_id))) for run in runs]
    return owed


def late_key(run: LateRun) -> str:
    """Once per run and watch; a watch set again (its ``created_at``) tells again."""
    return f"late:{run.watch.id}:{run.watch.created_at}:{run.run_id}"


def late_singles(late: list[LateRun], *, new_watches: set[int], digest_after: int) -> list[str]:
    """The runs told of one by one (their alert shows their tasks' progress; a digest line does not)."""
    counts: dict[int, int] = {}
    for run in late:
        counts[run.watch.id] = counts.get(run.watch.id, 0) + 1
    return sorted({run.run_id for run in late if counts[run.watch.id] == 1 or (
        run.watch.id not in new_watches and counts[run.watch.id] <= digest_after)})
