"""Hostile times and control/bidi characters from WES never break or reach a rendered answer."""

from __future__ import annotations

import json

import pytest

from wesbot.commands import parse
from wesbot.format import duration, epoch_iso, human_duration, local_time
from wesbot.results import DetailsResult, RunsResult, TasksResult
from wesbot.slack.blocks import slack_wes_time
from wesbot.slack.replies import render
from wesbot.textview import render_text
from wesbot.wes.models import Log, RunLog, RunRequest, RunState, RunSummary

EXTREME = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-01:00", "99999999999999", "nan", "-1e308"]
BAD = ["\x00", "\x07", "\x1b", "\x1b]0;title\x07", "\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f",
       "\u061c", "\x9b", "\x85"]


@pytest.mark.parametrize("value", EXTREME)
def test_extreme_times_never_raise(value: str) -> None:
    assert isinstance(local_time(value), str) and "<!date" not in slack_wes_time(value)
    assert duration(value, None) is None
    assert duration("2026-01-01T00:00:00Z", value) is None
    assert duration(value, "2026-01-01T00:00:00Z") is None


@pytest.mark.parametrize("seconds, shown", [(float("nan"), "—"), (float("inf"), "—"), (-5.0, "0s"), (1e300, "—")])
def test_hostile_durations(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown or shown == "—" and isinstance(human_duration(seconds), str)


@pytest.mark.parametrize("epoch", [1e300, -1e300, float("nan"), float("inf"), None])
def test_hostile_epochs(epoch: float | None) -> None:
    assert epoch_iso(epoch) == ""


def test_runs_page_with_extreme_times_renders() -> None:
    runs = [RunSummary(run_id=f"r{i}", state=RunState.COMPLETE, start_time=start, end_time=end)
            for i, (start, end) in enumerate(zip(EXTREME, reversed(EXTREME), strict=True))]
    result = RunsResult(command=parse("runs"), runs=runs)
    message = render(result, host="wes.example")
    assert "r0" in json.dumps(message)
    assert "r0" in render_text(result, host="wes.example")


def _shown(message: object) -> object:
    """The message without button values: those carry the run id back to wesbot and are never shown."""
    if isinstance(message, dict):
        return {k: _shown(v) for k, v in message.items() if k != "value"}
    return [_shown(v) for v in message] if isinstance(message, list) else message


def _hostile_run() -> DetailsResult:
    bad = "".join(BAD)
    log = Log(name=f"task{bad}", stderr=f"line one{bad}\nline two{bad}\n" + "x" * 600, start_time=EXTREME[0],
              end_time=EXTREME[1])
    run = RunLog(run_id=f"run{bad}", state=RunState.EXECUTOR_ERROR, run_log=log, task_logs=[log],
                 request=RunRequest(workflow_url="https://x/wf\u202e.cwl", tags={f"key{bad}": f"value{bad}"}))
    return DetailsResult(command=parse("details r"), run=run, task_count=1)


@pytest.mark.parametrize("char", BAD)
def test_no_control_or_bidi_character_reaches_slack(char: str) -> None:
    details = _hostile_run()
    tasks = TasksResult(command=parse("tasks r"), run_id="r", tasks=details.run.task_logs or [])
    for result in (details, tasks):
        text = json.dumps(_shown(render(result, host="wes.example")), ensure_ascii=False)
        assert char not in text
        assert "title" not in text
        assert char not in render_text(result, host="wes.example")
