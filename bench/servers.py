"""The several-servers benchmark. Run from the project root: `.venv/bin/python -m bench.servers` (about a minute).

20 WES servers, each a FakeWes with 500 runs RUNNING, watched by one wesbot process: the parts are built by
``wesbot.assemble.build_servers`` (one client, log reader, scoped store and watcher per server, one SQLite file,
one shared Slack poster) and run by ``Fleet`` (each ``Watcher.run()`` in its own thread, its own sender thread),
as ``wesbot serve`` runs them, on the real clock. Each server's runs are watched in its own 100 channels
(5 runs each) of one fake Slack; their cards are already posted. Two phases, in one run:

1. healthy: after each server's second full cycle, 100 of its runs end in its fake WES (one per channel, half
   COMPLETE, half EXECUTOR_ERROR), right after that cycle read them as RUNNING, so each waits about a full poll
   period before its watcher sees it: the worst case. The watchers start together and keep the same period,
   so their cycles stay aligned and all 2,000 ends are seen in the same few seconds: the worst case again.
2. one hanging: a fresh database and fresh fakes, the same again, but the first server answers nothing for the
   whole phase (every request sleeps an hour); its runs do not end. Only the other 19 servers are measured.

Reported for each phase: the cycle time (one server's ``Watcher.tick()``, median over servers and cycles; the
quiet cycles and the end cycles apart), the CPU seconds of the watcher's process during the phase, the WES
requests per cycle (``TickStats.wes_requests``, cross-checked with what the fake servers received), the delay from
a run's end in its fake WES to its notification reaching the fake Slack (median, p95), lost, duplicate and
mislabelled notifications (a notification is known by its run id, unique across servers, and must name its
server as "NAME (host)"). The verdict: the 19 healthy servers' p95 delay in phase 2 is at most 10% above the p95
of all 20 servers in phase 1 (faster is no failure: the question is whether a hanging server slows the others).

The 20 fake WES servers and the fake Slack run in one separate process (a fresh one per phase), so CPU time is
the watcher's alone; both processes share the machine's cores. Everything is on 127.0.0.1. The poll period is
5 s here (WESBOT_POLL_SECONDS defaults to 30) and the WES timeout 5 s (WESBOT_WES_TIMEOUT defaults to 15), so
the run stays short; the delays scale with the poll period. The delay is the poll period plus the time the
2,000 ends take to be read, recorded and posted, which the watcher's process bounds: its CPU (one core at
most, the GIL) and the one SQLite write lock the 20 watchers share. The machines are shared and noisy: the
verdict compares two phases measured in the same run, yet from one run to the next the ratio moved by up to
about 10% on a 2-core machine (0.89 to 1.04 in six runs), so a FAIL near 1.10 calls for a second run.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from bench.stats import machine, percentile
from bench.watcher import BOT_TOKEN, DAY, FAKE_START, Fakes, choose_ended, rss_mb
from wesbot.assemble import ServerParts, build_servers
from wesbot.config import Settings
from wesbot.servers import ServerConfig
from wesbot.slack.poster import SlackPoster
from wesbot.watcher import TickStats
from wesbot.watcher.loop import WATCHER_JOIN_SECONDS, Fleet, Watcher

HANG_SECONDS = 3600.0

# -- the fakes' process ----------------------------------------------------------------------------


def _label_of(args: dict[str, Any]) -> str:
    """The server a notification names: its blocks' last context says "WES server: NAME (host)"."""
    blocks = args.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in reversed(blocks):
        if block.get("type") != "context":
            continue
        for element in block.get("elements") or []:
            text = str(element.get("text", ""))
            if "WES server: " in text:
                return text.rsplit("WES server: ", 1)[1].strip()
    return ""


def _serve_fakes(conn: Connection) -> None:
    """20 FakeWes and one FakeSlack, driven by commands over ``conn``: each answered (True, value) or (False, error)."""
    from tests.fakes.fake_slack import FakeSlack
    from tests.fakes.fake_wes import FakeWes

    class TimedSlack(FakeSlack):
        """FakeSlack that notes when each end-of-run notification arrived, and which server it names."""

        def __init__(self) -> None:
            super().__init__(bot_token=BOT_TOKEN)
            self.ended: list[tuple[str, str, float]] = []  # (run id, server label, time received)

        def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
            answer = super()._post_message(args)
            text = str(args.get("text", ""))
            if answer.get("ok") and " ended " in text:  # "Run <id> ended <STATE> <@U...>"
                self.ended.append((text.split()[1], _label_of(args), time.time()))
            return answer

    servers: dict[str, FakeWes] = {}
    slack = TimedSlack()
    slack.start()

    def setup(names: list[str], runs: int, page_size: int) -> tuple[dict[str, str], str]:
        for name in names:
            wes = servers[name] = FakeWes(validate=False, max_page_size=page_size)
            wes.many_runs(runs, states=("RUNNING",), prefix=f"{name}-run")
            wes.start()
        return {name: wes.url for name, wes in servers.items()}, slack.api_url

    def cards(channels: list[str], first: int) -> list[str]:
        """A card message in each channel of the list (ts unique over all calls); their ts."""
        stamps = []
        for index, channel in enumerate(channels, start=first):
            ts = f"1600000000.{index:06d}"  # FakeSlack's own ts start at the current time
            slack.messages[ts] = {"type": "message", "text": "card", "ts": ts, "channel": channel}
            stamps.append(ts)
        return stamps

    def end(name: str, ends: list[tuple[str, str]]) -> dict[str, float]:
        """End runs of one server: {run id: time of the flip}."""
        flipped = {}
        for run_id, state in ends:
            end_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            servers[name].set_state(run_id, state, exit_code=0 if state == "COMPLETE" else 1, end_time=end_time)
            flipped[run_id] = time.time()
        return flipped

    def hang(name: str, seconds: float) -> None:
        servers[name].delay_seconds = seconds

    commands: dict[str, Callable[..., Any]] = {
        "setup": setup,
        "cards": cards,
        "end": end,
        "hang": hang,
        "requests": lambda: {name: len(wes.requests) for name, wes in servers.items()},
        "notified": lambda: len(slack.ended),
        "notifications": lambda: list(slack.ended),
        "slack_calls": lambda: Counter((call["method"], bool((call["response"] or {}).get("ok")))
                                       for call in slack.calls),
    }
    try:
        while True:
            command, *args = conn.recv()
            if command == "stop":
                conn.send((True, None))
                return
            try:
                conn.send((True, commands[command](*args)))
            except Exception:
                conn.send((False, traceback.format_exc()))
    finally:
        slack.stop()
        for wes in servers.values():
            wes.stop()


# -- the watcher's process -------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    server: str
    started: float  # time.time()
    seconds: float
    stats: TickStats


class Recorder:
    """Wraps each watcher's tick: every cycle is recorded, and handed to the main thread as it finishes."""

    def __init__(self) -> None:
        self.cycles: list[Cycle] = []
        self.finished: queue.SimpleQueue[Cycle] = queue.SimpleQueue()
        self._lock = threading.Lock()

    def wrap(self, watcher: Watcher) -> None:
        tick, server = watcher.tick, str(watcher.server)

        def recorded_tick() -> TickStats:
            started, wall = time.time(), time.perf_counter()
            stats = tick()
            cycle = Cycle(server, started, time.perf_counter() - wall, stats)
            with self._lock:
                self.cycles.append(cycle)
            self.finished.put(cycle)
            return stats

        watcher.tick = recorded_tick  # type: ignore[method-assign]

    def of(self, servers: set[str], *, complete: bool = True) -> list[Cycle]:
        """The cycles of these servers; ``complete``: only those that ran to their end (not cut by stop)."""
        with self._lock:
            return [c for c in self.cycles if c.server in servers and not (complete and c.stats.stopped)]


@dataclass
class Phase:
    title: str
    servers: list[str]  # the measured ones
    hanging: str | None
    hosts: dict[str, str]  # server -> its client's host, as messages name it
    plan: dict[str, list[tuple[str, str]]]  # server -> [(run id, state)] to end
    flips: dict[str, float] = field(default_factory=dict)  # run id -> when it ended in its fake WES
    cycles: list[Cycle] = field(default_factory=list)
    every_cycle: list[Cycle] = field(default_factory=list)  # those cut short by stop too
    hanging_cycles: list[Cycle] = field(default_factory=list)  # the hanging server's, cut short or not
    cpu: float = 0.0
    wall: float = 0.0
    burst_started: tuple[float, float] | None = None  # (CPU, wall) when the first runs ended
    burst: tuple[float, float] | None = None  # (CPU, wall) from then until everything was posted
    received: dict[str, int] = field(default_factory=dict)  # requests each fake WES received in the phase
    notifications: list[tuple[str, str, float]] = field(default_factory=list)
    slack_calls: Counter[tuple[str, bool]] = field(default_factory=Counter)
    timed_out: bool = False


def server_names(count: int) -> list[str]:
    return [f"wes{i + 1:02d}" for i in range(count)]


def channel_of(server_index: int, run_index: int, channels: int) -> str:
    return f"C{server_index:02d}{run_index % channels:04d}"


def populate(parts: list[ServerParts], fakes: Fakes, runs: int, channels: int) -> None:
    """A subscription per run of each server (run i in that server's channel i % channels), its card posted."""
    now = time.time()
    first = 0
    for s, part in enumerate(parts):
        store, name = part.store, part.config.name
        where = [channel_of(s, i, channels) for i in range(runs)]
        subscriptions = [
            store.subscriptions.subscribe(run_id=f"{name}-run-{i:06d}", channel_id=where[i],
                                          user_id=f"U{s:02d}{i % channels:04d}", now=now, expires_at=now + 14 * DAY,
                                          state="RUNNING", workflow="echo.cwl", start_time=FAKE_START).subscription
            for i in range(runs)
        ]
        for sub, ts in zip(subscriptions, fakes.call("cards", where, first), strict=True):
            store.subscriptions.set_card(sub.id, ts=ts, version=sub.card_version)
        first += runs


def plan_ends(names: list[str], runs: int, channels: int, ended: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """Each server's ``ended`` runs, one per channel as far as they go, half COMPLETE, half EXECUTOR_ERROR."""
    return {name: [(f"{name}-run-{i:06d}", "COMPLETE" if n % 2 == 0 else "EXECUTOR_ERROR")
                   for n, i in enumerate(choose_ended(runs, channels, ended, seed + s))]
            for s, name in enumerate(names)}


def drained(parts: list[ServerParts]) -> bool:
    return all(not p.store.outbox.pending_count() and not p.store.subscriptions.cards_to_sync(limit=1)
               for p in parts)


def drive(phase: Phase, recorder: Recorder, fakes: Fakes, parts: list[ServerParts], *, runs: int, warmup: int,
          timeout: float) -> None:
    """While the fleet runs: end each server's runs right after its ``warmup``-th full cycle, then wait until
    every notification is in and nothing is left to post (and 2 s more, for any duplicate)."""
    pending = dict(phase.plan)
    full: Counter[str] = Counter()  # full quiet cycles seen, by server
    expected = sum(len(ends) for ends in phase.plan.values())
    measured = [p for p in parts if p.config.name in phase.servers]
    deadline = time.monotonic() + timeout
    done_at: float | None = None
    while time.monotonic() < deadline:
        try:
            cycle: Cycle | None = recorder.finished.get(timeout=0.2)
        except queue.Empty:
            cycle = None
        if cycle is not None and cycle.server in pending and not cycle.stats.stopped \
                and cycle.stats.due == runs and not cycle.stats.ended:
            full[cycle.server] += 1
            if full[cycle.server] >= warmup:
                phase.burst_started = phase.burst_started or (time.process_time(), time.perf_counter())
                phase.flips.update(fakes.call("end", cycle.server, pending.pop(cycle.server)))
                deadline = max(deadline, time.monotonic() + timeout)
        if pending:
            continue
        if done_at is None:
            if fakes.call("notified") >= expected and drained(measured):
                done_at = time.monotonic()
                if phase.burst_started is not None:
                    cpu, wall = phase.burst_started
                    phase.burst = (time.process_time() - cpu, time.perf_counter() - wall)
        elif time.monotonic() - done_at > 2.0:
            return
    phase.timed_out = True


def run_phase(title: str, args: argparse.Namespace, workdir: str, *, hanging: str | None) -> Phase:
    """One phase on fresh fakes and a fresh database: build the servers' parts as ``wesbot serve`` does, run
    them in a Fleet, end the runs, collect what happened."""
    names = server_names(args.servers)
    fakes = Fakes(_serve_fakes)
    try:
        urls, slack_api_url = fakes.call("setup", names, args.runs, args.page_size)
        settings = Settings(
            wes_url=urls[names[0]], db_path=os.path.join(workdir, f"{title.split()[0]}.db"),
            wes_timeout=args.wes_timeout, poll_seconds=args.poll_seconds,
            servers=tuple(ServerConfig(name=name, url=urls[name], poll_seconds=args.poll_seconds) for name in names))
        stop = threading.Event()
        with ExitStack() as resources:
            poster = resources.enter_context(SlackPoster(BOT_TOKEN, slack_api_url))
            parts = build_servers(settings, poster, stop, resources)
            started = time.perf_counter()
            populate(parts, fakes, args.runs, args.channels)
            print(f"{title}: {len(names)} fake WES servers with {args.runs} runs RUNNING each, "
                  f"{len(names) * args.runs} subscriptions in {len(names) * args.channels} channels with their "
                  f"cards, in {time.perf_counter() - started:.1f} s", flush=True)
            measured = [name for name in names if name != hanging]
            phase = Phase(title, measured, hanging, {p.config.name: p.wes.host for p in parts},
                          plan_ends(measured, args.runs, args.channels, args.ended, args.seed))
            if hanging is not None:
                fakes.call("hang", hanging, HANG_SECONDS)
            run_fleet(phase, parts, fakes, stop, args)
            phase.notifications = fakes.call("notifications")
            phase.slack_calls = fakes.call("slack_calls")
            # The clients are closed only once no worker is left in a request: stopping the fakes cuts the
            # hanging server's answers short, and then its workers see ``stop`` and end.
            fakes.close()
            wait_for_workers(args.wes_timeout + 2)
    finally:
        fakes.close()
    return phase


def wait_for_workers(seconds: float) -> None:
    """Wait (at most ``seconds``) for the watchers' worker threads that were still in a request at the stop."""
    deadline = time.monotonic() + seconds
    for thread in threading.enumerate():
        if thread.name.startswith("wesbot-worker-"):
            thread.join(max(0.0, deadline - time.monotonic()))


def run_fleet(phase: Phase, parts: list[ServerParts], fakes: Fakes, stop: threading.Event,
              args: argparse.Namespace) -> None:
    recorder = Recorder()
    watchers = [p.watcher for p in parts if p.watcher is not None]
    for watcher in watchers:
        recorder.wrap(watcher)
    before = fakes.call("requests")
    fleet = Fleet(watchers, stop)
    cpu, wall = time.process_time(), time.perf_counter()
    fleet.start()
    try:
        drive(phase, recorder, fakes, parts, runs=args.runs, warmup=2,
              timeout=2 * args.poll_seconds + args.timeout)
    finally:
        stop.set()
        fleet.join(WATCHER_JOIN_SECONDS + 3)
    phase.cpu, phase.wall = time.process_time() - cpu, time.perf_counter() - wall
    after = fakes.call("requests")
    phase.received = {name: after[name] - before.get(name, 0) for name in after}
    phase.cycles = recorder.of(set(phase.servers))
    phase.every_cycle = recorder.of(set(phase.servers), complete=False)
    phase.hanging_cycles = recorder.of({phase.hanging} if phase.hanging else set(), complete=False)


# -- the report ------------------------------------------------------------------------------------


@dataclass
class Delays:
    delays: list[float]
    lost: int
    duplicates: int
    unexpected: int  # notifications of runs that did not end
    mislabelled: int  # naming another server than the run's

    @property
    def median(self) -> float:
        return statistics.median(self.delays) if self.delays else float("nan")

    @property
    def p95(self) -> float:
        return percentile(self.delays, 95) if self.delays else float("nan")


def delays(phase: Phase, servers: set[str] | None = None) -> Delays:
    """The notification delays of the runs that ended on ``servers`` (default: the phase's measured ones)."""
    servers = set(phase.servers) if servers is None else servers
    server_of = {run_id: name for name, ends in phase.plan.items() for run_id, _ in ends}
    first: dict[str, float] = {}
    count: Counter[str] = Counter()
    mislabelled = 0
    for run_id, label, received in phase.notifications:
        server = run_id.split("-run-", 1)[0]
        count[run_id] += 1
        first.setdefault(run_id, received)
        mislabelled += label != f"{server} ({phase.hosts.get(server)})"
    ended = {run_id: flipped for run_id, flipped in phase.flips.items() if server_of[run_id] in servers}
    return Delays(
        delays=[first[run_id] - flipped for run_id, flipped in ended.items() if run_id in first],
        lost=sum(1 for run_id in ended if run_id not in first),
        duplicates=sum(n - 1 for run_id, n in count.items() if n > 1),
        unexpected=sum(n for run_id, n in count.items() if run_id not in phase.flips),
        mislabelled=mislabelled,
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def phase_rows(phase: Phase, runs: int) -> dict[str, str]:
    """The table's column for one phase."""
    quiet = [c for c in phase.cycles if not c.stats.ended and c.stats.due == runs]
    ends = [c for c in phase.cycles if c.stats.ended]
    counted = Counter[str]()
    for cycle in phase.every_cycle:
        counted[cycle.server] += cycle.stats.wes_requests
    mismatched = [name for name in phase.servers if counted[name] != phase.received.get(name, 0)]
    received = sum(phase.received.get(name, 0) for name in phase.servers)
    found = delays(phase)
    return {
        "servers measured": f"{len(phase.servers)}",
        "cycles (full quiet / with ends)": f"{len(quiet)} / {len(ends)}",
        "cycle time, median (s)": f"{_median([c.seconds for c in phase.cycles]):.3f}",
        "quiet cycle, median / max (s)": f"{_median([c.seconds for c in quiet]):.3f} / "
                                         f"{max((c.seconds for c in quiet), default=float('nan')):.3f}",
        "end cycle, median / max (s)": f"{_median([c.seconds for c in ends]):.3f} / "
                                       f"{max((c.seconds for c in ends), default=float('nan')):.3f}",
        "CPU s of the watcher's process": f"{phase.cpu:.2f} in {phase.wall:.1f} s wall "
                                          f"({100 * phase.cpu / max(phase.wall, 1e-9):.0f}% of a core)",
        "  from the first end to all posted": "n/a" if phase.burst is None else
                                              f"{phase.burst[0]:.2f} in {phase.burst[1]:.1f} s wall "
                                              f"({100 * phase.burst[0] / max(phase.burst[1], 1e-9):.0f}% of a core)",
        "WES requests / quiet cycle, median": f"{_median([c.stats.wes_requests for c in quiet]):g}",
        "WES requests / end cycle, median": f"{_median([c.stats.wes_requests for c in ends]):g}",
        "WES requests received (check)": f"{received}" + (f" MISMATCH {mismatched}" if mismatched else " = counted"),
        "notifications (of runs ended)": f"{len(found.delays)} of {len(found.delays) + found.lost}",
        "delay median (s)": f"{found.median:.2f}",
        "delay p95 (s)": f"{found.p95:.2f}",
        "delay max (s)": f"{max(found.delays, default=float('nan')):.2f}",
        "lost / duplicates / unexpected": f"{found.lost} / {found.duplicates} / {found.unexpected}",
        "mislabelled (wrong server named)": f"{found.mislabelled}",
    }


def print_table(phases: list[Phase], runs: int) -> None:
    columns = [phase_rows(phase, runs) for phase in phases]
    width = max(len(key) for key in columns[0]) + 2
    cell = max(max(len(value) for value in column.values()) for column in columns) + 2
    cell = max(cell, *(len(phase.title) + 2 for phase in phases))
    print("".ljust(width) + "".join(phase.title.ljust(cell) for phase in phases))
    for key in columns[0]:
        print(key.ljust(width) + "".join(column[key].ljust(cell) for column in columns))


def report_hanging(phase: Phase) -> None:
    if phase.hanging is None:
        return
    complete = sum(not c.stats.stopped for c in phase.hanging_cycles)
    print(f"{phase.title}: the hanging server {phase.hanging} received {phase.received.get(phase.hanging, 0)} "
          f"requests during the phase and answered none; its watcher completed {complete} cycles "
          f"(its first was still waiting for answers when the phase ended)" if not complete else "")


def report(healthy: Phase, hanging: Phase, runs: int, poll: float) -> None:
    print()
    print_table([healthy, hanging], runs)
    report_hanging(hanging)
    for phase in (healthy, hanging):
        if phase.timed_out:
            print(f"{phase.title}: TIMED OUT waiting for the notifications")
        refused = sum(n for (_method, ok), n in phase.slack_calls.items() if not ok)
        print(f"{phase.title}: {phase.slack_calls[('chat.postMessage', True)]} chat.postMessage and "
              f"{phase.slack_calls[('chat.update', True)]} chat.update reached the fake Slack ({refused} refused)")
    base, same = delays(healthy), delays(healthy, set(hanging.servers))
    other = delays(hanging)
    print(f"healthy run, the same {len(hanging.servers)} servers only: delay median {same.median:.2f} s, "
          f"p95 {same.p95:.2f} s (poll period {poll:g} s)")
    ratio = other.p95 / base.p95 if base.delays and other.delays else float("nan")
    clean = all(d.lost == d.duplicates == d.unexpected == d.mislabelled == 0 for d in (base, other))
    ok = ratio <= 1.10 and clean and not healthy.timed_out and not hanging.timed_out
    print(f"p95 of the {len(hanging.servers)} healthy servers within 10% of the healthy run's: "
          f"{'PASS' if ok else 'FAIL'} ({other.p95:.2f} s / {base.p95:.2f} s = {ratio:.3f}"
          f"{'' if clean else '; notifications lost, duplicated or mislabelled'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--runs", type=int, default=500, help="watched runs on each server")
    parser.add_argument("--ended", type=int, default=100, help="runs ending on each server")
    parser.add_argument("--channels", type=int, default=100, help="channels of each server")
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument("--wes-timeout", type=float, default=5.0, help="WESBOT_WES_TIMEOUT for this benchmark")
    parser.add_argument("--page-size", type=int, default=1000, help="the fake servers' max page size")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the notifications")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print(f"machine: {machine()}", flush=True)
    print(f"poll_seconds={args.poll_seconds:g}, WES timeout {args.wes_timeout:g} s for this benchmark "
          "(WESBOT_POLL_SECONDS defaults to 30, WESBOT_WES_TIMEOUT to 15)", flush=True)
    workdir = tempfile.mkdtemp(prefix="wesbot-bench-servers-")
    try:
        healthy = run_phase("healthy", args, workdir, hanging=None)
        hanging = run_phase("one hanging", args, workdir, hanging=server_names(args.servers)[0])
        report(healthy, hanging, args.runs, args.poll_seconds)
        print(f"peak RSS of the watcher's process: {rss_mb():.0f} MB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
