"""The task timeline (wesbot.timeline): one bar per task coloured by its outcome, grouped by name beyond
``max_bars``, the stretches where one task ran alone, tasks without a start time listed; a valid PNG whatever
WES sent. The pictures are read back with matplotlib and the bars counted by their exact colours."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from matplotlib.image import imread

from wesbot.timeline import COLOURS, MAX_HEIGHT_PX, WIDTH_PX, Timeline, alone_stretches, draw_timeline, group_name
from wesbot.wes.models import Log

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A row of pixels belongs to a bar of a colour when it holds at least this many pixels of exactly that colour
# (a legend swatch or a glyph holds fewer; the bars of these tests are a few hundred pixels wide).
BAR_ROW_PIXELS = 40


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def epoch(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


def task(name: str, start: float | None, end: float | None = None, exit_code: int | None = 0) -> Log:
    return Log(name=name, id=name, start_time=None if start is None else at(start),
               end_time=None if end is None else at(end), exit_code=exit_code)


def draw(tasks: list[Log], *, run_end: float | None = None, terminal: bool = False, now: float = 3600,
         max_bars: int = 60) -> Timeline:
    return draw_timeline(tasks, run_id="run-1", run_start=at(0), run_end=None if run_end is None else at(run_end),
                         run_terminal=terminal, now=epoch(now), max_bars=max_bars)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk (the first chunk, right after the signature)."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def colour_rows(png: bytes, colour: str) -> np.ndarray:
    """How many pixels of exactly ``colour`` each row of the picture holds."""
    image = imread(io.BytesIO(png))
    rgb = np.rint(image[..., :3] * 255).astype(int)
    wanted = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    counts: np.ndarray = (rgb == wanted).all(axis=-1).sum(axis=1)
    return counts


def bars_of(png: bytes, colour: str) -> int:
    """How many bars of ``colour`` the picture shows: the vertical runs of rows that belong to such a bar."""
    rows = colour_rows(png, colour) >= BAR_ROW_PIXELS
    return int(np.count_nonzero(rows[1:] & ~rows[:-1]) + rows[0])


def widest(png: bytes, colour: str) -> int:
    return int(colour_rows(png, colour).max())


# -- the stretches where one task ran alone ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("intervals", "alone"),
    [
        ([], []),
        ([(0, 10)], [(0, 10)]),  # one task: all of it alone
        ([(0, 10), (5, 15)], [(0, 5), (10, 15)]),  # overlapping: each alone before and after the other
        ([(0, 5), (10, 15)], [(0, 5), (10, 15)]),  # disjoint: both alone, nothing in the gap
        ([(0, 20), (5, 10)], [(0, 5), (10, 20)]),  # nested: the outer alone around the inner
        ([(0, 10), (5, 20), (30, 40)], [(0, 5), (10, 20), (30, 40)]),  # three, with a gap
        ([(0, 5), (5, 10)], [(0, 10)]),  # touching: they never overlap, the stretches merge
        ([(5, 15), (0, 10)], [(0, 5), (10, 15)]),  # in any order
        ([(0, 10), (0, 10)], []),  # two at once all along: never alone
        ([(0, 10), (2, 4), (6, 8)], [(0, 2), (4, 6), (8, 10)]),
        ([(3, 3)], []),  # a task of no time covers nothing
        ([(10, 0)], []),  # nor a reversed one
    ],
)
def test_alone_stretches(intervals: list[tuple[float, float]], alone: list[tuple[float, float]]) -> None:
    assert alone_stretches(intervals) == alone


# -- the name a task is grouped under ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("align_12", "align"),
        ("align.3", "align"),
        ("align[4]", "align"),
        ("align (7)", "align"),
        ("wf.align.3", "wf.align"),  # Cromwell: workflow.call.shard
        ("bwa_mem_7", "bwa_mem"),
        ("align_1_2", "align"),  # nested scatters
        ("ALIGN (sample_1)", "ALIGN"),  # Nextflow: process (tag)
        ("merge", "merge"),
        ("sample2", "sample2"),  # no separator: part of the name
        ("align_v2", "align_v2"),
        ("shard-3", "shard-3"),
        ("f(x)", "f(x)"),
        ("_1", "_1"),  # nothing but an index: the name stays
        ("12", "12"),
        ("", ""),
    ],
)
def test_group_name(name: str, group: str) -> None:
    assert group_name(name) == group


# -- the picture --------------------------------------------------------------------------------------------


def test_the_png_is_valid_and_as_big_as_it_says() -> None:
    timeline = draw([task("fetch", 0, 300), task("align", 300, 1800)])
    assert png_size(timeline.png) == (timeline.width, timeline.height)
    assert timeline.width == WIDTH_PX
    assert imread(io.BytesIO(timeline.png)).shape[:2] == (timeline.height, timeline.width)


def test_one_bar_per_task_coloured_by_its_outcome() -> None:
    tasks = [task("fetch", 0, 600), task("align_1", 600, 2400), task("align_2", 700, 2000),
             task("align_3", 800, 2600, exit_code=1),  # failed
             task("merge", 2600, None, exit_code=None)]  # running: drawn up to now
    timeline = draw(tasks, now=3600)
    assert (timeline.bars, timeline.grouped, timeline.hidden) == (5, False, 0)
    assert bars_of(timeline.png, COLOURS["ok"]) == 3
    assert bars_of(timeline.png, COLOURS["failed"]) == 1
    assert bars_of(timeline.png, COLOURS["running"]) == 1


def test_the_outcome_is_the_one_definition_of_wesbot_outcome() -> None:
    # -1 is what servers report while a task runs: running while the run runs, and a real exit code (failed)
    # once the run has ended; null is never a failure.
    running = draw([task("a", 0, None, exit_code=-1)], now=3600)
    assert bars_of(running.png, COLOURS["running"]) == 1 and bars_of(running.png, COLOURS["failed"]) == 0
    ended = draw([task("a", 0, None, exit_code=-1)], run_end=3600, terminal=True)
    assert bars_of(ended.png, COLOURS["failed"]) == 1 and bars_of(ended.png, COLOURS["running"]) == 0
    unknown = draw([task("a", 0, None, exit_code=None)], run_end=3600, terminal=True)
    assert bars_of(unknown.png, COLOURS["ok"]) == 1
    # A real non-zero exit code without an end time: the process exited, failed.
    assert bars_of(draw([task("a", 0, None, exit_code=137)]).png, COLOURS["failed"]) == 1


def test_a_running_task_is_drawn_up_to_now() -> None:
    timeline = draw([task("done", 0, 1800), task("busy", 0, None, exit_code=None)], now=1800)
    assert abs(widest(timeline.png, COLOURS["running"]) - widest(timeline.png, COLOURS["ok"])) <= 2


def test_a_task_without_an_end_in_an_ended_run_ends_with_the_run() -> None:
    with_run_end = draw([task("ref", 0, 3600), task("lost", 0, None)], run_end=3600, terminal=True)
    assert bars_of(with_run_end.png, COLOURS["ok"]) == 2
    assert widest(with_run_end.png, COLOURS["ok"]) > 500  # both bars span the run
    # Without a run end, it ends where it started: a sliver, still drawn.
    alone = draw([task("lost", 0, None)], terminal=True)
    assert alone.bars == 1 and 0 < widest(alone.png, COLOURS["ok"]) < BAR_ROW_PIXELS


def test_the_height_grows_with_the_bars_and_is_capped() -> None:
    few = draw([task(f"t{i}", i * 10, i * 10 + 100) for i in range(3)])
    many = draw([task(f"t{i}", i * 10, i * 10 + 100) for i in range(40)])
    assert few.height < many.height <= MAX_HEIGHT_PX
    huge = draw([task(f"t{i}", i * 10, i * 10 + 100) for i in range(150)], max_bars=150)
    assert (huge.bars, huge.grouped) == (150, False)
    assert png_size(huge.png) == (WIDTH_PX, MAX_HEIGHT_PX)


# -- more tasks than bars: groups --------------------------------------------------------------------------


def test_a_thousand_shards_are_one_bar() -> None:
    tasks = [task(f"align_{i}", i, i + 600) for i in range(1, 1000)] + [task("merge", 1700, 1800)]
    timeline = draw(tasks)
    assert (timeline.grouped, timeline.bars, timeline.hidden) == (True, 2, 0)
    assert bars_of(timeline.png, COLOURS["ok"]) == 2


def test_a_group_is_failed_if_any_failed_else_running_if_any_runs() -> None:
    tasks = [task("align_1", 0, 600), task("align_2", 0, None, exit_code=None),
             task("call_1", 0, 600), task("call_2", 0, 600, exit_code=1),
             task("sort_1", 0, 600), task("sort_2", 0, 600)]
    timeline = draw(tasks, now=900, max_bars=3)
    assert (timeline.grouped, timeline.bars) == (True, 3)
    assert [bars_of(timeline.png, COLOURS[o]) for o in ("ok", "failed", "running")] == [1, 1, 1]


def test_beyond_max_bars_groups_the_longest_are_kept() -> None:
    tasks = [task(f"long{n}_{i}", 0, 3000 + n) for n in range(4) for i in range(2)]
    tasks += [task("short_1", 0, 60, exit_code=1), task("short_2", 0, 60)]  # the shortest group, failed
    timeline = draw(tasks, max_bars=4)
    assert (timeline.grouped, timeline.bars, timeline.hidden) == (True, 4, 1)
    assert bars_of(timeline.png, COLOURS["ok"]) == 4
    assert bars_of(timeline.png, COLOURS["failed"]) == 0  # the short group is the one not shown


# -- what cannot be drawn, and what WES should not have sent -----------------------------------------------


def test_tasks_without_a_start_time_are_listed_not_drawn() -> None:
    tasks = [task("fetch", 0, 600), task("queued", None), task("broken", None, 600)]
    tasks.append(Log(name="garbled", start_time="yesterday-ish", end_time=at(600)))
    timeline = draw(tasks)
    assert timeline.bars == 1
    assert (timeline.untimed, timeline.untimed_more) == (["queued", "broken", "garbled"], 0)


def test_only_the_first_ten_untimed_tasks_are_listed() -> None:
    timeline = draw([task(f"wait{i}", None) for i in range(25)])
    assert timeline.untimed == [f"wait{i}" for i in range(10)] and timeline.untimed_more == 15


def test_no_task_with_a_start_time_is_still_a_picture() -> None:
    for tasks in ([], [task("queued", None), task("queued too", None)]):
        timeline = draw(tasks)
        assert timeline.bars == 0 and not timeline.grouped
        assert png_size(timeline.png) == (timeline.width, timeline.height)
        assert all(bars_of(timeline.png, colour) == 0 for colour in COLOURS.values())


HOSTILE = ["evil\nname\r\nwith lines", "<!channel> @here", "x" * 500, "$\\frac{1}{$ mathtext $x^2$",
           "\x1b[31mred\x1b[0m \x07 \u202eRTL", "中文 名前 😀 \U0010fffd \U0001d5a0 \uf000", "", "   ", "\x00"]


def test_hostile_names_are_cleaned_and_shortened() -> None:
    # Drawn (one bar each, labels on the axis), listed (no start time), and in the title: none raises,
    # none warns (warnings are errors in the tests: a glyph the font lacks would warn).
    drawn = [task(name, i * 60, i * 60 + 600) for i, name in enumerate(HOSTILE)]
    untimed = [Log(name=name) for name in HOSTILE[:5]]
    timeline = draw_timeline(drawn + untimed, run_id="\n<!channel>" + "r" * 300, run_start=at(0), run_end=None,
                             run_terminal=False, now=epoch(3600), title="$x$ \x1b]0;owned\x07 title\n")
    assert timeline.bars == len(HOSTILE)
    assert png_size(timeline.png) == (timeline.width, timeline.height)
    assert len(timeline.untimed) == 5
    for name in timeline.untimed:
        assert len(name) <= 40 and not any(ch in name for ch in "\n\r\x1b\x07\u202e")
    assert timeline.untimed[0] == "evil name with lines" and timeline.untimed[2] == "x" * 39 + "…"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_run_ids_and_titles_are_drawn(text: str) -> None:
    for title in (None, text):
        timeline = draw_timeline([task("fine", 0, 600)], run_id=text, run_start=at(0), run_end=at(600),
                                 run_terminal=True, now=epoch(600), title=title)
        assert png_size(timeline.png) == (timeline.width, timeline.height)


def test_hostile_names_are_grouped_too() -> None:
    tasks = [task(name + f"_{i}", i, i + 600) for name in HOSTILE for i in range(20)]
    timeline = draw(tasks)
    assert timeline.grouped and 0 < timeline.bars <= 60


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "nan", "-1e308", "2026-13-45"])
def test_extreme_times_never_raise(value: str) -> None:
    tasks = [task("fine", 0, 600), Log(name="odd", start_time=value, end_time=value),
             Log(name="odd end", start_time=at(10), end_time=value)]
    timeline = draw_timeline(tasks, run_id="r", run_start=value, run_end=value, run_terminal=True, now=epoch(0))
    assert png_size(timeline.png) == (timeline.width, timeline.height) and timeline.bars >= 1


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, wesbot.timeline; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
