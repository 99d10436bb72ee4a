"""Subscriptions against the real reference wes-service: a CWL run that takes a few seconds and one that fails,
watched from Slack (HTTP mode, signed requests, fake Slack Web API), each notified exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.botproc import BotProcess, ask_bot
from tests.fakes.fake_slack import FakeSlack, form_body, signed_request_headers, slash_command_payload
from tests.realwes import DATA_DIR, SLEEP_CWL, RealWes, submit, wait_until_terminal

pytestmark = pytest.mark.real_wes

SLOW_FAIL_CWL = Path(DATA_DIR) / "slow_fail.cwl"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def subscribe(bot: BotProcess, slack: FakeSlack, run_id: str, channel: str) -> dict[str, Any]:
    return ask_bot(bot, slack, f"subscribe {run_id}", name=f"sub-{run_id}", channel_id=channel, timeout=20)


def test_subscribed_runs_are_notified_once_each(real_wes: RealWes, slack: FakeSlack) -> None:
    bot = BotProcess(wes_url=real_wes.url, slack_api_url=slack.api_url, http=True,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3"})
    try:
        bot.wait_http_ready()
        ok_id = submit(real_wes.url, SLEEP_CWL, {"seconds": 4})
        assert "Watching run" in subscribe(bot, slack, ok_id, "C1")["text"]
        fail_id = submit(real_wes.url, SLOW_FAIL_CWL, {"seconds": 3})
        assert "Watching run" in subscribe(bot, slack, fail_id, "C2")["text"]

        def notes() -> list[dict[str, Any]]:
            return [c["args"] for c in slack.calls_to("chat.postMessage")
                    if c["args"].get("thread_ts") and "ended" in c["args"].get("text", "")]

        slack.wait_for(lambda: len(notes()) >= 2 or None, timeout=60, what="two notifications")
        time.sleep(1.5)
        by_channel = {n["channel"]: n for n in notes()}
        assert len(notes()) == 2 and set(by_channel) == {"C1", "C2"}
        assert "ended COMPLETE (exit 0)" in by_channel["C1"]["text"]
        assert "ended EXECUTOR_ERROR (exit 1)" in by_channel["C2"]["text"]
        assert ":x:" in json.dumps(by_channel["C2"]["blocks"])
        # The failure notification carries the end of the (inline) cwltool log, and a button for more.
        assert "permanentFail" in json.dumps(by_channel["C2"]["blocks"])
        assert f"logs {fail_id}" in json.dumps(by_channel["C2"]["blocks"])
        # The watcher read each run to its end, so the server's lost-child bug cannot flip them back.
        assert wait_until_terminal(real_wes.url, ok_id) == "COMPLETE"
        assert wait_until_terminal(real_wes.url, fail_id) == "EXECUTOR_ERROR"
    finally:
        assert bot.stop() == 0


def test_a_channel_watch_hears_about_a_failing_run(real_wes: RealWes, slack: FakeSlack) -> None:
    bot = BotProcess(wes_url=real_wes.url, slack_api_url=slack.api_url, http=True,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3"})
    try:
        bot.wait_http_ready()
        body = form_body(slash_command_payload("watch failed", channel_id="C9",
                                               response_url=slack.response_url("watch")))
        httpx.post(bot.url + "/slack/events", content=body, headers=signed_request_headers(body))
        slack.wait_for(lambda: next(iter(slack.responses_to("watch")), None), timeout=20)
        time.sleep(1.5)  # the first sweeps: runs that already ended (the other tests') are not announced
        fail_id = submit(real_wes.url, SLOW_FAIL_CWL, {"seconds": 1})
        note = slack.wait_for(lambda: next((c["args"] for c in slack.calls_to("chat.postMessage")
                                            if fail_id in c["args"].get("text", "")), None), timeout=60)
        assert note["channel"] == "C9" and "ended EXECUTOR_ERROR" in note["text"]
        assert wait_until_terminal(real_wes.url, fail_id) == "EXECUTOR_ERROR"
        time.sleep(1.5)
        announced = [c for c in slack.calls_to("chat.postMessage") if " ended " in c["args"].get("text", "")]
        assert [c["args"]["text"].split()[1] for c in announced] == [fail_id]  # nothing old, nothing twice
    finally:
        assert bot.stop() == 0
