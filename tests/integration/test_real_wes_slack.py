"""Slack (HTTP mode, signed requests) -> the real `wesbot serve` -> the real reference wes-service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.botproc import BotProcess, ask_bot
from tests.fakes.fake_slack import FakeSlack
from tests.realwes import ECHO_MESSAGE, RealRuns, RealWes
from wesbot.slack.blocks import check_limits

pytestmark = pytest.mark.real_wes


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def bot(real_wes: RealWes, slack: FakeSlack) -> Iterator[BotProcess]:
    proc = BotProcess(wes_url=real_wes.url, slack_api_url=slack.api_url, http=True)
    try:
        proc.wait_http_ready()
        yield proc
    finally:
        assert proc.stop() == 0


def ask_slack(bot: BotProcess, slack: FakeSlack, text: str, name: str) -> dict[str, Any]:
    message = ask_bot(bot, slack, text, name=name, timeout=20)
    assert check_limits(message) == []
    return message


def blocks_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def test_runs(bot: BotProcess, slack: FakeSlack, real_runs: RealRuns) -> None:
    text = blocks_text(ask_slack(bot, slack, "runs", "runs"))
    assert real_runs.ok_id in text and real_runs.fail_id in text
    text = blocks_text(ask_slack(bot, slack, "runs failed", "runs-failed"))
    assert real_runs.fail_id in text and real_runs.ok_id not in text


def test_status(bot: BotProcess, slack: FakeSlack, real_runs: RealRuns) -> None:
    message = ask_slack(bot, slack, f"status {real_runs.ok_id}", "status")
    assert "*COMPLETE*" in blocks_text(message) and message["response_type"] == "ephemeral"


def test_details_of_success_and_failure(bot: BotProcess, slack: FakeSlack, real_runs: RealRuns) -> None:
    ok = blocks_text(ask_slack(bot, slack, f"details {real_runs.ok_id}", "details-ok"))
    assert "COMPLETE (exit 0)" in ok and "greeting.txt" in ok and ECHO_MESSAGE in ok
    failed = blocks_text(ask_slack(bot, slack, f"show {real_runs.fail_id}", "details-fail"))
    assert "EXECUTOR_ERROR (exit 1)" in failed and "permanentFail" in failed and "\\u001b" not in failed


def test_tasks_and_task(bot: BotProcess, slack: FakeSlack, real_runs: RealRuns) -> None:
    tasks = ask_slack(bot, slack, f"tasks {real_runs.fail_id}", "tasks")
    assert "no task endpoint" in blocks_text(tasks)
    task = ask_slack(bot, slack, f"task {real_runs.fail_id} nope", "task")
    assert task["text"] == f"Task nope of run {real_runs.fail_id} not found."


def test_logs_of_a_failed_run(bot: BotProcess, slack: FakeSlack, real_runs: RealRuns) -> None:
    """The reference server puts the whole cwltool log, with ANSI colours, in run_log.stderr."""
    message = ask_slack(bot, slack, f"logs {real_runs.fail_id}", "logs")
    text = blocks_text(message)
    assert f"Stderr of run {real_runs.fail_id}" in text
    assert "Final process status is permanentFail" in text and "oops" in text
    assert "\\u001b" not in text
