"""Subscriptions end to end: the real `wesbot serve --http` (with its watcher), signed requests, the fake Slack
Web API and the fake WES on loopback. Crashes (kill -9), Slack 429 storms, WES outages, 404s, expiry, and two
watcher processes on one database."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from typing import Any

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes, empty

FAST = {"WESBOT_POLL_SECONDS": "0.3", "WESBOT_LEASE_SECONDS": "2"}


def start(wes: FakeWes, slack: FakeSlack, workdir: str, *, log: str = "bot.log", **env: str) -> BotProcess:
    proc = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir, log_name=log,
                      extra_env={**FAST, **env})
    proc.wait_http_ready()
    return proc


def notifications(slack: FakeSlack) -> list[dict[str, Any]]:
    """Every end-of-run notification Slack received (posted in a card's thread)."""
    return [c["args"] for c in slack.calls_to("chat.postMessage")
            if c["status"] == 200 and c["response"].get("ok") and c["args"].get("thread_ts")
            and "ended" in c["args"].get("text", "")]


def wait_notifications(slack: FakeSlack, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    slack.wait_for(lambda: len(notifications(slack)) >= count or None, timeout=timeout,
                   what=f"{count} notifications")
    return notifications(slack)


def test_subscribe_then_exactly_one_notification(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("w1", "QUEUED", request={"workflow_url": "https://x/align.cwl", "workflow_type": "CWL",
                                         "workflow_type_version": "v1.0"})
    bot = start(wes, slack, workdir)
    try:
        reply = slash(bot, slack, "subscribe w1", user="U1")
        assert "Watching run `w1`" in reply["text"] and reply["response_type"] == "ephemeral"
        reply = slash(bot, slack, "subscribe w1", user="U2")
        assert "Added you to the watchers" in reply["text"]
        card = slack.wait_for_call("chat.postMessage", timeout=10)
        assert card["args"]["channel"] == "C1" and "align.cwl" in json.dumps(card["args"]["blocks"])
        listing = slash(bot, slack, "subscriptions", name="list")
        assert "`w1`" in json.dumps(listing["blocks"]) and "<@U1> <@U2>" in json.dumps(listing["blocks"])
        wes.set_state("w1", "RUNNING")
        slack.wait_for(lambda: any("*RUNNING*" in json.dumps(c["args"].get("blocks"))
                                   for c in slack.calls_to("chat.update")) or None, timeout=10, what="card update")
        wes.set_state("w1", "COMPLETE", exit_code=0)
        [note] = wait_notifications(slack, 1)
        assert note["thread_ts"] == card["response"]["ts"] and str(note["reply_broadcast"]).lower() == "true"
        assert "<@U1> <@U2>" in note["text"]
        time.sleep(1.5)  # several more cycles: nothing more is posted
        assert len(notifications(slack)) == 1
        assert len([c for c in slack.calls_to("chat.postMessage") if not c["args"].get("thread_ts")]) == 1
    finally:
        assert bot.stop() == 0
    assert bot.exit_seconds is not None and bot.exit_seconds < 5


def test_subscribe_refuses_ended_unknown_and_unreachable(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("done", "COMPLETE", exit_code=0)
    bot = start(wes, slack, workdir)
    try:
        assert "already ended: *COMPLETE* (exit 0)" in slash(bot, slack, "subscribe done")["text"]
        assert "not found" in slash(bot, slack, "subscribe nope")["text"]
        wes.fail_next.extend([empty(503)] * 6)
        down = slash(bot, slack, "subscribe done", name="down")
        assert "503" in down["text"]
        assert "no runs are watched" in slash(bot, slack, "subscriptions", name="empty")["text"].lower()
    finally:
        bot.stop()
    assert slack.calls_to("chat.postMessage") == []


def test_kill_9_mid_cycle_loses_nothing_and_repeats_nothing(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    runs = [f"k{i}" for i in range(12)]
    for run in runs:
        wes.add_run(run, "RUNNING")
    bot = start(wes, slack, workdir)
    for i, run in enumerate(runs):
        slash(bot, slack, f"subscribe {run}", channel=f"C{i % 3}")
    slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 12 or None, timeout=20, what="12 cards")
    for run in runs:
        wes.set_state(run, "EXECUTOR_ERROR" if run.endswith("3") else "COMPLETE", exit_code=1)
    # Posts are paced at one per second per channel: 3 channels, 12 notifications take about 4 seconds.
    slack.wait_for(lambda: len(notifications(slack)) >= 2 or None, timeout=20, what="the first notifications")
    bot.kill9()
    sent_before_crash = len(notifications(slack))
    assert sent_before_crash < 12
    again = start(wes, slack, workdir, log="bot2.log")
    try:
        wait_notifications(slack, 12, timeout=30)
        time.sleep(1.5)
    finally:
        again.stop()
    per_run = Counter(json.dumps(n["blocks"]).split("Run `", 1)[1].split("`", 1)[0] for n in notifications(slack))
    assert sorted(per_run) == sorted(runs) and set(per_run.values()) == {1}, per_run


def test_slack_429_storm_and_wes_outage_lose_nothing(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("s1", "RUNNING")
    bot = start(wes, slack, workdir)
    try:
        slash(bot, slack, "subscribe s1")
        slack.wait_for_call("chat.postMessage", timeout=10)
        wes.fail_next.extend([empty(503)] * 8)  # WES down for a few polls
        slack.rate_limit_next("chat.postMessage", retry_after=1, count=4)
        slack.status_next("chat.update", 500, count=2)
        wes.set_state("s1", "COMPLETE", exit_code=0)
        wait_notifications(slack, 1, timeout=30)
        time.sleep(1.5)
        assert len(notifications(slack)) == 1
        assert len([c for c in slack.calls_to("chat.postMessage") if c["status"] == 429]) >= 1
        assert "Traceback" not in bot.log_text()
    finally:
        bot.stop()


def test_run_gone_and_expiry(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("g1", "RUNNING")
    wes.add_run("e1", "RUNNING")
    bot = start(wes, slack, workdir, WESBOT_SUBSCRIPTION_DAYS="0.00003")  # about 2.6 seconds
    try:
        slash(bot, slack, "subscribe g1")
        slash(bot, slack, "subscribe e1", channel="C2")
        del wes.runs["g1"]
        posted = lambda needle: [c for c in slack.calls_to("chat.postMessage")  # noqa: E731
                                 if needle in c["args"].get("text", "")]
        slack.wait_for(lambda: posted("no longer on the WES server") or None, timeout=15, what="gone note")
        slack.wait_for(lambda: posted("stopped watching run `e1`") or None, timeout=15, what="expiry note")
        time.sleep(1)
        assert len(posted("no longer on the WES server")) == 1 and len(posted("stopped watching run `e1`")) == 1
    finally:
        bot.stop()


def lease_holder(workdir: str) -> str | None:
    with sqlite3.connect(f"{workdir}/wesbot.db") as conn:
        row = conn.execute("SELECT owner, expires_at FROM leases WHERE name = 'watcher'").fetchone()
    return None if row is None or row[1] < time.time() else str(row[0])


def test_two_watchers_on_one_database_post_once_and_take_over(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    for run in ("t1", "t2"):
        wes.add_run(run, "RUNNING")
    bot = start(wes, slack, workdir)
    watcher = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=False, workdir=workdir,
                         command="watch", log_name="watch.log", extra_env=FAST)
    processes = {"bot": bot, "watch": watcher}
    try:
        slash(bot, slack, "subscribe t1")
        slash(bot, slack, "subscribe t2", channel="C2")
        slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 2 or None, timeout=10, what="cards")
        wes.set_state("t1", "COMPLETE", exit_code=0)
        wait_notifications(slack, 1)
        time.sleep(1)
        assert len(notifications(slack)) == 1 and len(slack.calls_to("chat.postMessage")) == 3
        holder = lease_holder(workdir)
        assert holder is not None
        holder_name = "bot" if holder in bot.log_text() else "watch"
        other = processes["watch" if holder_name == "bot" else "bot"]
        processes[holder_name].kill9()
        died = time.monotonic()
        wes.set_state("t2", "EXECUTOR_ERROR", exit_code=1)
        [_, second] = wait_notifications(slack, 2, timeout=15)
        assert time.monotonic() - died < 2 + 5  # one lease period (2 s), plus a poll and a post
        assert "EXECUTOR_ERROR" in second["text"]
        time.sleep(1)
        assert len(notifications(slack)) == 2
        assert lease_holder(workdir) not in (None, holder)
        assert "holds the lease" in other.log_text()
    finally:
        for proc in processes.values():
            proc.stop()
    # SIGTERM stops the survivor within 5 seconds, and cleanly.
    assert other.exit_seconds is not None and other.exit_seconds < 5 and other.proc.returncode == 0
