"""Against the real reference wes-service (cwltool back end): /wes details and the failure notification of a
failing CWL run say why first (cwltool's "exited with status" / "permanentFail" lines before the log's end), show
its stderr once, and a success lists its output file."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.realwes import RealRuns, RealWes
from wesbot.commands import parse
from wesbot.core import execute
from wesbot.slack.cards import notification
from wesbot.slack.replies import render
from wesbot.watcher.details import Details
from wesbot.wes import WesClient
from wesbot.wes.logs import LogFetcher

pytestmark = pytest.mark.real_wes

TEMPLATE = "https://ui.example.org/runs/{run_id}"


def texts(message: dict[str, Any]) -> list[str]:
    """The mrkdwn of each section, in order."""
    return [str(b["text"]["text"]) for b in message["blocks"] if b["type"] == "section" and "text" in b]


def test_details_of_a_failed_run_say_why_before_the_tail(real_wes: RealWes, real_runs: RealRuns) -> None:
    with WesClient(real_wes.url) as wes, LogFetcher(real_wes.url) as logs:
        result = execute(parse(f"details {real_runs.fail_id}"), wes, None, logs)
    message = render(result, host="h", run_url=TEMPLATE)
    sections = texts(message)
    assert sections[0].startswith(">`") and "exited with status: 3" in sections[0]
    assert "permanentFail" in sections[0]
    tail = next(i for i, text in enumerate(sections) if "(the end)" in text or text.startswith("*Stderr of run"))
    assert tail > 0
    body = json.dumps(message["blocks"])
    assert body.count("cwltool 3.") == 1  # the inline stderr is shown once, as the failing log's end
    assert f"https://ui.example.org/runs/{real_runs.fail_id}" in body


def test_the_failure_notification_says_why_first(real_wes: RealWes, real_runs: RealRuns) -> None:
    with WesClient(real_wes.url) as wes, LogFetcher(real_wes.url) as logs:
        log = wes.get_run(real_runs.fail_id)
        outcome, _ = Details(wes, logs, run_url=TEMPLATE).outcome(real_runs.fail_id, wes.get_status(real_runs.fail_id),
                                                                  log)
    message = notification(None, outcome, host="h")
    head, *lines = texts(message)[0].split("\n")
    assert "ended *EXECUTOR_ERROR (exit 1)*" in head
    assert "exited with status: 3" in lines[0] and any("permanentFail" in line for line in lines[:3])
    assert "exited with status: 3" in message["text"]
    body = json.dumps(message["blocks"])
    assert body.index("permanentFail") < body.index("(the end)")


def test_details_of_a_success_list_its_output_file(real_wes: RealWes, real_runs: RealRuns) -> None:
    with WesClient(real_wes.url) as wes:
        result = execute(parse(f"details {real_runs.ok_id}"), wes, None, None)
    outputs = next(text for text in texts(render(result, host="h")) if text.startswith("*Outputs:*"))
    assert "• *out*: `file://" in outputs and "greeting.txt` (" in outputs and "```" not in outputs
