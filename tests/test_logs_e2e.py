"""Failure triage end to end: /wes logs and the stderr tail in details, with log files served by the fake WES
on loopback, through the real `wesbot serve --http` and the fake Slack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.botproc import BotProcess, ask_bot
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes, make_task
from wesbot.slack.blocks import check_limits

STDERR = "".join(f"step {i}: working\n" for i in range(200)) + "\x1b[31mERROR\x1b[0m <!channel> ``` boom é\n"


@pytest.fixture(scope="module")
def wes() -> Iterator[FakeWes]:
    with FakeWes() as fake:
        yield fake


@pytest.fixture(scope="module")
def other_host() -> Iterator[FakeWes]:
    with FakeWes() as fake:  # another origin (another port): not the WES server
        yield fake


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def bot(wes: FakeWes, slack: FakeSlack) -> Iterator[BotProcess]:
    proc = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True)
    try:
        proc.wait_http_ready()
        yield proc
    finally:
        proc.stop()


def ask(bot: BotProcess, slack: FakeSlack, text: str) -> dict[str, Any]:
    message = ask_bot(bot, slack, text, timeout=15)
    assert check_limits(message) == []
    return message


def mrkdwn(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def test_logs_of_the_first_failed_task(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    url = wes.add_file("align.err", STDERR)
    wes.add_run("lg1", "EXECUTOR_ERROR", exit_code=1, task_logs=[
        make_task("t0", name="prepare", exit_code=0, stderr=wes.add_file("prep.err", "fine\n")),
        make_task("t1", name="align", exit_code=2, stderr=url),
    ])
    text = mrkdwn(ask(bot, slack, "logs lg1"))
    assert "Stderr of task align" in text and "boom é" in text and "step 199" in text
    assert "step 150" not in text  # only the last 30 lines
    assert "<!channel>" not in text and "\\u001b" not in text and "ERROR" in text
    inner = text.split("```", 1)[1]
    assert inner.count("```") == 1  # the log's own ``` cannot close the block early
    assert "Show stdout" in text


def test_details_of_a_failed_run_has_the_tail_and_a_button(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("lg2", "EXECUTOR_ERROR", exit_code=1, task_logs=[
        make_task("t1", name="align", exit_code=2, stderr=wes.add_file("lg2.err", STDERR))])
    message = ask(bot, slack, "details lg2")
    text = mrkdwn(message)
    assert "Stderr of task align" in text and "boom é" in text and "step 189" not in text  # 10 lines
    values = [e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "logs lg2 t1" in values


def test_a_log_on_another_host_is_not_fetched(bot: BotProcess, slack: FakeSlack, wes: FakeWes,
                                              other_host: FakeWes) -> None:
    url = other_host.add_file("secret.err", "should never be read")
    wes.add_run("lg3", "EXECUTOR_ERROR", exit_code=1, task_logs=[make_task("t1", name="x", exit_code=1, stderr=url)])
    message = ask(bot, slack, "logs lg3")
    assert f"Log host 127.0.0.1:{other_host.port} not allowed (set WESBOT_LOG_HOSTS)." == message["text"]
    assert not any("/files/" in r.path for r in other_host.requests)


def test_missing_log_and_inline_log(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("lg4", "RUNNING", task_logs=[make_task("t1", name="x", exit_code=None)])
    assert ask(bot, slack, "logs lg4")["text"] == "Stderr of run lg4 is not available yet."
    wes.add_run("lg5", "EXECUTOR_ERROR", exit_code=1, run_log={"stderr": "line one\nline two <@U1>\n", "exit_code": 1})
    text = mrkdwn(ask(bot, slack, "logs lg5"))
    assert "line two &lt;@U1&gt;" in text


@pytest.mark.parametrize("status", [500, 416])
def test_a_server_that_refuses_ranges_is_read_without_one(bot: BotProcess, slack: FakeSlack, wes: FakeWes,
                                                          status: int) -> None:
    run_id = f"lg-range-{status}"
    name = f"{run_id}.err"
    wes.add_run(run_id, "EXECUTOR_ERROR", exit_code=1, task_logs=[
        make_task("t1", name="align", exit_code=2, stderr=wes.add_file(name, STDERR))])
    wes.range_failure = status
    try:
        text = mrkdwn(ask(bot, slack, f"logs {run_id}"))
    finally:
        wes.range_failure = None
    assert "Stderr of task align" in text and "boom é" in text and "step 199" in text
    reads = [r for r in wes.requests if r.path == f"/files/{name}"]
    assert [{k.lower(): v for k, v in r.headers.items()}.get("range") for r in reads] == ["bytes=-65536", None]


def test_a_failed_task_without_stderr_shows_the_run_stderr(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_file("lg7.err", "cwltool says\nFinal process status is permanentFail\n")
    # A relative log URL, resolved against the URL of GET /runs/lg7.
    wes.add_run("lg7", "EXECUTOR_ERROR", run_log={"stderr": "/files/lg7.err", "exit_code": 1},
                task_logs=[make_task("t1", name="align", exit_code=2)])
    title = "Stderr of run lg7 (task align has no stderr of its own)"
    text = mrkdwn(ask(bot, slack, "logs lg7"))
    assert title in text and "permanentFail" in text
    assert title in mrkdwn(ask(bot, slack, "logs lg7 t1"))
    details = ask(bot, slack, "details lg7")
    assert title in mrkdwn(details) and "permanentFail" in mrkdwn(details)
    values = [e["value"] for b in details["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "logs lg7 t1" in values


def test_an_empty_log_is_empty_not_missing(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("lg8", "EXECUTOR_ERROR", exit_code=1, task_logs=[
        make_task("t1", name="align", exit_code=2, stderr=wes.add_file("lg8.err", ""))])
    message = ask(bot, slack, "logs lg8")
    assert "*Stderr of task align*: _empty_" in mrkdwn(message) and "not available" not in mrkdwn(message)
