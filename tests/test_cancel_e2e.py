"""Cancelling end to end: the real `wesbot serve` (HTTP mode and Socket Mode), signed block_actions, the fake
WES and the fake Slack on loopback."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.botproc import BotProcess, final_answer, post_signed
from tests.fakes.fake_slack import (
    FakeSlack,
    block_actions_payload,
    slash_command_payload,
)
from tests.fakes.fake_wes import FakeWes, html_error
from wesbot.slack.blocks import ACTION_CANCEL, ACTION_KEEP

FAST = {"WESBOT_POLL_SECONDS": "0.3", "WESBOT_CANCEL_TIMEOUT": "3"}


@pytest.fixture
def bot(wes: FakeWes, slack: FakeSlack) -> Iterator[BotProcess]:
    proc = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True,
                      extra_env={**FAST, "WESBOT_CANCELERS": "U1,U2,S100"})
    slack.usergroups["S100"] = ["U3"]
    try:
        proc.wait_http_ready()
        yield proc
    finally:
        proc.stop()


def post(bot: BotProcess, payload: dict[str, Any]) -> None:
    assert post_signed(bot, payload).status_code == 200


answer = final_answer


def click(bot: BotProcess, slack: FakeSlack, action: str, value: str, name: str, user: str = "U1") -> None:
    post(bot, block_actions_payload(action, value, user_id=user, response_url=slack.response_url(name)))


def channel_messages(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c["args"] for c in slack.calls_to("chat.postMessage") if c["response"].get("ok")]


def test_cancel_confirm_follow_and_audit(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("c1", "RUNNING", request={"workflow_url": "https://x/align.cwl", "workflow_type": "CWL",
                                        "workflow_type_version": "v1.0"})
    post(bot, slash_command_payload("cancel c1", user_id="U1", response_url=slack.response_url("prompt")))
    prompt = answer(slack, "prompt")
    blocks = json.dumps(prompt["blocks"])
    assert prompt["response_type"] == "ephemeral" and "align.cwl" in blocks and "<@U1>, <@U2>" in blocks
    [cancel_button] = [e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"]
                       if e["action_id"] == ACTION_CANCEL]
    assert cancel_button["style"] == "danger" and cancel_button["confirm"]["style"] == "danger"
    assert wes.cancels == []  # nothing is sent before the click
    click(bot, slack, ACTION_CANCEL, cancel_button["value"], "confirm")
    done = answer(slack, "confirm")
    assert "Cancellation of run `c1` requested" in done["text"] and done["replace_original"] is True
    assert wes.cancels == ["c1"]
    [announcement] = channel_messages(slack)
    assert announcement["channel"] == "C123" and "<@U1> requested cancellation of run `c1` (was RUNNING)" in \
        announcement["text"]
    update = slack.wait_for(lambda: next((c for c in slack.calls_to("chat.update")
                                          if "CANCELED" in c["args"]["text"]), None), timeout=10, what="outcome")
    assert update["args"]["ts"] == slack.calls_to("chat.postMessage")[0]["response"]["ts"]
    post(bot, slash_command_payload("audit c1", user_id="U9", response_url=slack.response_url("audit")))
    audit = json.dumps(answer(slack, "audit")["blocks"])
    assert "confirmed-canceled" in audit and "<@U1>" in audit and "was RUNNING" in audit


def test_double_click_sends_one_cancel_and_names_who(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("c2", "RUNNING")
    wes.cancel_behavior = "noop"
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda u: click(bot, slack, ACTION_CANCEL, "cancel c2", f"dbl-{u}", user=u), ["U1", "U2"]))
    texts = sorted(answer(slack, f"dbl-{u}")["text"] for u in ("U1", "U2"))
    assert wes.cancels == ["c2"]
    assert any("already requested cancellation of run `c2`" in t for t in texts)
    assert any("Cancellation of run `c2` requested" in t for t in texts)


def test_group_member_may_cancel_others_may_not(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("c3", "RUNNING")
    click(bot, slack, ACTION_CANCEL, "cancel c3", "denied", user="U8")
    text = answer(slack, "denied")["text"]
    assert "You may not cancel runs" in text and "<!subteam^S100>" in text and wes.cancels == []
    click(bot, slack, ACTION_CANCEL, "cancel c3", "member", user="U3")
    assert "requested" in answer(slack, "member")["text"] and wes.cancels == ["c3"]


def test_keep_running_and_already_ended(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("c4", "RUNNING")
    click(bot, slack, ACTION_KEEP, "status c4", "keep")
    assert slack.wait_for_response("keep")["delete_original"] is True
    wes.set_state("c4", "COMPLETE")
    post(bot, slash_command_payload("cancel c4", user_id="U1", response_url=slack.response_url("ended")))
    assert "has already ended: *COMPLETE*. Nothing to cancel." in answer(slack, "ended")["text"]
    click(bot, slack, ACTION_CANCEL, "cancel c4", "ended-click", user="U1")  # a stale confirmation: the run ended since
    assert "has already ended" in answer(slack, "ended-click")["text"] and wes.cancels == []


def test_wes_errors_and_a_channel_that_refuses(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    wes.add_run("c5", "RUNNING")
    wes.overrides["/runs/c5/cancel"] = html_error(502)
    click(bot, slack, ACTION_CANCEL, "cancel c5", "html")
    text = answer(slack, "html")["text"]
    assert "The cancel was not sent" in text and "HTML page" in text and "<html" not in text.lower()
    assert channel_messages(slack) == []
    del wes.overrides["/runs/c5/cancel"]
    wes.cancel_behavior = "noop"
    slack.fail_next("chat.postMessage", "not_in_channel")
    click(bot, slack, ACTION_CANCEL, "cancel c5", "refused")
    text = answer(slack, "refused")["text"]
    assert "could not tell the channel (not_in_channel)" in text
    # A server that answers 200 and keeps running is reported as such after the timeout, never as canceled.
    outcome = slack.wait_for(lambda: next((r for r in slack.responses_to("refused")
                                           if "still *RUNNING*" in r.get("text", "")), None), timeout=15)
    assert "CANCELED" not in outcome["text"]


def test_cancel_over_socket_mode(wes: FakeWes, slack: FakeSlack) -> None:
    wes.add_run("c6", "RUNNING")
    with tempfile.TemporaryDirectory() as workdir:
        proc = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=False, workdir=workdir, extra_env=FAST)
        try:
            slack.wait_connected(timeout=20)
            envelope = slack.send_envelope("interactive", block_actions_payload(
                ACTION_CANCEL, "cancel c6", user_id="U4", response_url=slack.response_url("sock")))
            slack.wait_for_ack(envelope, timeout=5)
            assert "requested" in answer(slack, "sock")["text"] and wes.cancels == ["c6"]
            slack.wait_for(lambda: any("CANCELED" in c["args"]["text"] for c in slack.calls_to("chat.update")) or None,
                           timeout=10, what="outcome")
        finally:
            assert proc.stop() == 0


def test_cancelling_a_subscribed_run_is_one_thread(bot: BotProcess, slack: FakeSlack, wes: FakeWes) -> None:
    """The cancel note goes in the run's card thread; the card and the end follow there: no separate post."""
    wes.add_run("c9", "RUNNING")
    post(bot, slash_command_payload("subscribe c9", user_id="U2", response_url=slack.response_url("sub")))
    assert "Watching run" in answer(slack, "sub")["text"]
    card = slack.wait_for_call("chat.postMessage", timeout=10)
    post(bot, slash_command_payload("cancel c9", user_id="U1", response_url=slack.response_url("prompt")))
    [button] = [e for b in answer(slack, "prompt")["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == ACTION_CANCEL]
    click(bot, slack, ACTION_CANCEL, button["value"], "confirm")
    answer(slack, "confirm")
    slack.wait_for(lambda: any("ended" in m.get("text", "") for m in channel_messages(slack)) or None, timeout=15,
                   what="the end of the run")
    messages = channel_messages(slack)
    top_level = [m for m in messages if not m.get("thread_ts")]
    assert top_level == [card["args"]]  # only the card stands in the channel
    note = next(m for m in messages if "requested cancellation" in m.get("text", ""))
    end = next(m for m in messages if "ended" in m.get("text", ""))
    assert note["thread_ts"] == end["thread_ts"] == card["response"]["ts"]
    assert "<@U2>" not in note["text"]  # the subscribers are mentioned once: by the end notification
