"""Several WES servers in one bot, end to end: the real `wesbot serve --http` with a wesbot.toml naming two fake
WES servers (one with basic auth, one with a bearer token), signed requests and the fake Slack.

Each command goes to the server it names, the channel's default, or the one server that lists the run; every
message names its server and every button carries it; each server gets its own credentials only; and a server
that hangs holds up nobody else's notifications."""

from __future__ import annotations

import base64
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes

FAST = {"WESBOT_POLL_SECONDS": "0.3", "WESBOT_LEASE_SECONDS": "2", "WESBOT_WES_TIMEOUT": "60"}
BASIC = ("alice", "s3cret-basic")
TOKEN = "s3cret-bearer-token"


@pytest.fixture
def lab() -> Iterator[FakeWes]:
    with FakeWes(auth=BASIC) as server:
        yield server


@pytest.fixture
def cloud() -> Iterator[FakeWes]:
    with FakeWes(auth=TOKEN) as server:
        yield server


def start(lab: FakeWes, cloud: FakeWes, slack: FakeSlack, workdir: str, **env: str) -> BotProcess:
    Path(workdir, "wesbot.toml").write_text(
        f'[servers.lab]\nurl = "{lab.url}"\nauth_env = "LAB_AUTH"\n\n'
        f'[servers.cloud]\nurl = "{cloud.url}"\ntoken_env = "CLOUD_TOKEN"\n'
        'channels = ["CCLOUD"]\n', encoding="utf-8")
    bot = BotProcess(wes_url=None, slack_api_url=slack.api_url, http=True, workdir=workdir,
                     extra_env={**FAST, "LAB_AUTH": ":".join(BASIC), "CLOUD_TOKEN": TOKEN, **env})
    bot.wait_http_ready()
    return bot


def blocks_text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or [])


def button_values(message: dict[str, Any]) -> list[str]:
    return [e["value"] for b in message.get("blocks") or [] if b.get("type") == "actions"
            for e in b["elements"] if "value" in e]


def credentials(server: FakeWes) -> set[str]:
    return {next((v for k, v in r.headers.items() if k.lower() == "authorization"), "") for r in server.requests}


def test_each_command_goes_to_its_server_and_says_which(lab: FakeWes, cloud: FakeWes, slack: FakeSlack,
                                                        workdir: str) -> None:
    lab.add_run("on-lab", "RUNNING")
    cloud.add_run("on-cloud", "COMPLETE", exit_code=0)
    bot = start(lab, cloud, slack, workdir)
    try:
        # No server named, no default in C1: the run is looked for in the run lists, found on one server.
        status = slash(bot, slack, "status on-cloud", name="found")
        assert "COMPLETE" in status["text"] and "cloud (127.0.0.1" in blocks_text(status)
        assert all("--server=cloud" in value for value in button_values(status))
        # Named: it goes there, even if the run is elsewhere.
        missing = slash(bot, slack, "status on-cloud --server lab", name="named")
        assert "not found" in missing["text"] and str(lab.port) in missing["text"], missing["text"]
        # Not found anywhere: which server? One button each, nothing asked of any server about that id.
        question = slash(bot, slack, "status nowhere", name="nowhere")
        assert "Which WES server?" in question["text"]
        assert button_values(question) == ["status nowhere --server=lab", "status nowhere --server=cloud"]
        assert not any("/runs/nowhere" in r.path for r in (*lab.requests, *cloud.requests))
        # The configuration's default for CCLOUD; /wes use sets C1's, told to the channel.
        runs = slash(bot, slack, "runs", channel="CCLOUD", name="cloud-runs")
        assert "on-cloud" in blocks_text(runs) and "on-lab" not in blocks_text(runs)
        use = slash(bot, slack, "use lab", name="use")
        assert use["response_type"] == "in_channel" and "*lab*" in use["text"] and "<@U1>" in use["text"]
        assert "*lab*" in slash(bot, slack, "use", name="use-show")["text"]
        runs = slash(bot, slack, "runs", name="lab-runs")
        assert "on-lab" in blocks_text(runs) and "on-cloud" not in blocks_text(runs)
        unknown = slash(bot, slack, "runs --server qa", name="qa")
        assert "No WES server is named 'qa'" in unknown["text"] and "lab, cloud" in unknown["text"]
    finally:
        assert bot.stop() == 0
    # Each server got its own credentials, and only those.
    assert credentials(lab) == {"Basic " + base64.b64encode(":".join(BASIC).encode()).decode()}
    assert credentials(cloud) == {f"Bearer {TOKEN}"}


def test_subscriptions_on_two_servers_each_named_on_its_card_and_notification(
        lab: FakeWes, cloud: FakeWes, slack: FakeSlack, workdir: str) -> None:
    # The same run id on both servers: two different runs, two subscriptions.
    lab.add_run("same-id", "RUNNING")
    cloud.add_run("same-id", "RUNNING")
    bot = start(lab, cloud, slack, workdir)
    try:
        assert "Watching run" in slash(bot, slack, "subscribe same-id --server lab", name="s1")["text"]
        assert "Watching run" in slash(bot, slack, "subscribe same-id -s cloud", name="s2")["text"]
        slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 2 or None, timeout=10, what="two cards")
        cards = [c["args"] for c in slack.calls_to("chat.postMessage")]
        assert sorted("lab (" in json.dumps(c["blocks"]) for c in cards) == [False, True]
        assert sorted("cloud (" in json.dumps(c["blocks"]) for c in cards) == [False, True]
        listing = slash(bot, slack, "subscriptions", name="list")
        assert blocks_text(listing).count("same-id") >= 2
        cloud.set_state("same-id", "EXECUTOR_ERROR", exit_code=1)
        note = slack.wait_for(lambda: next((c["args"] for c in slack.calls_to("chat.postMessage")
                                            if c["args"].get("thread_ts")), None), timeout=10, what="notification")
        assert "cloud (" in json.dumps(note["blocks"]) and "EXECUTOR_ERROR" in json.dumps(note["blocks"])
        assert all("--server=cloud" in v for v in button_values(note))
        time.sleep(1.0)  # the lab run is still running: no notification for it
        assert len([c for c in slack.calls_to("chat.postMessage") if c["args"].get("thread_ts")]) == 1
    finally:
        assert bot.stop() == 0


def test_a_hanging_server_never_delays_another_servers_notification(
        lab: FakeWes, cloud: FakeWes, slack: FakeSlack, workdir: str) -> None:
    lab.add_run("stuck", "RUNNING")
    cloud.add_run("quick", "RUNNING")
    bot = start(lab, cloud, slack, workdir)
    try:
        slash(bot, slack, "subscribe stuck --server lab", name="s1")
        slash(bot, slack, "subscribe quick --server cloud", name="s2")
        slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= 2 or None, timeout=10, what="two cards")
        lab.delay_seconds = 60  # every request to lab now hangs for a minute
        time.sleep(1.0)  # lab's watcher is now stuck in a poll
        ended = time.monotonic()
        cloud.set_state("quick", "COMPLETE", exit_code=0)
        slack.wait_for(lambda: next((c for c in slack.calls_to("chat.postMessage") if c["args"].get("thread_ts")),
                                    None), timeout=15, what="the cloud run's notification")
        delay = time.monotonic() - ended
        assert delay < 0.3 + 5, f"the notification took {delay:.1f} s while the other server hung"
        lab.delay_seconds = 0
    finally:
        bot.stop(timeout=15)


def test_rows_of_a_server_no_longer_configured_are_said_once_and_never_reported_gone(
        lab: FakeWes, cloud: FakeWes, slack: FakeSlack, workdir: str) -> None:
    # A database of the single-server release, used with a server at another URL than lab's and cloud's.
    shutil.copy(Path(__file__).parent / "data" / "previous" / "v1.db", Path(workdir) / "wesbot.db")
    bot = start(lab, cloud, slack, workdir)
    try:
        servers = slash(bot, slack, "servers", name="servers")
        assert "no longer configured: (unnamed) at http://127.0.0.1:8080/ga4gh/wes/v1" in blocks_text(servers)
        time.sleep(1.5)  # several poll periods: the old subscriptions are neither polled nor told anything
    finally:
        assert bot.stop() == 0
    log = bot.final_log or ""
    assert log.count("the configuration does not name with that URL") == 1, log
    assert slack.calls_to("chat.postMessage") == [] and slack.calls_to("chat.update") == []
    assert not any("run-live" in r.path or "run-done" in r.path for r in (*lab.requests, *cloud.requests))
