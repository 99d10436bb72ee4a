"""`/wes subscribe` and `/wes watch` in a channel where wesbot cannot post say so at once, with the fix, and store
nothing (issue 11), instead of confirming and then failing by DM."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes
from wesbot.slack.reach import refusal

PRIVATE_OUT = {"id": "G1", "is_channel": False, "is_group": True, "is_private": True, "is_member": False}
PRIVATE_IN = {**PRIVATE_OUT, "is_member": True}
PUBLIC_OUT = {"id": "C2", "is_channel": True, "is_private": False, "is_member": False}
ARCHIVED = {"id": "C3", "is_channel": True, "is_archived": True, "is_member": True}
OWN_DM = {"id": "D1", "is_im": True, "user": "U1"}
GROUP_DM_OUT = {"id": "G2", "is_mpim": True, "is_private": True, "is_member": False}
ALL_SCOPES = ["chat:write", "chat:write.public"]


@pytest.mark.parametrize(("status", "data", "scopes", "expected"), [
    # It can post: a channel it is in, its own DM, a public channel thanks to chat:write.public.
    (200, {"ok": True, "channel": PRIVATE_IN}, ALL_SCOPES, None),
    (200, {"ok": True, "channel": OWN_DM}, ALL_SCOPES, None),
    (200, {"ok": True, "channel": PUBLIC_OUT}, ALL_SCOPES, None),
    (200, {"ok": True, "channel": PUBLIC_OUT}, None, None),  # no scopes header: Slack did not say
    # It cannot: refused with what to do.
    (200, {"ok": True, "channel": PRIVATE_OUT}, ALL_SCOPES, "/invite @wesbot"),
    (200, {"ok": True, "channel": GROUP_DM_OUT}, ALL_SCOPES, "/invite @wesbot"),
    (200, {"ok": True, "channel": PUBLIC_OUT}, ["chat:write"], "chat:write.public"),
    (200, {"ok": True, "channel": ARCHIVED}, ALL_SCOPES, "archived"),
    (200, {"ok": False, "error": "channel_not_found"}, ALL_SCOPES, "/invite @wesbot"),
    (200, {"ok": False, "error": "is_archived"}, ALL_SCOPES, "archived"),
    # Slack cannot tell: go ahead (the watcher's DM fallback still covers it).
    (200, {"ok": False, "error": "missing_scope"}, ["chat:write"], None),
    (200, {"ok": False, "error": "ratelimited"}, ALL_SCOPES, None),
    (429, {}, None, None),
    (500, "oops", None, None),
    (0, {"error": "connection error (ConnectError)"}, None, None),
    (200, {"ok": True, "channel": "not an object"}, ALL_SCOPES, None),
    (200, ["not", "an", "object"], ALL_SCOPES, None),
])
def test_whether_wesbot_can_post_is_read_from_conversations_info(
        status: int, data: Any, scopes: list[str] | None, expected: str | None) -> None:
    answer = refusal(status, data, scopes)
    if expected is None:
        assert answer is None
    else:
        assert answer is not None and expected in answer


def subscriptions(workdir: str) -> int:
    path = Path(workdir) / "wesbot.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM subscriptions").fetchone()[0]) + int(
            db.execute("SELECT COUNT(*) FROM channel_watches").fetchone()[0])


def test_a_private_channel_without_the_bot_is_refused_at_once_and_nothing_is_stored(
        wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("r1", "RUNNING")
    slack.channels["G1"] = PRIVATE_OUT
    slack.channels["C3"] = ARCHIVED
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3"})
    bot.wait_http_ready()
    try:
        reply = slash(bot, slack, "subscribe r1", channel="G1")
        assert "not in this private conversation" in reply["text"] and "/invite @wesbot" in reply["text"]
        assert "Nothing was stored" in reply["text"] and reply["response_type"] == "ephemeral"
        watch = slash(bot, slack, "watch failed", channel="G1", name="watch")
        assert "/invite @wesbot" in watch["text"] and watch["response_type"] == "ephemeral"
        assert "archived" in slash(bot, slack, "subscribe r1", channel="C3", name="archived")["text"]
        assert subscriptions(workdir) == 0
        # Where it can post, the same commands go ahead: a channel it is in, and a public one it is not in.
        slack.channels["C2"] = PUBLIC_OUT
        assert "Watching run `r1`" in slash(bot, slack, "subscribe r1", channel="C2", name="public")["text"]
        # When Slack cannot tell (an older installation without the read scopes), nothing is refused.
        slack.fail_next("conversations.info", "missing_scope")
        assert "Watching run `r1`" in slash(bot, slack, "subscribe r1", channel="C1", name="unknown")["text"]
        card = slack.wait_for_call("chat.postMessage", count=2, timeout=10)
        assert card["args"]["channel"] in ("C1", "C2")
        assert subscriptions(workdir) == 2
    finally:
        assert bot.stop() == 0
    assert {c["args"]["channel"] for c in slack.calls_to("chat.postMessage")} == {"C1", "C2"}
    asked = [c["args"]["channel"] for c in slack.calls_to("conversations.info")]
    assert {"G1", "C3", "C2", "C1"} <= set(asked)
