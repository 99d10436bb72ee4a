"""The task timeline's cost. Run from the project root: `.venv/bin/python -m bench.timeline` (a few seconds).

Times `wesbot.timeline.draw_timeline` (parsing the times, grouping, drawing with matplotlib's Agg canvas and
encoding the PNG) for synthetic runs of 10, 100, 1,000 and 5,000 tasks spread over a few hours: scattered
steps named `step_N` (so beyond 60 tasks they are drawn one bar per step), about 3% failed and the last
tasks still running. Also 1,000 tasks whose names are all distinct (60 bars of 1,000 groups: the largest
picture the default draws). Each case is drawn a few times; the median is reported.

The first drawing of a process imports matplotlib and loads its font: it is timed on its own, first.
The goal: 1,000 tasks in under 2 s on a slow 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.stats import machine
from wesbot.timeline import Timeline, draw_timeline
from wesbot.wes.models import Log

GOAL_SECONDS = 2.0
GOAL_TASKS = 1000
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HOURS = 4
STEPS = ("fetch", "fastqc", "trim", "align", "sort", "dedup", "call", "annotate")


def synthetic_tasks(count: int, *, distinct: bool = False) -> list[Log]:
    """``count`` tasks over :data:`HOURS` hours: each step's shards start in turn and last 5 to 35 minutes;
    one in 31 failed, the last 5% are still running (no end, no exit code)."""
    tasks = []
    for i in range(count):
        start = T0 + timedelta(seconds=i * HOURS * 3600 * 0.8 / max(count, 1))
        running = i >= count * 0.95
        end = None if running else start + timedelta(minutes=5 + (i * 7) % 30)
        name = f"task{i}" if distinct else f"{STEPS[i * len(STEPS) // max(count, 1)]}_{i}"
        tasks.append(Log(name=name, id=str(i), start_time=start.isoformat(),
                         end_time=end.isoformat() if end else None,
                         exit_code=None if running else (1 if i % 31 == 30 else 0)))
    return tasks


def draw(tasks: list[Log]) -> Timeline:
    now = (T0 + timedelta(hours=HOURS)).timestamp()
    return draw_timeline(tasks, run_id="bench-run", run_start=T0.isoformat(), run_end=None, run_terminal=False,
                         now=now)


def timed(tasks: list[Log], repeat: int) -> tuple[float, Timeline]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        timeline = draw(tasks)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    started = time.perf_counter()
    draw(synthetic_tasks(10))
    print(f"first drawing (imports matplotlib, loads the font), 10 tasks: {time.perf_counter() - started:.3f} s")

    cases = [(10, False), (100, False), (1000, False), (5000, False), (1000, True)]
    verdict = None
    for count, distinct in cases:
        seconds, timeline = timed(synthetic_tasks(count, distinct=distinct), args.repeat)
        shape = f"{timeline.bars} bars{' (grouped)' if timeline.grouped else ''}"
        if timeline.hidden:
            shape += f", {timeline.hidden} groups not shown"
        line = (f"{count:>5} tasks{', distinct names' if distinct else ''}: median {seconds:.3f} s over "
                f"{args.repeat} drawings; {shape}, {timeline.width}x{timeline.height} px, "
                f"{len(timeline.png) / 1024:.0f} KiB")
        if count == GOAL_TASKS:
            passed = seconds < GOAL_SECONDS
            verdict = passed if verdict is None else verdict and passed
            line += f" (goal: < {GOAL_SECONDS:g} s) {'PASS' if passed else 'FAIL'}"
        print(line)
    print(f"{GOAL_TASKS} tasks under {GOAL_SECONDS:g} s: {'PASS' if verdict else 'FAIL'}")


if __name__ == "__main__":
    main()
