"""End to end in HTTP mode: the real `wesbot serve --http` process, signed requests over a real socket,
a fake WES server and a fake Slack Web API / response_url sink on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.botproc import BotProcess, final_answer, post_signed
from tests.fakes.fake_slack import (
    FakeSlack,
    block_actions_payload,
    slash_command_payload,
)
from tests.fakes.fake_wes import FakeWes, html_error, make_task
from wesbot.slack.blocks import ACTION_PAGE, ACTION_RUN, ACTION_SHARE, check_limits


@pytest.fixture(scope="module")
def fake_wes() -> Iterator[FakeWes]:
    with FakeWes() as wes:
        yield wes
        assert wes.spec_violations == []  # what the fake sent conforms to WES 1.1


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture(scope="module")
def bot(fake_wes: FakeWes, fake_slack: FakeSlack) -> Iterator[BotProcess]:
    proc = BotProcess(wes_url=fake_wes.url, slack_api_url=fake_slack.api_url, http=True)
    try:
        proc.wait_http_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def reset_knobs(fake_wes: FakeWes) -> Iterator[None]:
    yield
    fake_wes.delay_seconds = 0.0
    fake_wes.delays.clear()
    fake_wes.overrides.clear()


post = post_signed


def command(bot: BotProcess, slack: FakeSlack, text: str, name: str) -> httpx.Response:
    return post(bot, slash_command_payload(text, response_url=slack.response_url(name)))


def click(bot: BotProcess, slack: FakeSlack, action_id: str, value: str, name: str,
          user_id: str = "U123") -> httpx.Response:
    return post(bot, block_actions_payload(action_id, value, response_url=slack.response_url(name), user_id=user_id))


answer = final_answer


def mrkdwn(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False) + message.get("text", "")


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]}


def test_health(bot: BotProcess) -> None:
    assert httpx.get(bot.url + "/healthz").status_code == 200
    assert httpx.get(bot.url + "/nope").status_code == 404


def test_bad_signature_and_stale_timestamp_are_rejected(bot: BotProcess, fake_slack: FakeSlack,
                                                        fake_wes: FakeWes) -> None:
    before = len(fake_wes.requests)
    payload = slash_command_payload("status r1", response_url=fake_slack.response_url("rejected"))
    assert post(bot, payload, secret="wrong-secret").status_code == 401
    assert post(bot, payload, timestamp=int(time.time()) - 600).status_code == 401
    time.sleep(0.3)
    assert len(fake_wes.requests) == before and fake_slack.responses_to("rejected") == []


def test_status_is_acked_then_answered_ephemerally_with_buttons(bot: BotProcess, fake_slack: FakeSlack,
                                                                  fake_wes: FakeWes) -> None:
    fake_wes.add_run("run-status", "RUNNING")
    response = command(bot, fake_slack, "status run-status", "status")
    assert response.status_code == 200 and response.text == ""
    message = answer(fake_slack, "status")
    assert message["response_type"] == "ephemeral"
    assert "*RUNNING*" in mrkdwn(message) and check_limits(message) == []
    assert buttons(message) == {f"{ACTION_RUN}:details": "details run-status",
                                f"{ACTION_RUN}:tasks": "tasks run-status",
                                f"{ACTION_RUN}:subscribe": "subscribe run-status",
                                f"{ACTION_RUN}:cancel": "cancel run-status", ACTION_SHARE: "status run-status"}


def test_help_and_usage_mistakes_are_answered_in_the_ack(bot: BotProcess, fake_slack: FakeSlack) -> None:
    response = command(bot, fake_slack, "help", "help")
    body = response.json()
    assert body["response_type"] == "ephemeral" and "/wes status RUN_ID" in mrkdwn(body)
    response = command(bot, fake_slack, "status", "usage")
    assert "Usage: /wes status RUN_ID" in mrkdwn(response.json())
    response = command(bot, fake_slack, "stauts x", "usage")
    assert "Unknown subcommand" in mrkdwn(response.json())


def test_details_button_from_a_status_reply(bot: BotProcess, fake_slack: FakeSlack, fake_wes: FakeWes) -> None:
    fake_wes.add_run("run-det", "EXECUTOR_ERROR", exit_code=2,
                     request={"workflow_url": "https://example.org/wf.cwl", "workflow_type": "CWL",
                              "workflow_type_version": "v1.0", "workflow_params": {"x": 1}})
    assert click(bot, fake_slack, f"{ACTION_RUN}:details", "details run-det", "det").status_code == 200
    message = answer(fake_slack, "det")
    text = mrkdwn(message)
    assert "EXECUTOR_ERROR (exit 2)" in text and "wf.cwl" in text
    assert message["response_type"] == "ephemeral" and message["replace_original"] is False


def test_share_posts_in_channel_and_names_who_shared(bot: BotProcess, fake_slack: FakeSlack,
                                                     fake_wes: FakeWes) -> None:
    fake_wes.add_run("run-share", "COMPLETE")
    click(bot, fake_slack, ACTION_SHARE, "status run-share", "share", user_id="U777")
    message = answer(fake_slack, "share")
    assert message["response_type"] == "in_channel"
    assert "<@U777>" in mrkdwn(message) and ACTION_SHARE not in buttons(message)


def test_next_page_replaces_the_message(bot: BotProcess, fake_slack: FakeSlack, fake_wes: FakeWes) -> None:
    fake_wes.many_runs(60, prefix="page")
    command(bot, fake_slack, "runs", "runs1")
    first = answer(fake_slack, "runs1")
    value = buttons(first)[ACTION_PAGE]
    click(bot, fake_slack, ACTION_PAGE, value, "runs2")
    second = answer(fake_slack, "runs2")
    assert second["replace_original"] is True
    assert mrkdwn(first) != mrkdwn(second)


def test_tasks_and_hostile_task_names(bot: BotProcess, fake_slack: FakeSlack, fake_wes: FakeWes) -> None:
    fake_wes.add_run("run-tasks", "EXECUTOR_ERROR", task_logs=[
        make_task("t1", name="<!channel> align <@U999>", exit_code=1),
        make_task("t2", name="ok", exit_code=0),
    ])
    command(bot, fake_slack, "tasks run-tasks failed", "tasks")
    message = answer(fake_slack, "tasks")
    text = mrkdwn(message)
    assert "&lt;!channel&gt; align &lt;@U999&gt;" in text
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "failed (exit 1)" in text and "`ok`" not in text


def test_unknown_run_and_html_errors_are_one_sentence(bot: BotProcess, fake_slack: FakeSlack,
                                                       fake_wes: FakeWes) -> None:
    command(bot, fake_slack, "status no-such-run", "missing")
    text = mrkdwn(answer(fake_slack, "missing"))
    assert "no-such-run not found" in text
    fake_wes.overrides["/runs/run-html/status"] = html_error(502)
    command(bot, fake_slack, "status run-html", "html")
    text = mrkdwn(answer(fake_slack, "html"))
    assert "HTML page" in text and "<html" not in text.lower() and "Traceback" not in text


def test_hostile_button_value_cannot_reach_another_endpoint(bot: BotProcess, fake_slack: FakeSlack,
                                                            fake_wes: FakeWes) -> None:
    read_at_start = fake_wes.request_paths().count("/service-info")  # the start-up check reads it once
    click(bot, fake_slack, ACTION_RUN, "status ../service-info", "hostile")
    text = mrkdwn(answer(fake_slack, "hostile"))
    assert "not found" in text or "not a valid run id" in text
    assert [p for p in fake_wes.request_paths() if p.endswith("/service-info")] == ["/service-info"] * read_at_start
    click(bot, fake_slack, ACTION_RUN, "frobnicate", "hostile2")
    assert "no longer valid" in mrkdwn(answer(fake_slack, "hostile2"))


def test_slow_wes_shows_looking_up_first_then_replaces_it(bot: BotProcess, fake_slack: FakeSlack,
                                                          fake_wes: FakeWes) -> None:
    fake_wes.add_run("run-slow", "RUNNING")
    fake_wes.delays["/runs/run-slow/status"] = 2.5
    started = time.monotonic()
    response = command(bot, fake_slack, "status run-slow", "slow")
    assert response.status_code == 200 and time.monotonic() - started < 2.0  # acked before WES answered
    fake_slack.wait_for_response("slow", count=2, timeout=10)
    first, second = fake_slack.responses_to("slow")
    assert "Looking up run" in first["text"]
    assert second["replace_original"] is True and "*RUNNING*" in mrkdwn(second)


def test_twenty_slow_lookups_do_not_delay_the_next_ack(bot: BotProcess, fake_slack: FakeSlack,
                                                       fake_wes: FakeWes) -> None:
    fake_wes.add_run("run-busy", "RUNNING")
    fake_wes.delays["/runs/run-busy/status"] = 3.0
    with ThreadPoolExecutor(max_workers=21) as pool:
        slow = [pool.submit(command, bot, fake_slack, "status run-busy", f"busy{i}") for i in range(20)]
        time.sleep(0.5)  # the 20 lookups are now waiting on WES
        started = time.monotonic()
        last = command(bot, fake_slack, "status run-busy", "busy-last")
        ack_seconds = time.monotonic() - started
        assert all(f.result().status_code == 200 for f in slow)
    assert last.status_code == 200
    assert ack_seconds < 1.0, ack_seconds  # far inside Slack's 3-second limit
    for i in range(20):
        fake_slack.wait_for_response(f"busy{i}", count=2, timeout=15)


def test_a_failing_response_url_does_not_break_the_bot(bot: BotProcess, fake_slack: FakeSlack,
                                                       fake_wes: FakeWes) -> None:
    fake_wes.add_run("run-ok", "COMPLETE")
    post(bot, slash_command_payload("status run-ok", response_url="http://127.0.0.1:9/respond/refused"))
    time.sleep(0.5)
    command(bot, fake_slack, "status run-ok", "after")
    assert "*COMPLETE*" in mrkdwn(answer(fake_slack, "after"))
    assert "Traceback" not in bot.log_text()


def test_sigterm_stops_within_five_seconds(fake_wes: FakeWes, fake_slack: FakeSlack) -> None:
    proc = BotProcess(wes_url=fake_wes.url, slack_api_url=fake_slack.api_url, http=True)
    proc.wait_http_ready()
    fake_wes.add_run("run-term", "RUNNING")
    fake_wes.delays["/runs/run-term/status"] = 8  # a lookup in flight that will not finish in time
    command(proc, fake_slack, "status run-term", "term")
    time.sleep(0.3)
    code = proc.stop()
    assert code == 0, proc.log_text()
    assert proc.exit_seconds is not None and proc.exit_seconds < 5.0
    assert "Traceback" not in proc.log_text()


def test_no_secret_reaches_the_log_or_slack_even_at_debug(fake_slack: FakeSlack) -> None:
    with FakeWes(auth=("alice", "wes-pass-123")) as wes:
        wes.add_run("run-auth", "RUNNING")
        proc = BotProcess(wes_url=wes.url, slack_api_url=fake_slack.api_url, http=True,
                          wes_auth="alice:wes-pass-123", extra_env={"WESBOT_LOG_LEVEL": "debug"})
        try:
            proc.wait_http_ready()
            command(proc, fake_slack, "status run-auth", "auth-ok")
            assert "*RUNNING*" in mrkdwn(answer(fake_slack, "auth-ok"))
            wes.auth = ("alice", "rotated-password")  # the server now rejects wesbot's credentials
            command(proc, fake_slack, "status run-auth", "auth-bad")
            message = answer(fake_slack, "auth-bad")
            assert "check WES_AUTH" in message["text"]
        finally:
            proc.stop()
    log = proc.log_text()
    assert "run-auth" in log  # debug logging really was on
    for secret in ("wes-pass-123", "xoxb-test", "test-signing-secret", "YWxpY2U6d2VzLXBhc3MtMTIz"):
        assert secret not in log, secret
        assert secret not in json.dumps(fake_slack.responses)
