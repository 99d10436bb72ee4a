"""The deadline watches' benchmark (``/wes watch long DURATION``, ``/wes watch queued DURATION``). Run from the
project root: `.venv/bin/python -m bench.deadlines` (about 20 s).

What a deadline watch adds to the channel-watch sweep, which reads the run list anyway. 10,000 runs RUNNING on an
in-process fake WES (``tests.fakes.watching.StubWes``, pages of 1,000), their start times spread over the last
12 hours, half of them tagged project=p0..p4; a real SQLite file store; the sweep as the watcher runs it
(``Watcher.sweep_watches()``, built by ``tests.fakes.watching.make`` on a fake clock). Measured, in one run, on the
same store and runs:

1. baseline: 100 channels each watching ``failed tag project=pK`` (no deadline watch); quiet sweeps.
2. 100 more channels, each watching ``long D`` with D from 1h to 24h (a different D each; a quarter of them with
   a tag filter). The first sweep after they are set tells of every run already late, one digest per watch (a
   single alert where only one run is late): timed apart, as the first-sweep cost. Then the steady state: sweeps
   in which no run passes a deadline (the fake clock does not move between them).
3. Steady-state sweeps in which 100 runs newly pass a deadline each (the fake clock moves on one poll period,
   30 s, before each): 100 single alerts, each with one task-list read for the run's progress.

Each sweep: CPU seconds of the process (``time.process_time``; the fake WES runs in the process too, so its share,
building 10,000 run summaries a sweep, is in every figure, the baseline's included), wall time, WES requests
(``SweepStats.requests``, cross-checked with what the fake received) and the messages queued. The alerts queued
are checked against a reference computed from the runs' ages and the watches' durations: every (watch, run) pair
late told exactly once, in the message expected, and nothing queued in a quiet sweep; any difference stops the
benchmark. Then the steady state's cost is broken down: the store reads the deadline watches add, and
``find_late`` itself, timed alone on the same inputs.

Only ``long`` watches are measured: by the code, a ``queued`` watch goes through the same loop over every run, and
skips the start-time parse for a run that is not waiting. The machines are shared and noisy: compare figures
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.stats import machine
from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, make
from wesbot.store.watch import WatchStore
from wesbot.store.watches import ChannelWatch, WatchesStore
from wesbot.watcher import SweepStats, Watcher, WatcherSettings
from wesbot.watcher.deadlines import find_late
from wesbot.wes.models import Log, RunSummary, State

HOUR = 3600
SPAN = 12 * HOUR  # the runs started within the last SPAN seconds
PROJECTS = 5
# What each run's task list holds (a single alert shows the progress): 5 done, 2 running, 1 not started.
TASKS = [Log(name=f"step{n}", start_time="2026-01-01T00:00:00Z", end_time="2026-01-01T00:05:00Z", exit_code=0)
         for n in range(5)] + [Log(name=f"step{n}", start_time="2026-01-01T00:10:00Z") for n in (5, 6)] + [
             Log(name="step7")]


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check(ok: bool, what: str) -> None:
    """Stop the benchmark when what it measures is not what it meant to (not an assert: ``-O`` drops those)."""
    if not ok:
        raise SystemExit(f"FAILED: {what}")


def run_tags(i: int) -> dict[str, str]:
    """Half the runs are tagged project=p0..p4."""
    return {"project": f"p{(i // 2) % PROJECTS}"} if i % 2 == 0 else {}


@dataclass(frozen=True)
class Plan:
    """The runs and deadline watches, and when each run passes each watch's deadline."""

    now: int  # the fake clock at the start
    ages: list[int]  # each run's age at ``now``, seconds
    afters: list[int]  # each deadline watch's duration, seconds
    watch_tags: list[tuple[str, str]]
    events: list[list[tuple[int, int]]]  # per event cycle: (watch index, run index) newly late in it
    step: int  # the clock moves this much before each event cycle

    def late(self, at: int, watch_ids: list[int]) -> set[tuple[int, str]]:
        """The reference: (watch id, run id) of every run late for a watch at ``at``."""
        found: set[tuple[int, str]] = set()
        tags = [run_tags(i) for i in range(len(self.ages))]
        for k, after in enumerate(self.afters):
            key, value = self.watch_tags[k]
            for i, age in enumerate(self.ages):
                if age + (at - self.now) >= after and (not key or tags[i].get(key) == value):
                    found.add((watch_ids[k], run_id(i)))
        return found


def run_id(i: int) -> str:
    return f"run-{i:05d}"


def plan(runs: int, watches: int, events: int, cycles: int, step: int, seed: int, now: int) -> Plan:
    """Durations 1h..24h, a different one per watch (each 14 minutes or so apart, so that a run passes one
    watch's deadline at a time); every fourth watch with a tag. For event cycle c (1-based), ``events`` runs
    placed (c - 1/2) steps short of a watch's deadline, spread over the watches that runs of up to 12 hours can
    reach, each matching its watch's tag; every other run's age keeps clear of every deadline by the whole
    event window, so nothing else becomes late."""
    rng = random.Random(seed)
    afters = [HOUR + round(k * 23 * HOUR / max(1, watches - 1) / 60) * 60 for k in range(watches)]
    watch_tags = [("project", f"p{k % PROJECTS}") if k % 4 == 3 else ("", "") for k in range(watches)]
    window = (cycles + 1) * step
    gaps = [b - a for a, b in zip(afters, afters[1:], strict=False)]
    check(not gaps or min(gaps) > window, f"watch durations closer than the event window ({window} s)")
    reachable = [k for k, after in enumerate(afters) if after <= SPAN]
    pool = list(range(runs))
    rng.shuffle(pool)
    used: set[int] = set()
    ages: list[int | None] = [None] * runs
    schedule: list[list[tuple[int, int]]] = []
    for c in range(1, cycles + 1):
        cycle: list[tuple[int, int]] = []
        for j in range(events):
            k = reachable[((c - 1) * events + j) % len(reachable)]
            key, value = watch_tags[k]
            i = next(i for i in pool if i not in used and (not key or run_tags(i).get(key) == value))
            used.add(i)
            ages[i] = afters[k] - step * c + step // 2
            cycle.append((k, i))
        schedule.append(cycle)
    for i in range(runs):
        while ages[i] is None:
            age = rng.randrange(SPAN)
            if not any(after - window <= age < after + step for after in afters):
                ages[i] = age
    return Plan(now=now, ages=[a for a in ages if a is not None], afters=afters, watch_tags=watch_tags,
                events=schedule, step=step)


@dataclass(frozen=True)
class Sweep:
    seconds: float
    cpu: float
    stats: SweepStats
    received: int  # requests the fake WES received during the sweep

    def describe(self) -> str:
        check(self.received == self.stats.requests,
              f"the sweep counted {self.stats.requests} WES requests, the fake received {self.received}")
        return (f"{self.seconds:.3f} s wall, {self.cpu:.3f} CPU s, {self.stats.requests} WES requests, "
                f"{self.stats.queued} queued")


def requests(wes: StubWes) -> int:
    return wes.list_calls + len(wes.status_calls) + len(wes.run_calls) + len(wes.task_calls)


def timed(watcher: Watcher, wes: StubWes) -> Sweep:
    before = requests(wes)
    wall, cpu = time.perf_counter(), time.process_time()
    stats = watcher.sweep_watches()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Sweep(wall, cpu, stats, requests(wes) - before)


def median_of(sweeps: list[Sweep], what: Callable[[Sweep], float]) -> float:
    return statistics.median(what(s) for s in sweeps)


def summary(sweeps: list[Sweep]) -> str:
    cpus = ", ".join(f"{s.cpu:.3f}" for s in sweeps)
    return (f"median {median_of(sweeps, lambda s: s.cpu):.3f} CPU s ({len(sweeps)}: {cpus}), wall "
            f"{median_of(sweeps, lambda s: s.seconds):.3f} s, {sweeps[0].stats.requests} WES requests")


def queued_since(store: WatchStore, last_id: int) -> list[tuple[int, str, str, str, dict[str, Any]]]:
    """The outbox rows queued after ``last_id``: (id, key, kind, channel, payload)."""
    rows = store.db.execute("SELECT id, dedupe_key, kind, channel_id, payload FROM outbox WHERE server_id = ? "
                            "AND id > ? AND status = 'pending' ORDER BY id", [store.server_id, last_id]).fetchall()
    return [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]


def last_outbox_id(store: WatchStore) -> int:
    row = store.db.execute("SELECT MAX(id) FROM outbox WHERE server_id = ?", [store.server_id]).fetchone()
    return int(row[0] or 0)


def timed_call(fn: Callable[[], Any], times: int) -> tuple[float, Any]:
    """The median CPU seconds of ``fn()`` over ``times`` calls, and its last result."""
    cpus, result = [], None
    for _ in range(times):
        cpu = time.process_time()
        result = fn()
        cpus.append(time.process_time() - cpu)
    return statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--watches", type=int, default=100, help="channels of each kind (failed, long)")
    parser.add_argument("--events", type=int, default=100, help="runs newly late in each event cycle")
    parser.add_argument("--cycles", type=int, default=5, help="measured sweeps of each kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    began = time.perf_counter()
    settings = WatcherSettings(poll_seconds=30, sweep_page_size=1000, post_concurrency=1)
    step = int(settings.poll_seconds)
    clock = FakeClock(now=1_800_000_000.0)
    layout = plan(args.runs, args.watches, args.events, args.cycles, step, args.seed, int(clock.now()))
    wes = StubWes(page=settings.sweep_page_size)
    for i, age in enumerate(layout.ages):
        wes.states[run_id(i)] = "RUNNING"
        wes.start_times[run_id(i)] = iso(layout.now - age)
        wes.tasks[run_id(i)] = TASKS
        if run_tags(i):
            wes.tags[run_id(i)] = run_tags(i)
    print(f"machine: {machine()}", flush=True)

    workdir = tempfile.mkdtemp(prefix="wesbot-bench-")
    try:
        store = WatchStore(os.path.join(workdir, "bench.db"), server="default", url="http://wes.test")
        watches = WatchesStore(store)
        watcher = make(store, wes, RecordingPoster(), clock, watches=watches, settings=settings)
        for k in range(args.watches):
            watches.add(channel_id=f"CF{k:04d}", kind="failed", tag_key="project", tag_value=f"p{k % PROJECTS}",
                        user_id="U00001", now=clock.now())
        print(f"setup: {args.runs} runs RUNNING on the in-process fake WES (pages of {wes.page}), started within the "
              f"last 12 h, half tagged project=p0..p{PROJECTS - 1}; {args.watches} channels each watching "
              f"`failed tag project=pK`; digest_after={settings.digest_after}, concurrency={settings.concurrency}",
              flush=True)

        # 1. Baseline: failed watches only.
        first = timed(watcher, wes)
        check(first.stats.listed == args.runs and first.stats.queued == 0, "the first sweep did not list every run")
        print(f"[1] first sweep (stores {first.stats.listed} states, activates the watches): {first.describe()}")
        baseline = [timed(watcher, wes) for _ in range(args.cycles)]
        for s in baseline:
            s.describe()
            check(s.stats.queued == 0 and s.stats.listed == args.runs, "a quiet baseline sweep queued something")
        print(f"[1] baseline, quiet sweep, {args.watches} `failed` watches: {summary(baseline)}", flush=True)

        # 2. Deadline watches: the first sweep (runs already late: a digest per watch), then the steady state.
        ids: list[int] = []
        for k, after in enumerate(layout.afters):
            key, value = layout.watch_tags[k]
            watch, _ = watches.add(channel_id=f"CL{k:04d}", kind="long", tag_key=key, tag_value=value,
                                   user_id="U00001", now=clock.now(), after=after)
            ids.append(watch.id)
        channel_of = {watch_id: f"CL{k:04d}" for k, watch_id in enumerate(ids)}
        expected = layout.late(layout.now, ids)
        per_watch: dict[int, int] = {}
        for watch_id, _ in expected:
            per_watch[watch_id] = per_watch.get(watch_id, 0) + 1
        tagged = sum(1 for key, _ in layout.watch_tags if key)
        print(f"[2] {args.watches} channels each watching `long D`, D from {layout.afters[0] // HOUR}h to "
              f"{layout.afters[-1] // HOUR}h ({tagged} with a tag filter); by the reference, {len(expected)} "
              f"(watch, run) pairs are late already, for {len(per_watch)} of the watches", flush=True)
        mark = last_outbox_id(store)
        digest_sweep = timed(watcher, wes)
        queued = queued_since(store, mark)
        told = watches.told_late()
        check(told == expected, f"told of {len(told)} late pairs, expected {len(expected)} "
                                f"({len(told - expected)} unexpected, {len(expected - told)} missing)")
        check(digest_sweep.stats.queued == len(per_watch) == len(queued),
              f"the first sweep queued {digest_sweep.stats.queued} ({len(queued)} rows), expected one per watch "
              f"with a late run ({len(per_watch)})")
        for _, key, kind, channel, payload in queued:
            watch_id = int(key.split(":")[1])
            count = per_watch.get(watch_id, 0)
            check(channel == channel_of.get(watch_id), f"{key} queued in {channel}")
            if count > 1:
                check(kind == "digest" and payload["text"].startswith(f"{count} runs active longer than"),
                      f"{key}: expected a digest of {count} runs, got {kind} {payload.get('text')!r}")
            else:
                check(kind == "notification" and key.startswith("late:"), f"{key}: expected one alert")
        singles = sum(1 for count in per_watch.values() if count == 1)
        print(f"[2] first sweep (tells of the runs already late): {digest_sweep.describe()}: "
              f"{len(queued) - singles} digests and {singles} single alerts, {len(told)} late pairs recorded "
              f"(checked against the reference)", flush=True)

        settle = timed(watcher, wes)
        check(settle.stats.queued == 0, "the sweep after the first one queued more")
        mark = last_outbox_id(store)
        steady = [timed(watcher, wes) for _ in range(args.cycles)]
        for s in steady:
            s.describe()
            check(s.stats.queued == 0 and s.stats.requests == first.stats.requests,
                  "a steady-state sweep queued something or asked for more than the list")
        check(not queued_since(store, mark) and watches.told_late() == expected, "the steady state told of more")
        print(f"[2] steady state, no run passes a deadline (second sweep: {settle.cpu:.3f} CPU s): {summary(steady)}")
        base_cpu, steady_cpu = median_of(baseline, lambda s: s.cpu), median_of(steady, lambda s: s.cpu)
        extra = steady_cpu - base_cpu
        pairs = args.watches * args.runs
        print(f"[2] extra CPU of {args.watches} deadline watches over the baseline: {extra:+.3f} CPU s a sweep "
              f"({steady_cpu / base_cpu:.1f}x the baseline; {extra / pairs * 1e6:.2f} us per (watch, run) pair; "
              f"wall {median_of(steady, lambda s: s.seconds) - median_of(baseline, lambda s: s.seconds):+.3f} s)",
              flush=True)

        # The steady state broken down: the deadline watches' store reads, and find_late alone, same inputs.
        seen: dict[str, RunSummary] = {}
        token: str | None = None
        while True:
            page = wes.list_runs(page_size=wes.page, page_token=token)
            seen.update((item.run_id, item) for item in page.runs)
            token = page.next_page_token
            if not token:
                break
        states: dict[str, State] = {key: item.state for key, item in seen.items()}
        deadline_watches: list[ChannelWatch] = [w for w in watches.active() if w.after is not None]
        now = clock.now()
        told_cpu, told = timed_call(watches.told_late, args.cycles)
        first_seen_cpu, first_seen = timed_call(watches.first_seen, args.cycles)
        scan_cpu, late = timed_call(lambda: find_late(deadline_watches, seen, states, first_seen, told, now),
                                    args.cycles)
        check(not late, "find_late found late runs in the steady state")
        print(f"[2] the parts of the deadline watches' work, each timed alone (median of {args.cycles}): "
              f"told_late() {told_cpu:.3f} CPU s ({len(told)} rows; the sweeper reads it again only when another "
              f"writer recorded late runs or a watch was set again), first_seen() {first_seen_cpu:.3f} CPU s "
              f"({len(first_seen)} rows), find_late() {scan_cpu:.3f} CPU s ({pairs} (watch, run) pairs)", flush=True)

        # 3. Steady-state sweeps in which runs newly pass a deadline.
        events: list[Sweep] = []
        for c, cycle in enumerate(layout.events, start=1):
            clock.advance(layout.step)
            newly = {(ids[k], run_id(i)) for k, i in cycle}
            reference = layout.late(layout.now + c * layout.step, ids)
            check(reference - expected == newly and expected <= reference,
                  f"event cycle {c}: the plan is wrong ({len(reference - expected)} newly late by the reference)")
            mark, calls = last_outbox_id(store), len(wes.task_calls)
            sweep = timed(watcher, wes)
            sweep.describe()
            queued = queued_since(store, mark)
            told = watches.told_late()
            check(told == reference, f"event cycle {c}: told of {len(told - expected)} new pairs, "
                                     f"expected {len(newly)}")
            check(sweep.stats.queued == len(newly) == len(queued)
                  and {(int(key.split(":")[1]), key.split(":")[-1]) for _, key, _, _, _ in queued} == newly,
                  f"event cycle {c}: queued {sweep.stats.queued} ({len(queued)} rows), expected {len(newly)} "
                  f"single alerts")
            check(all(kind == "notification" and "*Tasks:* " in str(payload["blocks"]) and channel == channel_of[
                int(key.split(":")[1])] for _, key, kind, channel, payload in queued),
                  f"event cycle {c}: an alert without its task progress, or in the wrong channel")
            check(len(wes.task_calls) - calls == len(newly), f"event cycle {c}: task lists read "
                                                            f"{len(wes.task_calls) - calls}, expected {len(newly)}")
            expected = reference
            events.append(sweep)
        closing = timed(watcher, wes)
        check(closing.stats.queued == 0, "the sweep after the event cycles queued more")
        event_cpu = median_of(events, lambda s: s.cpu)
        print(f"[3] steady state, {args.events} runs newly past a deadline each sweep (clock +{layout.step} s; "
              f"{args.events} single alerts with task progress, each checked): {summary(events)}; "
              f"{event_cpu - steady_cpu:+.3f} CPU s over a quiet steady-state sweep "
              f"({(event_cpu - steady_cpu) / args.events * 1e3:.2f} ms per alert), "
              f"{event_cpu / base_cpu:.1f}x the baseline; {len(expected)} late pairs recorded at the end")
        print(f"benchmark took {time.perf_counter() - began:.0f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
