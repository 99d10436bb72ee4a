"""Two real reference wes-service instances on two ports, in one wesbot (a wesbot.toml naming both): runs,
status and a subscription on each, with the right server named on every message."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.botproc import BotProcess, ask_bot
from tests.fakes.fake_slack import FakeSlack
from tests.realwes import (
    ECHO_CWL,
    SLEEP_CWL,
    RealRuns,
    RealWes,
    find_wes_server,
    submit,
    submit_and_wait,
    wait_until_terminal,
)
from wesbot.slack.blocks import check_limits

pytestmark = pytest.mark.real_wes


@pytest.fixture(scope="module")
def second_wes(real_wes: RealWes) -> Iterator[RealWes]:
    """A second reference server, next to the session's (which ``real_wes`` checks is installed)."""
    server = RealWes(find_wes_server())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def bot(real_wes: RealWes, second_wes: RealWes, slack: FakeSlack) -> Iterator[BotProcess]:
    with tempfile.TemporaryDirectory(prefix="wesbot-two-") as workdir:
        Path(workdir, "wesbot.toml").write_text(
            f'[servers.one]\nurl = "{real_wes.url}"\n\n[servers.two]\nurl = "{second_wes.url}"\n', encoding="utf-8")
        proc = BotProcess(wes_url=None, slack_api_url=slack.api_url, http=True, workdir=workdir,
                          extra_env={"WESBOT_POLL_SECONDS": "0.3"})
        try:
            proc.wait_http_ready()
            yield proc
        finally:
            assert proc.stop() == 0


def ask(bot: BotProcess, slack: FakeSlack, text: str, name: str) -> dict[str, Any]:
    message = ask_bot(bot, slack, text, name=name, timeout=30)
    assert check_limits(message) == []
    return message


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or [], ensure_ascii=False)


def test_runs_status_and_a_subscription_on_each_server(bot: BotProcess, slack: FakeSlack, real_runs: RealRuns,
                                                       real_wes: RealWes, second_wes: RealWes) -> None:
    other_id, state = submit_and_wait(second_wes.url, ECHO_CWL, {"message": "from the second server"})
    assert state == "COMPLETE"
    one = text_of(ask(bot, slack, "runs --server one", "runs-one"))
    assert real_runs.ok_id in one and other_id not in one and "one (127.0.0.1" in one
    two = text_of(ask(bot, slack, "runs -s two", "runs-two"))
    assert other_id in two and real_runs.ok_id not in two and "two (127.0.0.1" in two
    # No server named: each run is found in its own server's list (never by asking for its status).
    status = ask(bot, slack, f"status {other_id}", "status-two")
    assert "*COMPLETE*" in text_of(status) and "two (127.0.0.1" in text_of(status)
    status = ask(bot, slack, f"status {real_runs.fail_id}", "status-one")
    assert "EXECUTOR_ERROR" in text_of(status) and "one (127.0.0.1" in text_of(status)

    runs = {"one": submit(real_wes.url, SLEEP_CWL, {"seconds": 3}),
            "two": submit(second_wes.url, SLEEP_CWL, {"seconds": 3})}
    for server, run_id in runs.items():
        assert "Watching run" in ask(bot, slack, f"subscribe {run_id} --server {server}", f"sub-{server}")["text"]

    def notes() -> list[dict[str, Any]]:
        return [c["args"] for c in slack.calls_to("chat.postMessage")
                if c["args"].get("thread_ts") and "ended" in c["args"].get("text", "")]

    slack.wait_for(lambda: len(notes()) >= 2 or None, timeout=60, what="two notifications")
    for server, run_id in runs.items():
        [note] = [n for n in notes() if run_id in json.dumps(n["blocks"])]
        assert f"{server} (127.0.0.1" in json.dumps(note["blocks"]) and "COMPLETE" in note["text"]
    cards = [c["args"] for c in slack.calls_to("chat.postMessage") if not c["args"].get("thread_ts")]
    for server, run_id in runs.items():
        assert any(run_id in json.dumps(c["blocks"]) and f"{server} (127.0.0.1" in json.dumps(c["blocks"])
                   for c in cards)
    assert wait_until_terminal(real_wes.url, runs["one"]) == "COMPLETE"
    assert wait_until_terminal(second_wes.url, runs["two"]) == "COMPLETE"
