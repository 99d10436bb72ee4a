"""/wes subscriptions: the channel's watches, each with an Unwatch button, next to its subscriptions, each with
an Unsubscribe button, within one Slack message however many there are."""

from __future__ import annotations

from wesbot.commands import parse
from wesbot.results import SubscriptionsResult
from wesbot.slack.blocks import MAX_BLOCKS
from wesbot.slack.replies import render
from wesbot.store.subscriptions import Subscription
from wesbot.store.watches import ChannelWatch


def watch(kind: str, tag: tuple[str, str] = ("", "")) -> ChannelWatch:
    return ChannelWatch(id=1, channel_id="C1", kind=kind, tag_key=tag[0], tag_value=tag[1], created_by="U1",
                        created_at=1_800_000_000, active_from=None)


def sub(i: int) -> Subscription:
    return Subscription(id=i, run_id=f"run-{i}", channel_id="C1", status="active", created_at=1_800_000_000,
                        expires_at=1_800_100_000, workflow=None, card_ts=None, card_version=1, card_synced=0,
                        card_failed=None, reason=None, users=("U2",), state="RUNNING")


def buttons(message: dict) -> list[tuple[str, str]]:
    return [(b["accessory"]["text"]["text"], b["accessory"]["value"]) for b in message["blocks"] if "accessory" in b]


def test_each_watch_has_the_unwatch_button_that_removes_it() -> None:
    result = SubscriptionsResult(command=parse("subscriptions"), channel_id="C1", subscriptions=[sub(1)],
                                 watches=[watch("failed"), watch("finished", ("project", "rnaseq"))])
    message = render(result, host="h")
    assert buttons(message) == [("Unwatch", "unwatch failed"), ("Unwatch", "unwatch tag project=rnaseq finished"),
                                ("Unsubscribe me", "unsubscribe run-1")]
    removed = parse("unwatch tag project=rnaseq finished")
    assert (removed.name, removed.watch_kind, removed.tag) == ("unwatch", "finished", ("project", "rnaseq"))
    assert "set by <@U1>" in str(message["blocks"])


def test_many_watches_and_subscriptions_fit_one_message() -> None:
    result = SubscriptionsResult(command=parse("subscriptions"), channel_id="C1",
                                 subscriptions=[sub(i) for i in range(200)], watches=[watch("failed")] * 30)
    blocks = render(result, host="h")["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    text = str(blocks)
    assert "…and 22 more." in text and "watched in this channel" in text
