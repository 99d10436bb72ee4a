"""Channel-wide watches end to end: the real `wesbot serve --http` with its watcher, the fake WES (including
its quirky list shapes) and the fake Slack; a kill -9 in the middle, and a burst that becomes a digest."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes

FAST = {"WESBOT_POLL_SECONDS": "0.3", "WESBOT_LEASE_SECONDS": "2"}


def start(wes: FakeWes, slack: FakeSlack, workdir: str, log: str = "bot.log") -> BotProcess:
    proc = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir, log_name=log,
                      extra_env=FAST)
    proc.wait_http_ready()
    return proc


def posted(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c["args"] for c in slack.calls_to("chat.postMessage") if c["response"].get("ok")]


def announced(slack: FakeSlack) -> list[str]:
    return [a["text"].split()[1] for a in posted(slack) if " ended " in a["text"]]


@pytest.mark.parametrize("quirk", ["spec", "workflows_one_page"])
def test_watch_failed_announces_each_failure_once(slack: FakeSlack, workdir: str, quirk: str) -> None:
    with FakeWes() as wes:
        if quirk == "workflows_one_page":
            wes.list_key = "workflows"
            wes.ignore_paging = True
        wes.many_runs(40, states=("RUNNING",), prefix="w")
        wes.add_run("old", "EXECUTOR_ERROR")
        bot = start(wes, slack, workdir)
        try:
            reply = slash(bot, slack, "watch failed", channel="C5")
            # Told to the channel: who set it, what the channel will hear, how to stop it.
            assert reply["response_type"] == "in_channel" and "<@U1> set a channel watch" in reply["text"]
            assert "will hear about every run that fails" in reply["text"] and "/wes unwatch failed" in reply["text"]
            again = slash(bot, slack, "watch failed", channel="C5", name="again")
            assert again["response_type"] == "ephemeral" and "already hears" in again["text"]
            time.sleep(1.2)  # a few sweeps: the watch becomes active
            wes.set_state("w-000003", "EXECUTOR_ERROR", exit_code=2)
            wes.set_state("w-000007", "COMPLETE", exit_code=0)
            slack.wait_for(lambda: announced(slack) or None, timeout=15, what="the failure")
            time.sleep(1.5)
            assert announced(slack) == ["w-000003"]
            listing = slash(bot, slack, "subscriptions", channel="C5", name="list")
            assert "every run that fails" in str(listing["blocks"])
        finally:
            bot.stop()


def test_burst_digest_and_kill_9_in_the_middle(slack: FakeSlack, workdir: str) -> None:
    with FakeWes() as wes:
        wes.many_runs(30, states=("RUNNING",), prefix="b")
        bot = start(wes, slack, workdir)
        slash(bot, slack, "watch finished", channel="C1")
        slash(bot, slack, "watch failed", channel="C2")
        time.sleep(1.2)
        for i in range(8):  # a burst: 8 failures in one sweep
            wes.set_state(f"b-{i:06d}", "EXECUTOR_ERROR", exit_code=1)
        slack.wait_for(lambda: len(posted(slack)) >= 2 or None, timeout=15, what="two digests")
        for i in range(8, 11):  # then a few ends, and the bot dies while it handles them
            wes.set_state(f"b-{i:06d}", "COMPLETE", exit_code=0)
        time.sleep(0.4)
        bot.kill9()
        again = start(wes, slack, workdir, log="bot2.log")
        try:
            slack.wait_for(lambda: len(announced(slack)) >= 3 or None, timeout=20, what="three notifications")
            time.sleep(1.5)
        finally:
            again.stop()
    messages = posted(slack)
    digests = [m for m in messages if m["text"].startswith("8 runs")]
    assert sorted(m["channel"] for m in digests) == ["C1", "C2"]
    assert "8 runs failed" in digests[0]["text"]
    per_run = Counter(m["text"].split()[1] for m in messages if " ended " in m["text"])
    assert sorted(per_run) == [f"b-{i:06d}" for i in range(8, 11)] and set(per_run.values()) == {1}, per_run
    assert all(m["channel"] == "C1" for m in messages if " ended " in m["text"])  # COMPLETE: only "finished"
