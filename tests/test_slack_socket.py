"""End to end in Socket Mode: the real `wesbot serve` process dials a fake `apps.connections.open`, gets a
ws://127.0.0.1 URL, and receives slash-command and button envelopes over a real WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.botproc import BotProcess, final_answer
from tests.fakes.fake_slack import FakeSlack, block_actions_payload, slash_command_payload
from tests.fakes.fake_wes import FakeWes
from wesbot.slack.blocks import ACTION_PAGE, ACTION_SHARE


@pytest.fixture(scope="module")
def fake_wes() -> Iterator[FakeWes]:
    with FakeWes() as wes:
        yield wes


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture(scope="module")
def bot(fake_wes: FakeWes, fake_slack: FakeSlack) -> Iterator[BotProcess]:
    proc = BotProcess(wes_url=fake_wes.url, slack_api_url=fake_slack.api_url, http=False)
    try:
        fake_slack.wait_connected(timeout=20)
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, proc.log_text()
        assert proc.exit_seconds is not None and proc.exit_seconds < 5.0


def test_it_connects_with_the_app_token(bot: BotProcess, fake_slack: FakeSlack) -> None:
    opened = fake_slack.calls_to("apps.connections.open")
    assert opened and opened[0]["token"] == "xapp-1-test"
    assert fake_slack.calls_to("auth.test")[0]["token"] == "xoxb-test"


def test_slash_command_is_acked_and_answered(bot: BotProcess, fake_slack: FakeSlack, fake_wes: FakeWes) -> None:
    fake_wes.add_run("sock-1", "QUEUED")
    envelope = fake_slack.send_envelope(
        "slash_commands", slash_command_payload("status sock-1", response_url=fake_slack.response_url("s1")))
    ack = fake_slack.wait_for_ack(envelope, timeout=5)
    assert not ack.get("payload")  # an empty ack; the answer follows through response_url
    message = final_answer(fake_slack, "s1")
    assert message["response_type"] == "ephemeral" and "*QUEUED*" in json.dumps(message["blocks"])


def test_help_comes_back_in_the_ack(bot: BotProcess, fake_slack: FakeSlack) -> None:
    envelope = fake_slack.send_envelope("slash_commands", slash_command_payload("help"))
    ack = fake_slack.wait_for_ack(envelope, timeout=5)
    assert "/wes tasks RUN_ID" in json.dumps(ack["payload"])


def test_buttons_work_over_socket_mode(bot: BotProcess, fake_slack: FakeSlack, fake_wes: FakeWes) -> None:
    fake_wes.many_runs(40, prefix="sockpage")
    envelope = fake_slack.send_envelope(
        "slash_commands", slash_command_payload("runs", response_url=fake_slack.response_url("p1")))
    fake_slack.wait_for_ack(envelope, timeout=5)
    first = final_answer(fake_slack, "p1")
    values = {e["action_id"]: e["value"] for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]}
    envelope = fake_slack.send_envelope(
        "interactive",
        block_actions_payload(ACTION_PAGE, values[ACTION_PAGE], response_url=fake_slack.response_url("p2")))
    fake_slack.wait_for_ack(envelope, timeout=5)
    second = final_answer(fake_slack, "p2")
    assert second["replace_original"] is True and second["blocks"] != first["blocks"]
    envelope = fake_slack.send_envelope(
        "interactive",
        block_actions_payload(ACTION_SHARE, values[ACTION_SHARE], response_url=fake_slack.response_url("p3"),
                              user_id="U555"))
    shared = final_answer(fake_slack, "p3")
    assert shared["response_type"] == "in_channel" and "<@U555>" in json.dumps(shared["blocks"])


def test_wes_down_is_one_sentence(fake_slack: FakeSlack) -> None:
    with FakeSlack() as slack:
        proc = BotProcess(wes_url="http://127.0.0.1:9/ga4gh/wes/v1", slack_api_url=slack.api_url, http=False)
        try:
            slack.wait_connected(timeout=20)
            slack.send_envelope("slash_commands",
                                slash_command_payload("details x", response_url=slack.response_url("down")))
            text = json.dumps(final_answer(slack, "down"))
            assert "Could not connect to the WES server at 127.0.0.1:9 (connection refused)." in text
            assert "Traceback" not in text
        finally:
            assert proc.stop() == 0
