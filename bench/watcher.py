"""The watcher's benchmark. Run from the project root: `.venv/bin/python -m bench.watcher` (about a minute).

10,000 runs RUNNING on a fake WES (pages of at most 1,000), each watched by one subscription, spread over 500
channels of a fake Slack; their cards are already posted. Measured, in one run:

1. Quiet poll cycles (``Watcher.tick()`` over all 10,000 due runs, nothing ended): with the list sweep (GET /runs
   pages), with the sweep off (one status call per run) and against a server that ignores ``page_size`` (all
   10,000 runs in one answer). Wall time, CPU seconds of the watcher, WES requests (``TickStats.wes_requests``,
   cross-checked with the requests the fake WES received).
2. The cycle in which 1,000 runs end (2 per channel, half COMPLETE, half EXECUTOR_ERROR), run by the watcher's
   own loop (``Watcher.step()``, waiting as ``Watcher.run()`` does) on the real clock. The runs are ended in the
   fake right after a cycle has read them all as RUNNING, so each waits about a full poll period before the
   watcher sees it: the worst case. Reported: the delay from the flip in the fake WES to the notification
   reaching the fake Slack (median, p95), lost and duplicate notifications, and the peak RSS of the watcher.

The fake WES and the fake Slack run in a separate process, so CPU time and RSS are the watcher's alone (the
benchmark's own bookkeeping in the watcher's process is a few dicts of 1,000 entries). Everything is on
127.0.0.1. The poll period is 5 s here (WESBOT_POLL_SECONDS defaults to 30) so the run stays short; the
delay goal scales with it. The machines are shared and noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from wesbot.slack.poster import SlackPoster
from wesbot.store.watch import WatchStore
from wesbot.watcher import DeliverStats, TickStats, Watcher, WatcherSettings
from wesbot.wes.client import WesClient

# tests.fakes and bench.run are imported in the fakes' process only (with what they pull in, they would add
# ~20 MB to the RSS measured): the watcher's process holds the watcher and little else.

BOT_TOKEN = "xoxb-test"
DAY = 86400.0
# The start time the fake WES gives its runs (tests.fakes.fake_wes.DEFAULT_TIME, not imported here: see above).
# A subscription records it, as /wes subscribe does from GET /runs/{id}, so each card starts as it will stay.
FAKE_START = "2024-01-01T00:00:00Z"


# -- the fakes' process ----------------------------------------------------------------------------


def _kind(relative_path: str) -> str:
    """The WES endpoint of a request path relative to the base path: list, status, run, tasks or other."""
    parts = relative_path.split("?", 1)[0].strip("/").split("/")
    if parts == ["runs"]:
        return "list"
    if len(parts) == 3 and parts[0] == "runs" and parts[2] == "status":
        return "status"
    if len(parts) == 2 and parts[0] == "runs":
        return "run"
    if len(parts) >= 3 and parts[0] == "runs" and parts[2] == "tasks":
        return "tasks"
    return "other"


def _serve_fakes(conn: Connection) -> None:
    """FakeWes and FakeSlack, driven by commands over ``conn``: each answered with (True, value) or (False, error)."""
    from bench.stats import machine
    from tests.fakes.fake_slack import FakeSlack
    from tests.fakes.fake_wes import FakeWes

    class TimedSlack(FakeSlack):
        """FakeSlack that notes when each end-of-run notification arrived (FakeSlack.calls has no times)."""

        def __init__(self) -> None:
            super().__init__(bot_token=BOT_TOKEN)
            self.ended: list[tuple[str, str, float]] = []  # (run id, channel, time received)
            self.updated: list[float] = []  # when each card update arrived

        def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
            answer = super()._post_message(args)
            text = str(args.get("text", ""))
            if answer.get("ok") and " ended " in text:  # "Run <id> ended <STATE> <@U...>"
                self.ended.append((text.split()[1], str(args.get("channel")), time.time()))
            return answer

        def _update(self, args: dict[str, Any]) -> dict[str, Any]:
            answer = super()._update(args)
            if answer.get("ok"):
                self.updated.append(time.time())
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
                if command == "setup":
                    runs, page_size = args
                    wes.max_page_size = page_size
                    wes.many_runs(runs, states=("RUNNING",), prefix="run")
                    value = (wes.url, slack.api_url, machine())
                elif command == "cards":  # a card message in each channel of the list; their ts
                    value = []
                    for index, channel in enumerate(args[0]):
                        ts = f"1600000000.{index:06d}"  # FakeSlack's own ts start at the current time
                        slack.messages[ts] = {"type": "message", "text": "card", "ts": ts, "channel": channel}
                        value.append(ts)
                elif command == "end":  # [(run id, state)] -> {run id: time of the flip}
                    value = {}
                    for run_id, state in args[0]:
                        end_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                        wes.set_state(run_id, state, exit_code=0 if state == "COMPLETE" else 1, end_time=end_time)
                        value[run_id] = time.time()
                elif command == "ignore_paging":
                    wes.ignore_paging = bool(args[0])
                elif command == "requests":  # requests the fake WES received so far, by endpoint
                    paths = wes.request_paths()
                    kinds.update(_kind(path) for path in paths[counted:])
                    counted = len(paths)
                    value = dict(kinds)
                elif command == "notified":
                    value = len(slack.ended)
                elif command == "notifications":
                    value = (list(slack.ended), list(slack.updated))
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


class Fakes:
    """The fakes' process, seen from the watcher's."""

    def __init__(self, serve: Callable[[Connection], None] | None = None) -> None:
        """``serve``: the function run in the fakes' process (this benchmark's, unless another passes its own)."""
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve or _serve_fakes, args=(child,), name="bench-fakes", daemon=True)
        self._process.start()
        child.close()

    def call(self, *command: Any) -> Any:
        self._conn.send(command)
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"the fakes' process failed:\n{value}")
        return value

    def requests(self) -> Counter[str]:
        return Counter(self.call("requests"))

    def close(self) -> None:
        try:
            self.call("stop")
        except (OSError, EOFError, RuntimeError):
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


# -- the watcher's process -------------------------------------------------------------------------


class BenchClock:
    """The real clock, moved forward by ``advance`` to make every run due again without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass(frozen=True)
class Cycle:
    started: float  # time.time()
    seconds: float
    cpu: float
    stats: TickStats
    seen: Counter[str]  # requests the fake WES received during the cycle, by endpoint

    def describe(self) -> str:
        seen = sum(self.seen.values())
        by_kind = ", ".join(f"{count} {kind}" for kind, count in sorted(self.seen.items()))
        check = "" if seen == self.stats.wes_requests else " MISMATCH"
        return (f"{self.seconds:.2f} s wall, {self.cpu:.2f} CPU s, {self.stats.wes_requests} WES requests "
                f"(fake WES received {seen}: {by_kind or 'none'}{check})")


def timed_tick(tick: Callable[[], TickStats], fakes: Fakes) -> Cycle:
    before = fakes.requests()
    started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    stats = tick()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Cycle(started, wall, cpu, stats, fakes.requests() - before)


def choose_ended(runs: int, channels: int, ended: int, seed: int) -> list[int]:
    """``ended`` run indexes, spread evenly over the channels (run i is watched in channel i % channels)."""
    rng = random.Random(seed)
    per_channel = [rng.sample(range(c, runs, channels), len(range(c, runs, channels))) for c in range(channels)]
    picked: list[int] = []
    for depth in range(max(len(indexes) for indexes in per_channel)):
        picked += [indexes[depth] for indexes in per_channel if depth < len(indexes)]
    return picked[:ended]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


@dataclass
class EndPhase:
    flips: dict[str, float]  # run id -> when the fake WES was told it ended
    ticks: list[Cycle]  # every cycle of the loop: a quiet one, then the one that sees the ends...
    delivered: list[tuple[float, float, DeliverStats]]  # (wall, CPU seconds, stats) of each deliver()
    cpu: float  # of the whole loop
    peak_rss: float  # MB


def populate(store: WatchStore, fakes: Fakes, clock: BenchClock, runs: int, channels: int) -> None:
    """A subscription per run (run i in channel i % channels), with its card already posted."""
    channel_of = [f"C{i % channels:05d}" for i in range(runs)]
    now = clock.now()
    subscriptions = [
        store.subscriptions.subscribe(run_id=f"run-{i:06d}", channel_id=channel_of[i], user_id=f"U{i % channels:05d}",
                                      now=now, expires_at=now + 14 * DAY, state="RUNNING",
                                      workflow="echo.cwl", start_time=FAKE_START).subscription
        for i in range(runs)
    ]
    # The cards are already in the channels: no 10,000 card posts, but chat.update finds them later.
    for sub, ts in zip(subscriptions, fakes.call("cards", channel_of), strict=True):
        store.subscriptions.set_card(sub.id, ts=ts, version=sub.card_version)


def end_phase(watcher: Watcher, store: WatchStore, fakes: Fakes, ends: list[tuple[str, str]],
              timeout: float) -> EndPhase:
    """The watcher's loop, as ``Watcher.run()`` turns it, until every notification is in and nothing is left
    to post; the runs end in the fake WES right after its first cycle."""
    phase = EndPhase(flips={}, ticks=[], delivered=[], cpu=0.0, peak_rss=0.0)
    tick, deliver = watcher.tick, watcher.deliver

    def recorded_tick() -> TickStats:
        phase.ticks.append(timed_tick(tick, fakes))
        return phase.ticks[-1].stats

    def recorded_deliver(*, limit: int = 200) -> DeliverStats:
        wall, cpu = time.perf_counter(), time.process_time()
        stats = deliver(limit=limit)
        phase.delivered.append((time.perf_counter() - wall, time.process_time() - cpu, stats))
        return stats

    watcher.tick = recorded_tick  # type: ignore[method-assign]
    watcher.deliver = recorded_deliver  # type: ignore[method-assign]
    cpu = time.process_time()
    deadline = time.monotonic() + timeout
    drained_at: float | None = None
    # As in Watcher.run(): polling in this thread, posting in the sender thread.
    sender = threading.Thread(target=watcher.send_forever, name="bench-sender", daemon=True)
    sender.start()
    while time.monotonic() < deadline:
        wait = watcher.step(deliver=False)
        if not phase.flips:
            phase.flips = fakes.call("end", ends)
            deadline = time.monotonic() + timeout
        elif drained_at is None:
            drained = not store.outbox.pending_count() and not store.subscriptions.cards_to_sync(limit=1)
            if fakes.call("notified") >= len(ends) and drained:
                drained_at = time.monotonic()
        elif time.monotonic() - drained_at > 2.0:  # a little longer, for any duplicate
            break
        if watcher.wake.wait(min(wait, 1.0)):
            watcher.wake.clear()
    watcher.stop.set()
    sender.join(5)
    watcher.stop.clear()
    phase.cpu = time.process_time() - cpu
    phase.peak_rss = rss_mb()
    watcher.tick, watcher.deliver = tick, deliver  # type: ignore[method-assign]
    return phase


def report_end(phase: EndPhase, fakes: Fakes, runs: int, poll: float) -> None:
    from bench.stats import percentile

    quiet = phase.ticks[0]
    print(f"quiet cycle, sweep, in the watcher's loop: {quiet.describe()} "
          f"(goal: < 10 s) {verdict(quiet.seconds < 10)}")
    ended = len(phase.flips)
    end = next((cycle for cycle in phase.ticks[1:] if cycle.stats.ended), None)
    if end is None:
        print(f"cycle in which {ended} runs end: it never came MISSED")
        return
    print(f"cycle in which {ended} of {runs} runs end: {end.describe()}; {end.stats.ended} ended, "
          f"{end.stats.swept} settled from the list, {end.stats.polled} polled "
          f"(goal: < 10 s) {verdict(end.seconds < 10)}")
    later = sum(cycle.stats.ended for cycle in phase.ticks if cycle.started > end.started)
    if later:
        print(f"  ({later} more ends were seen in later cycles)")

    notifications, updates = fakes.call("notifications")
    first: dict[str, float] = {}
    count: Counter[str] = Counter()
    for run_id, _channel, received in notifications:
        count[run_id] += 1
        first.setdefault(run_id, received)
    calls = fakes.call("slack_calls")
    refused = sum(n for (_method, ok), n in calls.items() if not ok)
    seen_at = end.started + end.seconds
    print(f"delivery: {calls[('chat.postMessage', True)]} chat.postMessage and {calls[('chat.update', True)]} "
          f"chat.update reached the fake Slack ({refused} refused); the last notification "
          f"{max(first.values(), default=seen_at) - seen_at:.2f} s and the last card update "
          f"{max(updates, default=seen_at) - seen_at:.2f} s after the end cycle; deliver() ran "
          f"{len(phase.delivered)} times, {sum(d[0] for d in phase.delivered):.2f} s wall, "
          f"{sum(d[1] for d in phase.delivered):.2f} CPU s in all; the whole loop used {phase.cpu:.2f} CPU s")
    delays = [first[run_id] - flipped for run_id, flipped in phase.flips.items() if run_id in first]
    if delays:
        p95, goal = percentile(delays, 95), poll + 2
        after = [first[run_id] - seen_at for run_id in phase.flips if run_id in first]
        waited = statistics.median(end.started - flipped for flipped in phase.flips.values())
        print(f"notification delay, run ended in the fake WES -> its notification at the fake Slack: "
              f"median {statistics.median(delays):.2f} s, p95 {p95:.2f} s, max {max(delays):.2f} s "
              f"(goal: p95 < poll {poll:g} s + 2 s = {goal:g} s) {verdict(p95 < goal)}")
        print(f"  = waiting for the next cycle {waited:.2f} s (the runs ended right after a cycle: the worst case) "
              f"+ the end cycle {end.seconds:.2f} s + from its end to Slack: median {statistics.median(after):.2f} s, "
              f"p95 {percentile(after, 95):.2f} s, max {max(after):.2f} s")
    lost = sum(1 for run_id in phase.flips if run_id not in first)
    duplicates = sum(n - 1 for n in count.values() if n > 1)
    unexpected = sum(n for run_id, n in count.items() if run_id not in phase.flips)
    print(f"lost notifications {lost}, duplicates {duplicates}, for runs that did not end {unexpected} "
          f"(goal: 0, 0, 0) {verdict(lost == duplicates == unexpected == 0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--ended", type=int, default=1_000)
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument("--page-size", type=int, default=1000, help="the fake WES's max page size, and the sweep's")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the notifications")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    poll = args.poll_seconds

    fakes = Fakes()
    workdir = tempfile.mkdtemp(prefix="wesbot-bench-")
    try:
        wes_url, slack_api_url, machine_line = fakes.call("setup", args.runs, args.page_size)
        print(f"machine: {machine_line}", flush=True)
        clock = BenchClock()
        store = WatchStore(os.path.join(workdir, "bench.db"))
        wes = WesClient(wes_url)
        poster = SlackPoster(BOT_TOKEN, slack_api_url)
        settings = WatcherSettings(poll_seconds=poll, sweep_page_size=args.page_size)
        watcher = Watcher(store, wes, poster, host=wes.host, settings=settings, clock=clock)
        per_run = Watcher(store, wes, poster, host=wes.host, clock=clock,
                          settings=replace(settings, sweep_min_runs=10**9))

        started = time.perf_counter()
        populate(store, fakes, clock, args.runs, args.channels)
        setup_rss = rss_mb()
        print(f"setup: {args.runs} runs RUNNING on the fake WES (pages of at most {args.page_size}), "
              f"{args.runs} subscriptions in {args.channels} channels with their cards, "
              f"in {time.perf_counter() - started:.1f} s; poll_seconds={poll:g} for this benchmark "
              "(WESBOT_POLL_SECONDS defaults to 30)", flush=True)

        # 1. Quiet cycles: every run due, nothing ended. The clock jumps a poll period between them.
        sweep = timed_tick(watcher.tick, fakes)
        print(f"quiet cycle, sweep (GET /runs pages): {sweep.describe()} "
              f"(goal: < 10 s) {verdict(sweep.seconds < 10)}", flush=True)
        clock.advance(poll)
        status = timed_tick(per_run.tick, fakes)
        print(f"quiet cycle, sweep off (a status call per run): {status.describe()} "
              f"(goal: < 10 s) {verdict(status.seconds < 10)}", flush=True)
        print(f"sweep vs a status call per run: {status.seconds / sweep.seconds:.1f}x faster, "
              f"{status.cpu / max(sweep.cpu, 1e-9):.1f}x less CPU, "
              f"{status.stats.wes_requests / max(sweep.stats.wes_requests, 1):.0f}x fewer requests", flush=True)
        clock.advance(poll)
        fakes.call("ignore_paging", True)
        one_page = timed_tick(watcher.tick, fakes)
        fakes.call("ignore_paging", False)
        print(f"quiet cycle, server ignores page_size (all {args.runs} runs in one answer): {one_page.describe()} "
              f"(goal: < 10 s) {verdict(one_page.seconds < 10)}", flush=True)
        clock.advance(poll)

        # 2. The watcher's loop on the real clock: a quiet cycle, then 1,000 runs end at once.
        picked = choose_ended(args.runs, args.channels, args.ended, args.seed)
        ends = [(f"run-{i:06d}", "COMPLETE" if n % 2 == 0 else "EXECUTOR_ERROR") for n, i in enumerate(picked)]
        phase = end_phase(watcher, store, fakes, ends, args.timeout)
        report_end(phase, fakes, args.runs, poll)
        print(f"peak RSS of the watcher's process: {phase.peak_rss:.0f} MB (after setup: {setup_rss:.0f} MB) "
              f"(goal: < 150 MB) {verdict(phase.peak_rss < 150)}")
        wes.close()
    finally:
        fakes.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
