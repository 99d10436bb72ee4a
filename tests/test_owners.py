"""The person who started the run (issue 13): `WESBOT_OWNER_TAG` names the run tag holding their email address or
Slack user id, and channel-watch notifications, deadline alerts and reports mention them. An address that
matches no Slack user is named as text, never guessed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes
from tests.fakes.watching import FakeClock, RecordingPoster, StubWes
from wesbot.commands import UsageError, parse
from wesbot.config import parse_owner_tag
from wesbot.report import read_report
from wesbot.slack.owners import OwnerDirectory, owner_mention, owner_of, resolve_owners
from wesbot.slack.report_view import report_message
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore
from wesbot.watcher import Watcher, WatcherSettings


@pytest.mark.parametrize(("value", "mention"), [
    ("U12345", "<@U12345>"),
    ("W0ABC", "<@W0ABC>"),
    ("alice@example.org", "<wesbot-owner|alice@example.org>"),
    ("alice", "`alice`"),
    ("<!channel>", "`&lt;!channel&gt;`"),
    ("<wesbot-owner|eve@example.org>", "`&lt;wesbot-owner|eve@example.org&gt;`"),  # WES cannot forge one
    (None, None),
])
def test_the_owner_is_named_by_id_by_email_or_as_text(value: str | None, mention: str | None) -> None:
    assert owner_mention(value) == mention


@pytest.mark.parametrize(("tags", "tag", "owner"), [
    ({"owner": "alice@example.org"}, "owner", "alice@example.org"),
    ({"owner": "  "}, "owner", None), ({"other": "x"}, "owner", None), ({"owner": "x"}, None, None),
    ({}, "owner", None),
])
def test_the_owner_comes_from_the_configured_tag(tags: dict[str, str], tag: str | None, owner: str | None) -> None:
    assert owner_of(tags, tag) == owner


@pytest.mark.parametrize("bad", ["has space", "a" * 101, "<x>"])
def test_the_owner_tag_setting_is_a_tag_key(bad: str) -> None:
    with pytest.raises(ValueError, match="must be a tag key"):
        parse_owner_tag(bad)


def test_delivery_turns_an_address_into_a_mention_or_leaves_it_as_text() -> None:
    message = {"text": "ended (started by <wesbot-owner|alice@example.org>)",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "by <wesbot-owner|bob@example.org>"}}]}
    known = {"alice@example.org": "UALICE"}
    resolved = resolve_owners(message, known.get)
    assert resolved["text"] == "ended (started by <@UALICE>)"
    assert resolved["blocks"][0]["text"]["text"] == "by bob@example.org"
    assert "wesbot-owner" not in json.dumps(resolve_owners(message, None))


def test_addresses_are_asked_of_slack_once_an_hour() -> None:
    asked: list[str] = []
    clock = FakeClock()

    def find(email: str) -> str | None:
        asked.append(email)
        return None

    directory = OwnerDirectory(find, clock=clock.monotonic)
    for _ in range(3):
        assert directory("Alice@Example.org") is None
    clock.advance(3601)
    directory("alice@example.org")
    assert asked == ["Alice@Example.org", "alice@example.org"]


def test_a_channel_watch_and_a_deadline_alert_mention_the_owner(store: WatchStore, clock: FakeClock) -> None:
    start = datetime.fromtimestamp(clock.now() - 7200, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wes = StubWes({"r1": "RUNNING", "r2": "RUNNING"}, start_times={"r2": start},
                  tags={"r1": {"owner": "alice@example.org"}, "r2": {"owner": "U0BOB"}})
    poster = RecordingPoster()
    watches = WatchesStore(store)
    watches.add(channel_id="C1", kind="failed", tag_key="", tag_value="", user_id="U1", now=clock.now())
    watches.add(channel_id="C2", kind="long", tag_key="", tag_value="", user_id="U1", now=clock.now(), after=3600)
    watcher = Watcher(store, wes, poster, host="wes.test", clock=clock, watches=watches, owner_tag="owner",  # type: ignore[arg-type]
                      owners={"alice@example.org": "UALICE"}.get,
                      settings=WatcherSettings(poll_seconds=30, post_concurrency=1))
    for _ in range(3):
        watcher.step()
        clock.advance(30)
    wes.states["r1"] = "EXECUTOR_ERROR"
    for _ in range(3):
        watcher.step()
        clock.advance(30)
    by_channel = {p.channel: p.message for p in poster.posts}
    assert "*Started by:* <@UALICE>" in json.dumps(by_channel["C1"]["blocks"])
    assert by_channel["C1"]["text"].endswith("(started by <@UALICE>)")
    assert "*Started by:* <@U0BOB>" in json.dumps(by_channel["C2"]["blocks"])


def test_the_report_names_who_started_each_failure() -> None:
    now = 1_800_000_000.0
    stamp = datetime.fromtimestamp(now - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wes = StubWes({"bad": "EXECUTOR_ERROR"}, start_times={"bad": stamp}, end_times={"bad": stamp},
                  tags={"bad": {"owner": "carol@example.org"}})
    message = report_message(read_report(wes, None, window=86400, now=now, owner_tag="owner"), host="h")
    resolved = resolve_owners(message, {"carol@example.org": "UCAROL"}.get)
    assert "started by <@UCAROL>" in json.dumps(resolved["blocks"])


def owner_bot(wes: FakeWes, slack: FakeSlack, workdir: str) -> BotProcess:
    """The real bot with WESBOT_OWNER_TAG=owner, and Slack knowing alice by her email address."""
    slack.users["UALICE"] = {"id": "UALICE", "name": "alice", "profile": {"email": "alice@example.org"}}
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3", "WESBOT_OWNER_TAG": "owner"})
    bot.wait_http_ready()
    return bot


def test_end_to_end_the_owner_of_a_failed_run_is_mentioned(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("r1", "RUNNING", tags={"owner": "alice@example.org"})
    wes.add_run("r2", "RUNNING", tags={"owner": "nobody@example.org"})
    bot = owner_bot(wes, slack, workdir)
    try:
        assert "set a channel watch" in slash(bot, slack, "watch failed", name="watch")["text"]
        time.sleep(1.5)  # the watch becomes active at its first sweep
        wes.set_state("r1", "EXECUTOR_ERROR", exit_code=1)
        wes.set_state("r2", "EXECUTOR_ERROR", exit_code=1)

        def ended() -> list[dict[str, object]]:
            return [c["args"] for c in slack.calls_to("chat.postMessage") if " ended " in str(c["args"].get("text"))]

        slack.wait_for(lambda: len(ended()) >= 2 or None, timeout=15, what="two notifications")
        texts = {str(args["text"]).split()[1]: str(args["text"]) for args in ended()}
        assert texts["r1"].endswith("(started by <@UALICE>)")
        assert texts["r2"].endswith("(started by nobody@example.org)")  # named as text, never guessed
    finally:
        assert bot.stop() == 0


@pytest.mark.parametrize(("text", "kind", "mine"), [
    ("watch mine", "finished", True), ("watch failed mine", "failed", True), ("watch mine failed", "failed", True),
    ("unwatch mine", "finished", True), ("watch failed", "failed", False),
])
def test_watch_mine_is_every_run_i_started(text: str, kind: str, mine: bool) -> None:
    command = parse(text)
    assert (command.watch_kind, command.mine) == (kind, mine)
    assert parse(command.text()).mine == mine


def test_mine_is_its_own_filter() -> None:
    with pytest.raises(UsageError, match="without `tag KEY=VALUE`"):
        parse("watch mine tag p=x")


def test_end_to_end_watch_mine_sends_my_runs_to_me(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("mine-by-email", "RUNNING", tags={"owner": "alice@example.org"})
    wes.add_run("mine-by-id", "RUNNING", tags={"owner": "UALICE"})
    wes.add_run("theirs", "RUNNING", tags={"owner": "bob@example.org"})
    bot = owner_bot(wes, slack, workdir)
    try:
        refused = slash(bot, slack, "watch failed mine", channel="C1", user="UALICE", name="in-channel")
        assert "direct messages with wesbot" in refused["text"]
        reply = slash(bot, slack, "watch failed mine", channel="D1", user="UALICE", name="dm")
        assert "owner=UALICE" in reply["text"] and "owner=alice@example.org" in reply["text"]
        time.sleep(1.5)  # the watches become active at their first sweep
        for run_id in ("mine-by-email", "mine-by-id", "theirs"):
            wes.set_state(run_id, "EXECUTOR_ERROR", exit_code=1)

        def to_me() -> list[str]:
            return [str(c["args"]["text"]).split()[1] for c in slack.calls_to("chat.postMessage")
                    if c["args"].get("channel") == "D1" and " ended " in str(c["args"].get("text"))]

        slack.wait_for(lambda: len(to_me()) >= 2 or None, timeout=15, what="my two runs")
        time.sleep(1)
        assert sorted(to_me()) == ["mine-by-email", "mine-by-id"]
    finally:
        assert bot.stop() == 0
