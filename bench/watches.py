"""The channel-wide watches' benchmark. Run from the project root: `.venv/bin/python -m bench.watches` (about a
minute).

10,000 runs RUNNING on a fake WES (pages of at most 1,000), tagged project=p0..p99 (100 runs each); no run
subscriptions, only channel-wide watches (``/wes watch failed``), swept by ``Watcher.sweep_watches()``.
Measured, in one run:

1. Sweeps outside the loop: the first one (it stores the 10,000 states, and activates the watches), quiet ones
   (nothing changed) and, against a server that ignores ``page_size`` (all 10,000 runs in one answer), quiet
   ones again. Wall time, CPU seconds of the watcher, WES requests (``SweepStats.requests``, cross-checked with
   the requests the fake WES received).
2. Two scenarios in which 300 runs fail (EXECUTOR_ERROR), each run by the watcher's own loop as ``Watcher.run()``
   turns it (``Watcher.step()`` in the main thread, posting in the sender thread) on the real clock:
   a. spread: 100 channels, each watching ``failed tag project=pK``; 3 runs of each project fail, so each
      channel sees 3 ends in the sweep, fewer than a digest takes (``digest_after``, 5): 300 single-run
      notifications, each end confirmed with GET /runs/{id};
   b. burst: one channel watching ``failed`` (no tag) and 300 other runs fail: one digest.
   The runs fail in the fake right after a sweep has read them as RUNNING, so each waits a full poll period
   before the watcher sees it: the worst case. Reported: the sweep that sees them (time, CPU, requests), the
   delay from the flip in the fake WES to the message that names the run reaching the fake Slack (median, p95,
   and its breakdown), lost and duplicate notifications, and the peak RSS of the watcher's process.

A run counts as notified in a channel when a single-run notification ("Run <id> ended ...") or a digest naming
`<id>` reached the fake Slack there; a duplicate is a run named twice in one channel. A digest names at most
``MAX_DIGEST_LINES`` runs and ends with "…and N more": runs only in that count are reported apart (they are
lost by the definition above, but the count tells the channel they failed).

The fakes run in a separate process (bench.watcher's), so CPU time and RSS are the watcher's alone. Everything
is on 127.0.0.1. The poll period is 5 s here (WESBOT_POLL_SECONDS defaults to 30) so the run stays short; the
delay goal scales with it. The machines are shared and noisy: compare figures measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from bench.stats import percentile
from bench.watcher import BOT_TOKEN, Fakes, _kind, rss_mb, verdict
from wesbot.slack.poster import SlackPoster
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore
from wesbot.watcher import DeliverStats, SweepStats, Watcher, WatcherSettings
from wesbot.wes.client import WesClient

# tests.fakes and bench.run are imported in the fakes' process only (see bench.watcher).

BURST_CHANNEL = "CBURST"


# -- the fakes' process ----------------------------------------------------------------------------


def _serve_fakes(conn: Connection) -> None:
    """FakeWes and FakeSlack, driven by commands over ``conn``: each answered with (True, value) or (False, error)."""
    import json
    import re

    from bench.stats import machine
    from tests.fakes.fake_slack import FakeSlack
    from tests.fakes.fake_wes import FakeWes

    digest_text = re.compile(r"^\d+ runs (failed|ended)$")
    named = re.compile(r"`(run-\d+)`")
    more = re.compile(r"…and (\d+) more")

    class TimedSlack(FakeSlack):
        """FakeSlack that notes when each notification or digest arrived, and the runs it names."""

        def __init__(self) -> None:
            super().__init__(bot_token=BOT_TOKEN)
            # (kind, channel, time received, run ids named, runs only counted in "…and N more")
            self.received: list[tuple[str, str, float, list[str], int]] = []

        def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
            answer = super()._post_message(args)
            received = time.time()
            if not answer.get("ok"):
                return answer
            text, channel = str(args.get("text", "")), str(args.get("channel"))
            if text.startswith("Run ") and " ended " in text:  # "Run <id> ended <state>"
                self.received.append(("notification", channel, received, [text.split()[1]], 0))
            elif digest_text.match(text):
                blocks = args.get("blocks") or []
                blob = json.dumps(json.loads(blocks) if isinstance(blocks, str) else blocks, ensure_ascii=False)
                counted = more.search(blob)
                self.received.append(("digest", channel, received, named.findall(blob),
                                      int(counted.group(1)) if counted else 0))
            else:
                self.received.append(("other", channel, received, [], 0))
            return answer

    wes = FakeWes(validate=False)
    slack = TimedSlack()
    wes.start()
    slack.start()
    counted = 0
    kinds: Counter[str] = Counter()
    try:
        while True:
            command, *args = conn.recv()
            try:
                value: Any = None
                if command == "setup":  # runs, page size, projects: run i is tagged project=p{i // per}
                    runs, page_size, projects = args
                    wes.max_page_size = page_size
                    per = -(-runs // projects)
                    for project in range(projects):
                        count = max(0, min(per, runs - project * per))
                        wes.many_runs(count, states=("RUNNING",), prefix="run", tags={"project": f"p{project}"})
                    value = (wes.url, slack.api_url, machine())
                elif command == "fail":  # [run id] -> {run id: time of the flip}
                    value = {}
                    for run_id in args[0]:
                        end_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                        wes.set_state(run_id, "EXECUTOR_ERROR", exit_code=1, end_time=end_time)
                        value[run_id] = time.time()
                elif command == "ignore_paging":
                    wes.ignore_paging = bool(args[0])
                elif command == "requests":  # requests the fake WES received so far, by endpoint
                    paths = wes.request_paths()
                    kinds.update(_kind(path) for path in paths[counted:])
                    counted = len(paths)
                    value = dict(kinds)
                elif command == "received":  # the messages received from index args[0] on
                    value = list(slack.received[args[0]:])
                elif command == "accounted":  # runs named or counted by the messages from index args[0] on
                    value = sum(len(ids) + extra for _, _, _, ids, extra in slack.received[args[0]:])
                elif command == "slack_calls":  # (method, ok) -> count
                    value = Counter((call["method"], bool((call["response"] or {}).get("ok")))
                                    for call in slack.calls)
                elif command == "stop":
                    conn.send((True, None))
                    return
                else:
                    raise ValueError(f"unknown command {command!r}")
                conn.send((True, value))
            except Exception:
                conn.send((False, traceback.format_exc()))
    finally:
        slack.stop()
        wes.stop()


# -- the watcher's process -------------------------------------------------------------------------


def listen_overflows() -> int | None:
    """Linux's count of connections dropped because a listen queue was full (the fakes listen with a backlog of
    5): each costs the client a SYN retransmit, 1 s. None where /proc/net/netstat is not there."""
    try:
        with open("/proc/net/netstat", encoding="ascii") as handle:
            lines = [line.split() for line in handle if line.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1], strict=True))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


@dataclass(frozen=True)
class Sweep:
    started: float  # time.time()
    seconds: float
    cpu: float
    stats: SweepStats
    seen: Counter[str]  # requests the fake WES received during the sweep, by endpoint

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    def describe(self) -> str:
        seen = sum(self.seen.values())
        by_kind = ", ".join(f"{count} {kind}" for kind, count in sorted(self.seen.items()))
        check = "" if seen == self.stats.requests else " MISMATCH"
        return (f"{self.seconds:.2f} s wall, {self.cpu:.2f} CPU s, {self.stats.requests} WES requests "
                f"(fake WES received {seen}: {by_kind or 'none'}{check}), {self.stats.listed} listed")


def timed_sweep(sweep: Callable[[], SweepStats], fakes: Fakes) -> Sweep:
    before = fakes.requests()
    started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    stats = sweep()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Sweep(started, wall, cpu, stats, fakes.requests() - before)


def summary(values: list[float], unit: str = "s") -> str:
    return (f"median {statistics.median(values):.2f} {unit} "
            f"({len(values)}: {', '.join(f'{v:.2f}' for v in values)})")


@dataclass
class Phase:
    name: str
    expected: dict[str, str]  # run id -> the channel that must be told
    first_message: int  # index of the fake Slack's first message of this phase
    flips: dict[str, float] = field(default_factory=dict)  # run id -> when the fake WES was told it failed
    sweeps: list[Sweep] = field(default_factory=list)
    delivered: list[tuple[float, float, DeliverStats]] = field(default_factory=list)  # (wall, CPU s, stats)
    steps: int = 0
    overflows: int | None = None  # listen queue overflows during the loop (see listen_overflows)
    cpu: float = 0.0  # of the whole loop
    peak_rss: float = 0.0  # MB, at its end


def run_phase(watcher: Watcher, store: WatchStore, fakes: Fakes, phase: Phase, timeout: float) -> Phase:
    """The watcher's loop, as ``Watcher.run()`` turns it (``step(deliver=False)`` here, posting in the sender
    thread): its first sweep is the baseline (the watches are active already), the runs fail in the fake WES right
    after it. It goes on until every run is accounted for at the fake Slack, nothing is left to post, and one more
    sweep has run (for any duplicate)."""
    sweep_watches, deliver = watcher.sweep_watches, watcher.deliver

    def recorded_sweep() -> SweepStats:
        phase.sweeps.append(timed_sweep(sweep_watches, fakes))
        if not phase.flips:
            phase.flips = fakes.call("fail", list(phase.expected))
        return phase.sweeps[-1].stats

    def recorded_deliver(*, limit: int = 200) -> DeliverStats:
        wall, cpu = time.perf_counter(), time.process_time()
        stats = deliver(limit=limit)
        phase.delivered.append((time.perf_counter() - wall, time.process_time() - cpu, stats))
        return stats

    watcher.sweep_watches = recorded_sweep  # type: ignore[method-assign]
    watcher.deliver = recorded_deliver  # type: ignore[method-assign]
    cpu, overflows = time.process_time(), listen_overflows()
    deadline = time.monotonic() + timeout
    drained: float | None = None  # time.time() when everything was accounted for
    # As in Watcher.run() (and bench.watcher): sweeping in this thread, posting in the sender thread.
    sender = threading.Thread(target=watcher.send_forever, name="bench-sender", daemon=True)
    sender.start()
    while time.monotonic() < deadline:
        wait = watcher.step(deliver=False)
        phase.steps += 1
        if phase.flips and drained is None:
            if (fakes.call("accounted", phase.first_message) >= len(phase.expected)
                    and not store.outbox.pending_count()):
                drained = time.time()
        elif drained is not None and any(s.started > drained for s in phase.sweeps):
            break
        if watcher.wake.wait(min(wait, 1.0)):
            watcher.wake.clear()
    watcher.stop.set()
    sender.join(5)
    watcher.stop.clear()
    phase.cpu = time.process_time() - cpu
    after = listen_overflows()
    phase.overflows = None if overflows is None or after is None else after - overflows
    phase.peak_rss = rss_mb()
    watcher.sweep_watches, watcher.deliver = sweep_watches, deliver  # type: ignore[method-assign]
    return phase


def report_phase(phase: Phase, fakes: Fakes, poll: float, pace: float) -> None:
    print(f"[{phase.name}] {phase.steps} loop steps, {len(phase.sweeps)} sweeps, the whole loop used "
          f"{phase.cpu:.2f} CPU s")
    baseline = phase.sweeps[0]
    print(f"  baseline sweep (quiet): {baseline.describe()}")
    end = next((s for s in phase.sweeps[1:] if s.stats.confirmed), None)
    if end is None:
        print(f"  the sweep that sees the {len(phase.flips)} failures never came MISSED")
        return
    stats = end.stats
    print(f"  sweep that sees the {len(phase.flips)} failures: {end.describe()}; {len(stats.confirmed)} ends "
          f"confirmed, {stats.queued} messages queued, {stats.digests} digests (goal: < 5 s) "
          f"{verdict(end.seconds < 5)}")
    later = [s for s in phase.sweeps if s.started > end.started and (s.stats.confirmed or s.stats.queued)]
    if later:
        print(f"  ({len(later)} later sweeps confirmed or queued more: "
              f"{sum(len(s.stats.confirmed) for s in later)} confirmed, {sum(s.stats.queued for s in later)} queued)")

    messages = fakes.call("received", phase.first_message)
    calls = fakes.call("slack_calls")
    refused = sum(n for (_method, ok), n in calls.items() if not ok)
    kinds = Counter(kind for kind, *_ in messages)
    last = max((received for _, _, received, _, _ in messages), default=end.ended)
    print(f"  delivery: {kinds['notification']} notifications, {kinds['digest']} digests, {kinds['other']} other "
          f"messages reached the fake Slack ({refused} Slack calls refused in all); the last "
          f"{last - end.ended:.3f} s after the sweep's end; deliver() ran {len(phase.delivered)} times, "
          f"{sum(d[0] for d in phase.delivered):.3f} s wall, {sum(d[1] for d in phase.delivered):.3f} CPU s in all; "
          f"TCP listen queue overflows on this machine meanwhile: "
          f"{'unknown' if phase.overflows is None else phase.overflows} (each a 1 s SYN retransmit)")

    named: Counter[tuple[str, str]] = Counter()
    first: dict[str, float] = {}
    only_counted = 0
    for kind, channel, received, ids, extra in messages:
        for run_id in ids:
            named[(run_id, channel)] += 1
            if phase.expected.get(run_id) == channel:
                first.setdefault(run_id, received)
        if kind == "digest":
            only_counted += extra
            print(f"  digest in {channel}: names {len(ids)} runs, counts {extra} more, "
                  f"{received - end.ended:.3f} s after the sweep's end")
    delays = [first[run_id] - flipped for run_id, flipped in phase.flips.items() if run_id in first]
    if delays:
        p95, goal = percentile(delays, 95), poll + 2
        after = [first[run_id] - end.ended for run_id in phase.flips if run_id in first]
        waited = [end.started - flipped for flipped in phase.flips.values()]
        print(f"  notification delay, run failed in the fake WES -> the message naming it at the fake Slack "
              f"({len(delays)} runs): median {statistics.median(delays):.2f} s, p95 {p95:.2f} s, "
              f"max {max(delays):.2f} s (goal: p95 < poll {poll:g} s + 2 s = {goal:g} s) {verdict(p95 < goal)}")
        print(f"    = waiting for the next sweep {statistics.median(waited):.2f} s (failed right after a sweep: the "
              f"worst case) + the sweep {end.seconds:.2f} s + from its end to Slack: median "
              f"{statistics.median(after):.2f} s, p95 {percentile(after, 95):.2f} s, max {max(after):.2f} s")
        if kinds["notification"] > len(set(phase.expected.values())):  # several per channel: paced
            places: dict[int, list[float]] = {}
            place: Counter[str] = Counter()
            for _, channel, received, _, _ in sorted(messages, key=lambda m: m[2]):
                place[channel] += 1
                places.setdefault(place[channel], []).append(received - end.ended)
            print(f"    from the sweep's end to Slack by the message's place in its channel (pace_seconds="
                  f"{pace:g} per channel): " + "; ".join(
                      f"#{n} ({len(v)}): median {statistics.median(v):.2f} s, max {max(v):.2f} s"
                      for n, v in sorted(places.items())))
    lost = sum(1 for run_id, channel in phase.expected.items() if (run_id, channel) not in named)
    duplicates = sum(n - 1 for n in named.values() if n > 1)
    unexpected = sum(n for (run_id, channel), n in named.items() if phase.expected.get(run_id) != channel)
    counted_note = (f"; {only_counted} of the lost are in a digest's \"…and N more\" count, so "
                    f"{max(lost - only_counted, 0)} are lost by the count") if only_counted else ""
    print(f"  lost notifications {lost}{counted_note}, duplicates {duplicates}, runs named where not expected "
          f"{unexpected} (goal: 0, 0, 0) {verdict(lost == duplicates == unexpected == 0)}")
    print(f"  peak RSS so far: {phase.peak_rss:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=100, help="tags project=p0..; a watching channel each")
    parser.add_argument("--failures", type=int, default=300, help="runs that fail, in each scenario")
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument("--page-size", type=int, default=1000, help="the fake WES's max page size, and the sweep's")
    parser.add_argument("--quiet-sweeps", type=int, default=3, help="of each kind (paged, one page)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the notifications")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    poll = args.poll_seconds
    began = time.perf_counter()

    fakes = Fakes(_serve_fakes)
    workdir = tempfile.mkdtemp(prefix="wesbot-bench-")
    try:
        wes_url, slack_api_url, machine_line = fakes.call("setup", args.runs, args.page_size, args.projects)
        print(f"machine: {machine_line}", flush=True)
        store = WatchStore(os.path.join(workdir, "bench.db"))
        watches = WatchesStore(store)
        wes = WesClient(wes_url)
        poster = SlackPoster(BOT_TOKEN, slack_api_url)
        settings = WatcherSettings(poll_seconds=poll, sweep_page_size=args.page_size)
        watcher = Watcher(store, wes, poster, host=wes.host, settings=settings, watches=watches)
        per = -(-args.runs // args.projects)
        channel_of_project = [f"C{k:05d}" for k in range(args.projects)]
        now = time.time()
        for k, channel in enumerate(channel_of_project):
            watches.add(channel_id=channel, kind="failed", tag_key="project", tag_value=f"p{k}", user_id="U00001",
                        now=now)
        setup_rss = rss_mb()
        print(f"setup: {args.runs} runs RUNNING on the fake WES (pages of at most {args.page_size}), tagged "
              f"project=p0..p{args.projects - 1} ({per} each); {args.projects} channels each watching "
              f"`failed tag project=pK`; poll_seconds={poll:g} for this benchmark (WESBOT_POLL_SECONDS defaults "
              f"to 30), digest_after={settings.digest_after}; RSS {setup_rss:.0f} MB", flush=True)

        # 1. Sweeps outside the loop.
        first = timed_sweep(watcher.sweep_watches, fakes)
        print(f"first sweep (stores {first.stats.listed} states, activates the watches): {first.describe()}",
              flush=True)
        quiet = [timed_sweep(watcher.sweep_watches, fakes) for _ in range(args.quiet_sweeps)]
        slowest = max(quiet, key=lambda s: s.seconds)
        print(f"quiet sweep, pages of {args.page_size}: wall {summary([s.seconds for s in quiet])}, CPU "
              f"{summary([s.cpu for s in quiet])}; slowest: {slowest.describe()} (goal: < 5 s) "
              f"{verdict(slowest.seconds < 5)}", flush=True)
        fakes.call("ignore_paging", True)
        one_page = [timed_sweep(watcher.sweep_watches, fakes) for _ in range(args.quiet_sweeps)]
        fakes.call("ignore_paging", False)
        slowest = max(one_page, key=lambda s: s.seconds)
        print(f"quiet sweep, server ignores page_size (all {args.runs} runs in one answer): wall "
              f"{summary([s.seconds for s in one_page])}, CPU {summary([s.cpu for s in one_page])}; slowest: "
              f"{slowest.describe()} (goal: < 5 s) {verdict(slowest.seconds < 5)}", flush=True)
        print(f"RSS after the quiet sweeps: {rss_mb():.0f} MB", flush=True)

        # 2a. Spread: 3 failures per project, each channel gets single-run notifications.
        rng = random.Random(args.seed)
        base, extra = divmod(args.failures, args.projects)
        spread: dict[str, str] = {}
        for k, channel in enumerate(channel_of_project):
            indexes = range(k * per, min((k + 1) * per, args.runs))
            for i in rng.sample(indexes, min(base + (k < extra), len(indexes))):
                spread[f"run-{i:06d}"] = channel
        phase_a = Phase("a: spread, 100 tag watches", expected=spread,
                        first_message=len(fakes.call("received", 0)))
        report_phase(run_phase(watcher, store, fakes, phase_a, args.timeout), fakes, poll, settings.pace_seconds)

        # 2b. Burst: one untagged watch, 300 other runs fail in one sweep: one digest.
        for k, channel in enumerate(channel_of_project):
            watches.remove(channel_id=channel, kind="failed", tag_key="project", tag_value=f"p{k}")
        watches.add(channel_id=BURST_CHANNEL, kind="failed", tag_key="", tag_value="", user_id="U00001",
                    now=time.time())
        activation = timed_sweep(watcher.sweep_watches, fakes)
        print(f"sweep that activates the burst watch (quiet): {activation.describe()}", flush=True)
        others = [i for i in range(args.runs) if f"run-{i:06d}" not in spread]
        burst = {f"run-{i:06d}": BURST_CHANNEL for i in rng.sample(others, args.failures)}
        phase_b = Phase("b: burst, one untagged watch", expected=burst,
                        first_message=len(fakes.call("received", 0)))
        report_phase(run_phase(watcher, store, fakes, phase_b, args.timeout), fakes, poll, settings.pace_seconds)

        peak = rss_mb()
        print(f"peak RSS of the watcher's process: {peak:.0f} MB (after setup: {setup_rss:.0f} MB) "
              f"(goal: < 150 MB) {verdict(peak < 150)}")
        print(f"benchmark took {time.perf_counter() - began:.0f} s")
        wes.close()
    finally:
        fakes.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
