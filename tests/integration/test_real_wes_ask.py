"""`wesbot ask`, the real command line, against the real GA4GH reference wes-service (cwltool back end)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.realwes import ECHO_MESSAGE, RealRuns, RealWes
from wesbot.wes import WesClient

pytestmark = pytest.mark.real_wes


def ask(url: str, *words: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WES_", "SLACK_"))}
    env["WES_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "wesbot", "ask", *words], env=env, capture_output=True, text=True, timeout=60,
        cwd=os.path.dirname(__file__),
    )


def test_runs_lists_both_runs(real_wes: RealWes, real_runs: RealRuns) -> None:
    out = ask(real_wes.url, "runs")
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split()[:2] == ["RUN", "STATE"]
    lines = dict(row.split()[:2] for row in rows)
    assert lines[real_runs.ok_id] == "COMPLETE"
    assert lines[real_runs.fail_id] == "EXECUTOR_ERROR"


def test_runs_failed_filters(real_wes: RealWes, real_runs: RealRuns) -> None:
    out = ask(real_wes.url, "runs", "FAILED")
    assert out.returncode == 0, out.stderr
    assert real_runs.fail_id in out.stdout and real_runs.ok_id not in out.stdout


def test_status(real_wes: RealWes, real_runs: RealRuns) -> None:
    out = ask(real_wes.url, "status", real_runs.ok_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{real_runs.ok_id}\tCOMPLETE"
    data = json.loads(ask(real_wes.url, "--json", "status", real_runs.fail_id).stdout)
    assert data["kind"] == "status" and data["status"]["state"] == "EXECUTOR_ERROR"


def test_details_of_a_success_shows_outputs(real_wes: RealWes, real_runs: RealRuns) -> None:
    out = ask(real_wes.url, "details", real_runs.ok_id)
    assert out.returncode == 0, out.stderr
    assert "state:      COMPLETE (exit 0)" in out.stdout
    assert "greeting.txt" in out.stdout and ECHO_MESSAGE in out.stdout  # the output and the parameter
    assert "type:       CWL v1.0" in out.stdout


def test_details_of_a_failure_shows_the_inline_log_tail_without_ansi(real_wes: RealWes, real_runs: RealRuns) -> None:
    out = ask(real_wes.url, "details", real_runs.fail_id)
    assert out.returncode == 0, out.stderr
    assert "EXECUTOR_ERROR (exit 1)" in out.stdout
    assert "permanentFail" in out.stdout
    assert "\x1b" not in out.stdout


def test_tasks_fall_back_to_the_run_log(real_wes: RealWes, real_runs: RealRuns) -> None:
    out = ask(real_wes.url, "tasks", real_runs.ok_id)
    assert out.returncode == 0, out.stderr
    assert "no task endpoint" in out.stdout
    with WesClient(real_wes.url) as client:
        page = client.list_tasks(real_runs.ok_id)
    assert page.source == "inline" and page.tasks == []


def test_task_that_does_not_exist(real_wes: RealWes, real_runs: RealRuns) -> None:
    out = ask(real_wes.url, "task", real_runs.ok_id, "nope")
    assert out.returncode == 1
    assert "task nope of run" in out.stderr and "not found" in out.stderr
    assert "Traceback" not in out.stderr


def test_usage_mistake_exits_1_with_the_usage_line(real_wes: RealWes) -> None:
    out = ask(real_wes.url, "status")
    assert out.returncode == 1
    assert "Usage: /wes status RUN_ID" in out.stderr


def test_wes_down_is_one_clear_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = ask(f"http://127.0.0.1:{port}/ga4gh/wes/v1", "status", "abc")
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: could not connect to the WES server at 127.0.0.1:")
    assert "Traceback" not in out.stderr


def test_missing_configuration_names_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WES_", "SLACK_"))}
    out = subprocess.run([sys.executable, "-m", "wesbot", "ask", "runs"], env=env, capture_output=True, text=True,
                         timeout=30, cwd=os.path.dirname(__file__))
    assert out.returncode == 2
    assert "WES_URL is not set" in out.stderr and "Traceback" not in out.stderr
