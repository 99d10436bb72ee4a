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


def since(kind: str, item: RunSummary, state: State, first_seen: float) -> float | None:
    """When the run's clock started for a watch of ``kind``; None when the run is not one it counts."""
    if is_terminal(state) or state is None:
        return None
    if kind == "queued":
        return first_seen if state in WAITING else None
    started = parse_time(item.start_time)
    return started.timestamp() if started is not None else first_seen


def find_late(watches: list[ChannelWatch], seen: Mapping[str, RunSummary], states: Mapping[str, State],
              first_seen: Mapping[str, float], told: set[tuple[int, str]], now: float) -> list[LateRun]:
    """The runs that are late for each deadline watch and that it has not told of yet, oldest first."""
    late: list[LateRun] = []
    for watch in watches:
        if watch.after is None:
            continue
        for run_id, item in seen.items():
            if (watch.id, run_id) in told or not watch.matches_tags(item.tags):
                continue
            state = states.get(run_id, item.state)
            start = since(watch.kind, item, state, first_seen.get(run_id, now))
            if start is not None and now - start >= watch.after:
                late.append(LateRun(run_id=run_id, state=str(state), since=start, age=now - start, watch=watch))
    return sorted(late, key=lambda run: (run.watch.id, run.since))


def compose_late(late: list[LateRun], *, new_watches: set[int], digest_after: int, host: str,
                 progress: Callable[[str], TaskProgress | None]) -> list[Owed]:
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
            owed.append(Owed(key=f"late-digest:{watch_id}:{digest_key}", channel_id=watch.channel_id, kind="digest",
                             payload=late_digest(runs, watch, host=host, already=watch_id in new_watches)))
            continue
        owed += [Owed(key=late_key(run), channel_id=watch.channel_id,
                      payload=late_alert(run, watch, host=host, progress=progress(run.run_id))) for run in runs]
    return owed


def late_key(run: LateRun) -> str:
    return f"late:{run.watch.id}:{run.run_id}"


def late_singles(late: list[LateRun], *, new_watches: set[int], digest_after: int) -> list[str]:
    """The runs told of one by one (their alert shows their tasks' progress; a digest line does not)."""
    counts: dict[int, int] = {}
    for run in late:
        counts[run.watch.id] = counts.get(run.watch.id, 0) + 1
    return sorted({run.run_id for run in late if counts[run.watch.id] == 1 or (
        run.watch.id not in new_watches and counts[run.watch.id] <= digest_after)})
