"""The timeline of a finished CWL run on the real GA4GH reference wes-service (cwltool back end).

The reference server reports no tasks for a CWL run: its run log has ``task_logs: []`` and it has no task endpoint
(404), so the picture is the one of a run without a timed task ("no task has a start time": no bar at all), and
the summary says the server gives no tasks. That is what is checked here, through ``wesbot ask timeline --out``
and through the core; a server that reports tasks is drawn bar by bar (tests/test_timeline.py,
tests/test_timeline_slack.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.realwes import RealRuns, RealWes
from tests.test_timeline import bars_of, png_size
from wesbot.commands import parse
from wesbot.core import execute
from wesbot.results import TimelineResult
from wesbot.timeline import COLOURS, WIDTH_PX
from wesbot.wes import WesClient

pytestmark = pytest.mark.real_wes


def test_the_timeline_of_a_finished_cwl_run(real_wes: RealWes, real_runs: RealRuns, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WES_", "SLACK_", "WESBOT_"))}
    env["WES_URL"] = real_wes.url
    out = subprocess.run([sys.executable, "-m", "wesbot", "ask", "timeline", real_runs.ok_id, "--out",
                          str(tmp_path / "f.png")], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"run:        {real_runs.ok_id}" in out.stdout and "state:      COMPLETE (exit 0)" in out.stdout
    assert "tasks:      0 (the server gives no tasks for this run)" in out.stdout
    png = (tmp_path / "f.png").read_bytes()
    width, height = png_size(png)
    assert width == WIDTH_PX and height > 100
    assert all(bars_of(png, colour) == 0 for colour in COLOURS.values())  # "no task has a start time"

    with WesClient(real_wes.url) as wes:
        result = execute(parse(f"timeline {real_runs.fail_id}"), wes)
    assert isinstance(result, TimelineResult) and result.run.run_id == real_runs.fail_id
    assert result.read.complete and result.read.tasks == []
    picture = result.picture
    assert picture.bars == 0 and picture.untimed == [] and png_size(picture.png) == (width, height)
