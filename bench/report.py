"""The report's benchmark. Run from the project root: `.venv/bin/python -m bench.report` (a few seconds).

`/wes report 24h` over a server whose list holds 10,000 runs that ended in the window (3% failed) and 500 still
running, on an in-process fake WES (``tests.fakes.watching.StubWes``: pages of 1,000, start and end times listed
as WES 1.1 does): reading the window (``wesbot.report.read_report``) and rendering it (``report_message``), timed
apart, a few times each. Also the same list without end times (a WES 1.0 server), where the report reads a
bounded number of runs one by one. The WES requests made are counted and checked: one per page, plus the five
latest failures' run logs (on the 1.0 server, the 50 runs read for their end time instead). The fake runs in
the process, so its share (building the run summaries) is in the figures; compare the ratios measured in one run.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from bench.stats import machine
from tests.fakes.watching import StubWes
from wesbot.report import MAX_REASONS, MAX_UNDATED_READS, read_report
from wesbot.slack.blocks import check_limits
from wesbot.slack.report_view import report_message

NOW = 1_800_000_000.0
ENDED = 10_000
ACTIVE = 500
REPEAT = 5


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fake(with_end_times: bool) -> StubWes:
    wes = StubWes(page=1000)
    for i in range(ENDED):
        run_id = f"done-{i:05d}"
        wes.states[run_id] = "EXECUTOR_ERROR" if i % 33 == 0 else "COMPLETE"
        end = NOW - (i * 8.6) - 1
        wes.start_times[run_id] = iso(end - 60 - (i % 500) * 30)
        if with_end_times:
            wes.end_times[run_id] = iso(end)
    for i in range(ACTIVE):
        wes.states[f"going-{i:04d}"] = "RUNNING"
        wes.start_times[f"going-{i:04d}"] = iso(NOW - i * 60)
    return wes


def measure(with_end_times: bool) -> tuple[float, float, int, int]:
    reads, renders = [], []
    requests = 0
    for _ in range(REPEAT):
        wes = fake(with_end_times)
        started = time.perf_counter()
        report = read_report(wes, None, window=86400.0, now=NOW)
        reads.append(time.perf_counter() - started)
        requests = wes.list_calls + len(wes.run_calls)
        started = time.perf_counter()
        message = report_message(report, host="wes.bench")
        renders.append(time.perf_counter() - started)
        assert check_limits(message) == [], check_limits(message)
        counted = sum(report.ended.values())
        if with_end_times:
            assert counted == ENDED and report.active_count == ACTIVE, (counted, report.active_count)
            assert requests == (ENDED + ACTIVE) // 1000 + 1 + MAX_REASONS, requests
        else:
            # The runs read one by one are dated by the fake's run log (long ago): none is counted, all are said.
            assert requests == (ENDED + ACTIVE) // 1000 + 1 + MAX_UNDATED_READS, requests
            assert report.undated == ENDED - MAX_UNDATED_READS and counted == 0, (report.undated, counted)
    return statistics.median(reads), statistics.median(renders), requests, counted


def main() -> None:
    print(f"machine: {machine()}")
    for label, with_end in (("WES 1.1 (end_time listed)", True), ("WES 1.0 (no end_time in the list)", False)):
        read, render, requests, counted = measure(with_end)
        print(f"{label}: {ENDED:,} ended + {ACTIVE} active runs listed; reading the window {read:.3f} s, rendering "
              f"{render * 1000:.1f} ms (median of {REPEAT}); {requests} WES requests; {counted:,} counted")


if __name__ == "__main__":
    main()
