"""A run's tasks on a time axis, drawn as a PNG: which task ran when, for how long, and how it ended. Pure.

One horizontal bar per task, from its start to its end (to ``now`` while it runs), coloured by the one
definition of a task's outcome (:mod:`wesbot.outcome`): green finished, red failed, blue running. The name
and the duration are written by each bar; dashed lines mark the run's start and end.

WES gives no task dependencies, so the picture cannot draw the critical path. What it can show is where
the run waited on a single task: the stretches of time during which exactly one task ran alone are
shaded (:func:`alone_stretches`), the likely bottleneck. The models are Nextflow's timeline report
(``-with-timeline``) and Cromwell's timing diagram.

A run with more tasks than ``max_bars`` (a scatter over a thousand samples) is drawn one bar per group
of tasks of the same name (:func:`group_name` drops the shard index: ``align_12`` is ``align``), from the
group's first start to its last end; beyond ``max_bars`` groups, the longest are kept and the title says
how many are not shown. Tasks without a start time cannot be placed: they are listed under the chart.

Every text drawn comes from WES and is untrusted: control characters are removed
(:func:`wesbot.wes.logs.sanitize_text`), ``$`` never starts mathtext, and characters the font has no glyph
for are drawn as ``?``. Drawing uses matplotlib's object API on the Agg canvas (no ``pyplot``, so no
global state: safe in any thread); matplotlib is imported on the first drawing, not with this module.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

from .format import human_duration, parse_time, shorten
from .outcome import task_failed, task_running
from .wes.logs import sanitize_text
from .wes.models import Log

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ALONE_COLOUR", "COLOURS", "Timeline", "alone_stretches", "draw_timeline", "group_name"]

Outcome = Literal["ok", "failed", "running"]

# The bar colours, one per outcome; nothing else in the picture is drawn in exactly these colours.
COLOURS: dict[Outcome, str] = {"ok": "#2e7d32", "failed": "#c62828", "running": "#1565c0"}
# The shading of the stretches where one task ran alone (drawn under the bars, translucent).
ALONE_COLOUR = "#ffb300"
ALONE_ALPHA = 0.25
RUN_LINE_COLOUR = "#424242"
GRID_COLOUR = "#e0e0e0"
FONT = "DejaVu Sans"  # matplotlib's own font: always there

DPI = 100
WIDTH_PX = 1200
MAX_HEIGHT_PX = 2400
BAR_SLOT_IN = 0.3  # the height given to one bar (the bar itself is BAR_HEIGHT of it)
BAR_HEIGHT = 0.6
TOP_IN = 0.8  # title and legend
BOTTOM_IN = 0.6  # the time axis and its label
UNTIMED_LINE_IN = 0.18
# The plot area, as fractions of the width: the task names go left of it (as wide as the longest name needs,
# at about LABEL_CHAR_PX a character), the durations right of the bars.
LEFT_MIN, LEFT_MAX = 0.08, 0.32
LABEL_CHAR_PX = 6.6
NOTE_CHAR_PX = 5.0  # the same guess for the durations' smaller text
RIGHT = 0.98
# Room left after the last bar end for its duration, as a fraction of the time span.
END_ROOM = 0.08

NAME_LIMIT = 40
NAME_READ = 200  # how much of a name is read at all (grouping looks at its end)
MAX_UNTIMED = 10
UNTIMED_WRAP = 180  # characters per line of the untimed list under the chart

# The ideal tick steps of the time axis, in seconds (~8 ticks across the span).
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_TICKS = 8
# A trailing shard or index: align_12, align.3, align[4], align (7); Nextflow's tag: ALIGN (sample_1).
_SHARD = re.compile(r"(?:[_.]\d+|\[\d+\]|\s+\([^()]*\))+\Z")


@dataclass(frozen=True, kw_only=True)
class Timeline:
    """A drawn timeline: the PNG and what was (and was not) drawn in it."""

    png: bytes
    width: int
    height: int
    # How many bars were drawn: one per task, or one per group of tasks when ``grouped``.
    bars: int
    grouped: bool
    # The names (cleaned, shortened) of the tasks without a start time: listed under the chart, not drawn.
    untimed: list[str]
    untimed_more: int
    # How many groups were not drawn (beyond ``max_bars`` groups; the title says so).
    hidden: int


@dataclass(frozen=True, kw_only=True)
class _Span:
    """One timed task: its cleaned name, start and end (epoch seconds), outcome."""

    name: str
    start: float
    end: float
    outcome: Outcome


@dataclass(frozen=True, kw_only=True)
class _Bar:
    label: str
    start: float
    end: float
    outcome: Outcome
    # Written after the duration: how many of a group's tasks failed or still run.
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class _Chart:
    """What is drawn, in seconds since ``origin``."""

    title: str
    bars: list[_Bar]
    alone: list[tuple[float, float]]
    marks: list[tuple[float, str]]
    axis_label: str
    untimed_note: str


# -- the pure parts --------------------------------------------------------------------------------------


def alone_stretches(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The stretches of time covered by exactly one interval, in order; touching stretches are merged.

    A sweep over the sorted endpoints (an end before a start at the same time, so ``(0, 1)`` and ``(1, 2)``
    never overlap). Empty or reversed intervals cover nothing.
    """
    events = sorted([(start, 1) for start, end in intervals if end > start]
                    + [(end, -1) for start, end in intervals if end > start])
    stretches: list[tuple[float, float]] = []
    running = 0
    since = 0.0
    for moment, step in events:
        if running == 1 and moment > since:
            _append_merged(stretches, since, moment)
        running += step
        since = moment
    return stretches


def _append_merged(stretches: list[tuple[float, float]], start: float, end: float) -> None:
    if stretches and stretches[-1][1] == start:
        stretches[-1] = (stretches[-1][0], end)
    else:
        stretches.append((start, end))


def group_name(name: str) -> str:
    """The name of the group a task belongs to: its name without a trailing shard index or tag.

    ``align_12``, ``align.3``, ``align[4]``, ``align (7)`` are ``align``; Nextflow's ``ALIGN (sample_1)`` (a
    process and its tag, after a space) is ``ALIGN``. A name that is nothing but an index stays itself.
    """
    return _SHARD.sub("", name).rstrip() or name


def _clean(text: str, limit: int) -> str:
    """Untrusted text on one line, shortened."""
    return shorten(sanitize_text(text, multiline=False).strip(), limit)


def _task_name(task: Log) -> str:
    """A task's name (or id) made safe, and short enough to group and draw (a hostile name may be huge)."""
    text = sanitize_text((task.name or task.id or "")[: NAME_READ * 5], multiline=False).strip()
    return shorten(text, NAME_READ) or "(unnamed)"


def _outcome(task: Log, run_terminal: bool) -> Outcome:
    if task_failed(task, run_terminal):
        return "failed"
    return "running" if task_running(task, run_terminal) else "ok"


def _epoch(value: str | None) -> float | None:
    moment = parse_time(value)
    return None if moment is None else moment.timestamp()


def _span(task: Log, *, run_end: float | None, run_terminal: bool, now: float) -> _Span | None:
    """Where a task's bar goes; None when it has no start time we can read."""
    start = _epoch(task.start_time)
    if start is None:
        return None
    outcome = _outcome(task, run_terminal)
    end = _epoch(task.end_time)
    if end is None:
        end = now if outcome == "running" or not run_terminal else (run_end if run_end is not None else start)
    if not math.isfinite(end):
        end = start
    return _Span(name=_task_name(task), start=start, end=max(end, start), outcome=outcome)


def _task_bars(spans: list[_Span]) -> list[_Bar]:
    return [_Bar(label=shorten(s.name, NAME_LIMIT), start=s.start, end=s.end, outcome=s.outcome)
            for s in sorted(spans, key=lambda s: s.start)]


def _group_outcome(outcomes: Iterable[Outcome]) -> Outcome:
    seen = set(outcomes)
    return "failed" if "failed" in seen else "running" if "running" in seen else "ok"


def _group_bars(spans: list[_Span], max_bars: int) -> tuple[list[_Bar], int]:
    """One bar per group of tasks (the longest ``max_bars`` groups), and how many groups were left out."""
    groups: dict[str, list[_Span]] = {}
    for span in spans:
        groups.setdefault(group_name(span.name), []).append(span)
    bars = []
    for name, members in groups.items():
        label = shorten(name, NAME_LIMIT) + (f" ×{len(members)}" if len(members) > 1 else "")
        bars.append(_Bar(label=label, start=min(m.start for m in members), end=max(m.end for m in members),
                         outcome=_group_outcome(m.outcome for m in members), note=_group_note(members)))
    kept = sorted(bars, key=lambda b: b.end - b.start, reverse=True)[:max_bars]
    return sorted(kept, key=lambda b: b.start), len(bars) - len(kept)


def _group_note(members: list[_Span]) -> str:
    """``3 failed, 2 running`` of a group of more than one task; "" when all finished."""
    if len(members) == 1:
        return ""
    counts = [(sum(m.outcome == outcome for m in members), outcome) for outcome in ("failed", "running")]
    return ", ".join(f"{count} {outcome}" for count, outcome in counts if count)


def _untimed(tasks: Sequence[Log]) -> tuple[list[str], int]:
    names = [_clean(_task_name(t), NAME_LIMIT) for t in tasks if _epoch(t.start_time) is None]
    return names[:MAX_UNTIMED], max(len(names) - MAX_UNTIMED, 0)


def _untimed_note(untimed: list[str], more: int) -> str:
    if not untimed:
        return ""
    listed = ", ".join(untimed) + (f" and {more} more" if more else "")
    return textwrap.fill(f"Not drawn, no start time: {listed}", UNTIMED_WRAP)


def _title(title: str | None, run_id: str, tasks: int, bars: int, grouped: bool, hidden: int) -> str:
    text = _clean(title, 150) if title else f"Run {_clean(run_id, 80)}: {tasks} task{'' if tasks == 1 else 's'}"
    if grouped:
        text += f", grouped by name into {bars + hidden} groups"
    if hidden:
        text += f"; {hidden} more group{'' if hidden == 1 else 's'} not shown"
    return text


def _tick_step(span: float) -> float:
    """A round step for the time axis: about :data:`_TICKS` ticks over ``span`` seconds."""
    wanted = span / _TICKS
    for step in _TICK_STEPS:
        if step >= wanted:
            return float(step)
    return float(math.ceil(wanted / 86400) * 86400)


def _tick_label(seconds: float) -> str:
    """``human_duration`` without a zero second unit: ``30m``, ``2h``, ``2h 30m``; ``-5m`` before the origin."""
    text = human_duration(abs(seconds))
    for zero in (" 0s", " 00m", " 0h"):
        text = text.removesuffix(zero)
    return "-" + text if seconds < 0 and text != "0s" else text


# -- drawing ---------------------------------------------------------------------------------------------


def draw_timeline(tasks: Sequence[Log], *, run_id: str, run_start: str | None, run_end: str | None,
                  run_terminal: bool, now: float, title: str | None = None, max_bars: int = 60) -> Timeline:
    """The timeline of ``tasks`` as a PNG (see the module's docstring); never raises on what WES sent.

    ``run_start``/``run_end`` are the run's times as WES wrote them (marked when they parse), ``run_terminal``
    whether the run has ended (a task without an end then ended with the run), ``now`` the epoch time the
    running tasks are drawn up to, ``title`` replaces the default one (``Run ID: N tasks``).
    """
    max_bars = max(max_bars, 1)
    start, end = _epoch(run_start), _epoch(run_end)
    spans = [s for t in tasks if (s := _span(t, run_end=end, run_terminal=run_terminal, now=now)) is not None]
    untimed, untimed_more = _untimed(tasks)
    grouped = len(spans) > max_bars
    bars, hidden = _group_bars(spans, max_bars) if grouped else (_task_bars(spans), 0)
    origin = start if start is not None else min((s.start for s in spans), default=0.0)
    chart = _Chart(
        title=_title(title, run_id, len(tasks), len(bars), grouped, hidden),
        bars=[dataclasses.replace(b, start=b.start - origin, end=b.end - origin) for b in bars],
        alone=alone_stretches([(s.start - origin, s.end - origin) for s in spans]),
        marks=[(moment - origin, label) for moment, label in ((start, "run start"), (end, "run end"))
               if moment is not None],
        axis_label="time since the run started" if start is not None else "time since the first task started",
        untimed_note=_untimed_note(untimed, untimed_more),
    )
    png, width, height = _render(chart)
    return Timeline(png=png, width=width, height=height, bars=len(bars), grouped=grouped, untimed=untimed,
                    untimed_more=untimed_more, hidden=hidden)


def _render(chart: _Chart) -> tuple[bytes, int, int]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    note_lines = chart.untimed_note.count("\n") + 1 if chart.untimed_note else 0
    top, bottom = TOP_IN, BOTTOM_IN + note_lines * UNTIMED_LINE_IN
    plot_in = max(len(chart.bars), 3) * BAR_SLOT_IN
    height = min(round((top + bottom + plot_in) * DPI), MAX_HEIGHT_PX)
    fig = Figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    height_in = height / DPI
    fig.text(0.01, 1 - 0.12 / height_in, _drawable(chart.title), va="top", fontsize=11, fontweight="bold",
             family=FONT, parse_math=False)
    if chart.untimed_note:
        fig.text(0.01, 0.08 / height_in, _drawable(chart.untimed_note), va="bottom", fontsize=8, family=FONT,
                 color="#424242", parse_math=False, linespacing=1.3)
    if chart.bars:
        left = _left(chart.bars)
        ax = fig.add_axes((left, bottom / height_in, RIGHT - left, 1 - (top + bottom) / height_in))
        _draw_bars(ax, chart)
        _legend(fig, 1 - 0.42 / height_in)
    else:
        fig.text(0.5, 0.5, "no task has a start time", ha="center", va="center", fontsize=12, family=FONT)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue(), WIDTH_PX, height


def _left(bars: list[_Bar]) -> float:
    """Where the plot area starts: room for the longest label (a fixed guess per character, not a measure)."""
    longest = max(len(b.label) for b in bars)
    return min(max((20 + longest * LABEL_CHAR_PX) / WIDTH_PX, LEFT_MIN), LEFT_MAX)


def _draw_bars(ax: Axes, chart: _Chart) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    bars = chart.bars
    low = min([0.0] + [b.start for b in bars])
    span = max(max([b.end for b in bars] + [x for x, _ in chart.marks]) - low, 1.0)
    ax.set_xlim(low, low + span * (1 + END_ROOM))
    ax.set_ylim(len(bars) - 0.5, -0.5)  # the first task at the top
    if chart.alone:
        ax.broken_barh([(a, b - a) for a, b in chart.alone], (-0.5, len(bars)), facecolors=ALONE_COLOUR,
                       alpha=ALONE_ALPHA, linewidth=0, zorder=0)
    minimum = span / 500  # a task of no time still shows
    for outcome, colour in COLOURS.items():
        rows = [(y, b) for y, b in enumerate(bars) if b.outcome == outcome]
        if rows:
            ax.barh([y for y, _ in rows], [max(b.end - b.start, minimum) for _, b in rows],
                    left=[b.start for _, b in rows], height=BAR_HEIGHT, color=colour, linewidth=0, zorder=2)
    per_px = span * (1 + END_ROOM) / (ax.get_position().width * WIDTH_PX)  # seconds per pixel
    for y, bar in enumerate(bars):
        text = human_duration(bar.end - bar.start) + (f" · {bar.note}" if bar.note else "")
        x, align, colour = _text_place(bar.start, bar.start + max(bar.end - bar.start, minimum),
                                       low + span * (1 + END_ROOM), len(text) * NOTE_CHAR_PX * per_px, 3 * per_px)
        ax.text(x, y, text, ha=align, va="center", fontsize=7, family=FONT, color=colour, parse_math=False, zorder=4)
    ax.set_yticks(range(len(bars)), [_drawable(b.label) for b in bars], fontsize=8, family=FONT, parse_math=False)
    ax.tick_params(axis="y", length=0)
    for x, label in chart.marks:
        ax.axvline(x, color=RUN_LINE_COLOUR, linestyle="--", linewidth=1, zorder=3)
        ax.text(x, 1.0, f" {label}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=7, family=FONT,
                color=RUN_LINE_COLOUR)
    ax.xaxis.set_major_locator(MultipleLocator(_tick_step(span)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _tick_label(x)))
    ax.grid(axis="x", color=GRID_COLOUR, linewidth=0.8, zorder=-1)
    ax.set_axisbelow(True)
    ax.set_xlabel(chart.axis_label, fontsize=8, family=FONT)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def _text_place(start: float, end: float, right: float, width: float, pad: float) -> tuple[float, str, str]:
    """Where a bar's duration goes (x, alignment, colour): after its end when it fits before the right edge
    ``right``, else inside the bar (white) when the bar is wide enough, else before its start."""
    if end + pad + width <= right:
        return end + pad, "left", "#212121"
    if end - start >= width + 2 * pad:
        return end - pad, "right", "white"
    return start - pad, "right", "#212121"


def _legend(fig: Figure, y: float) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=COLOURS["ok"], label="finished"), Patch(facecolor=COLOURS["failed"], label="failed"),
               Patch(facecolor=COLOURS["running"], label="running"),
               Patch(facecolor=ALONE_COLOUR, alpha=ALONE_ALPHA, label="one task alone (likely bottleneck)")]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.01, y), ncols=len(handles), frameon=False,
               fontsize=8, handlelength=1.5, handleheight=0.8, columnspacing=1.5)


@cache
def _glyphs() -> frozenset[int]:
    """The characters :data:`FONT` can draw, bold (the title) and regular; anything else would draw as a box,
    with a warning."""
    from matplotlib import font_manager, ft2font

    charmaps = [set(ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties(family=FONT, weight=weight)))
                    .get_charmap()) for weight in ("normal", "bold")]
    return frozenset(charmaps[0] & charmaps[1])


def _drawable(text: str) -> str:
    glyphs = _glyphs()
    return "".join(ch if ord(ch) in glyphs or ch == "\n" else "?" for ch in text)
