"""Delivery on its own: outbox rows and cards queued straight in the store, posted to a recording poster that
answers as Slack would (``classify``), against a fake clock. No WES stub, no polling, no sockets, no sleeps."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.watching import DAY, FakeClock, Post, RecordingPoster, subscribe
from wesbot.slack.poster import PostResult, classify
from wesbot.store.watch import Subscription, WatchStore
from wesbot.watcher import Delivery, WatcherSettings, Workers
from wesbot.watcher.delivery import TOKEN_RETRY

SETTINGS = WatcherSettings(pace_seconds=1.0, post_concurrency=1)


def make(store: WatchStore, poster: RecordingPoster, clock: FakeClock) -> Delivery:
    return Delivery(store, poster, Workers(threading.Event()), host="wes.test", settings=SETTINGS, clock=clock)


def slack_error(error: str) -> PostResult:
    """What Slack's HTTP 200 ``{"ok": false, "error": ...}`` becomes."""
    return classify(200, {}, {"ok": False, "error": error})


def notification(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def ended(delivery: Delivery, store: WatchStore, clock: FakeClock, run_id: str, channel: str = "C1",
          users: tuple[str, ...] = ("U1",)) -> Subscription:
    """A run subscribed to in ``channel`` whose card is posted, then ended: its notification is owed in the card's
    thread. The channel's pacing slot after the card has passed."""
    for user in users:
        subscribe(store, clock, run_id, channel, user)
    delivery.deliver()
    [sub] = store.subscriptions.of_run(run_id)
    assert sub.card_ts is not None
    owed = {s.id: notification(f"{s.run_id} ended *COMPLETE*") for s in store.subscriptions.of_run(run_id)}
    store.runs.record_terminal(run_id, state="COMPLETE", now=clock.now(), exit_code=0, start_time=None, end_time=None,
                               owed=owed)
    clock.advance(SETTINGS.pace_seconds)
    return sub


def queue(store: WatchStore, clock: FakeClock, channel: str, text: str) -> None:
    """A message for the channel itself (not a thread), as a channel watch or a DM queues it."""
    store.outbox.notice_once(f"test:{channel}:{text}", channel_id=channel, payload={"text": text}, now=clock.now())


def posted(poster: RecordingPoster, channel: str | None = None) -> list[Post]:
    """What reached Slack (not the failed attempts, not card updates)."""
    return [p for p in poster.posts if p.method == "post" and channel in (None, p.channel)]


def texts(poster: RecordingPoster, channel: str) -> list[str]:
    return [str(p.message.get("text")) for p in posted(poster, channel)]


def attempts(poster: RecordingPoster, channel: str) -> list[Post]:
    """Every post tried in ``channel``, whatever Slack answered."""
    return [p for p in poster.posts if p.method in ("post", "failed") and p.channel == channel]


def outbox(store: WatchStore) -> dict[str, tuple[str, str | None]]:
    """dedupe_key → (status, error) of every outbox row."""
    return {row["dedupe_key"]: (row["status"], row["error"]) for row in store.db["outbox"].rows}


def test_a_429_holds_its_channel_for_retry_after_while_another_channel_posts(
        store: WatchStore, clock: FakeClock, poster: RecordingPoster) -> None:
    delivery = make(store, poster, clock)
    sub = ended(delivery, store, clock, "r1", "C1")
    queue(store, clock, "C2", "for C2")
    poster.script["C1"] = [classify(429, {"Retry-After": "20"}, {})]
    delivery.deliver()
    assert texts(poster, "C2") == ["for C2"]  # the other channel is not held up
    assert [p for p in posted(poster, "C1") if p.thread_ts] == []
    for _ in range(19):
        clock.advance(1)
        delivery.deliver()
        assert [p for p in posted(poster, "C1") if p.thread_ts] == []
    assert len(attempts(poster, "C1")) == 2  # the card, then the one refused try: nothing before Retry-After
    clock.advance(1)
    delivery.deliver()
    [note] = [p for p in posted(poster, "C1") if p.thread_ts]
    assert note.thread_ts == sub.card_ts and note.broadcast is True and "ended *COMPLETE*" in note.message["text"]


def test_a_5xx_is_retried_with_backoff_and_sent_once(store: WatchStore, clock: FakeClock,
                                                     poster: RecordingPoster) -> None:
    queue(store, clock, "C1", "r1 ended *COMPLETE*")
    poster.script["C1"] = [classify(503, {}, {})] * 4
    delivery = make(store, poster, clock)
    start, tried, before = clock.now(), [], 0
    for _ in range(60):
        delivery.deliver()
        if len(attempts(poster, "C1")) > before:
            tried.append(clock.now() - start)
            before = len(attempts(poster, "C1"))
        clock.advance(1)
    assert tried == [0, 2, 6, 14, 30]  # waits of 2, 4, 8 and 16 s, then through
    assert texts(poster, "C1") == ["r1 ended *COMPLETE*"]
    assert store.outbox.pending_count() == 0


def test_blocks_slack_refuses_fall_back_to_text_once(store: WatchStore, clock: FakeClock,
                                                     poster: RecordingPoster) -> None:
    delivery = make(store, poster, clock)
    ended(delivery, store, clock, "r1", "C1")
    poster.script["C1"] = [slack_error("invalid_blocks")]
    assert delivery.deliver().sent == 1
    [note] = [p for p in posted(poster, "C1") if p.thread_ts]
    assert "blocks" not in note.message and "COMPLETE" in note.message["text"]
    clock.advance(3600)
    delivery.deliver()
    assert len([p for p in poster.posts if p.thread_ts]) == 2  # the refused try and its fallback, no more


def test_the_text_fallback_of_a_notification_is_still_broadcast(store: WatchStore, clock: FakeClock,
                                                                poster: RecordingPoster) -> None:
    delivery = make(store, poster, clock)
    ended(delivery, store, clock, "r1", "C1")
    poster.script["C1"] = [slack_error("invalid_blocks")]
    delivery.deliver()
    [note] = [p for p in posted(poster, "C1") if p.thread_ts]
    assert note.broadcast is True


def test_a_message_refused_as_blocks_and_as_text_fails_and_is_not_retried(store: WatchStore, clock: FakeClock,
                                                                          poster: RecordingPoster) -> None:
    delivery = make(store, poster, clock)
    ended(delivery, store, clock, "r1", "C1")
    poster.script["C1"] = [slack_error("invalid_blocks"), slack_error("msg_too_long")]
    assert delivery.deliver().failed == 1
    for _ in range(5):
        clock.advance(600)
        delivery.deliver()
    assert [p.method for p in poster.posts if p.thread_ts] == ["failed", "failed"]
    assert outbox(store)["end:r1:COMPLETE:C1"] == ("failed", "msg_too_long")
    assert store.outbox.pending_count() == 0


@pytest.mark.parametrize("refused", ["card", "notice"])
def test_not_in_channel_fails_the_channels_subscriptions_and_dms_each_subscriber(
        store: WatchStore, clock: FakeClock, poster: RecordingPoster, refused: str) -> None:
    subscribe(store, clock, "r1", "C9", "U1")
    subscribe(store, clock, "r1", "C9", "U2")
    subscribe(store, clock, "r2", "C9", "U3")
    if refused == "notice":
        queue(store, clock, "C9", "a channel watch's message")  # sent before the cards
    poster.script["C9"] = [slack_error("not_in_channel")]
    delivery = make(store, poster, clock)
    for _ in range(5):
        delivery.deliver()
        clock.advance(2)
    subs = [s for run in ("r1", "r2") for s in store.subscriptions.of_run(run, active_only=False)]
    assert [(s.status, s.reason) for s in subs] == [("failed", "not_in_channel")] * 2
    assert len(attempts(poster, "C9")) == 1  # nothing more is tried in that channel
    dms = {p.channel: str(p.message) for p in posted(poster)}
    assert len(posted(poster)) == 3 and set(dms) == {"U1", "U2", "U3"}
    assert "/invite @wesbot" in dms["U1"] and "`r2`" in dms["U3"]
    assert store.runs.due(clock.now() + DAY) == []  # nothing is watched for that channel any more
    assert store.outbox.pending_count() == 0


def test_pacing_one_post_a_second_per_channel_in_order_other_channels_in_the_same_round(
        store: WatchStore, clock: FakeClock, poster: RecordingPoster) -> None:
    for text in ("first", "second", "third"):
        queue(store, clock, "C1", text)
    queue(store, clock, "C2", "for C2")
    queue(store, clock, "C3", "for C3")
    delivery = make(store, poster, clock)
    assert delivery.deliver().sent == 3
    assert [(p.channel, p.message["text"]) for p in poster.posts] == [
        ("C1", "first"), ("C2", "for C2"), ("C3", "for C3")]
    clock.advance(0.5)
    assert delivery.deliver().sent == 0
    clock.advance(0.5)
    delivery.deliver()
    assert texts(poster, "C1") == ["first", "second"]
    clock.advance(1)
    delivery.deliver()
    assert texts(poster, "C1") == ["first", "second", "third"] and len(poster.posts) == 5


def test_cards_are_paced_per_channel(store: WatchStore, clock: FakeClock, poster: RecordingPoster) -> None:
    for i in range(3):
        subscribe(store, clock, f"r{i}", "C1")
    subscribe(store, clock, "r0", "C2")
    delivery = make(store, poster, clock)
    delivery.deliver()
    assert [p.channel for p in poster.posts] == ["C1", "C2"]  # one post per channel per second
    clock.advance(1)
    delivery.deliver()
    clock.advance(1)
    delivery.deliver()
    assert [p.channel for p in poster.posts] == ["C1", "C2", "C1", "C1"]


@pytest.mark.parametrize(("arrived", "slack_can_tell", "posts"), [
    (True, True, 1),  # found: marked sent, not posted again
    (False, True, 1),  # certainly not there: posted
    (True, False, 2),  # Slack cannot tell: posted again, at least once rather than never
])
def test_a_row_left_sending_by_a_crash_is_looked_up_before_it_is_sent_again(
        store: WatchStore, clock: FakeClock, poster: RecordingPoster, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, arrived: bool, slack_can_tell: bool, posts: int) -> None:
    sub = ended(make(store, poster, clock), store, clock, "r1", "C1")
    [row] = store.outbox.deliverable(clock.now())
    store.outbox.mark_sending(row.id, clock.now())  # ... and the process dies, before or after Slack took the post
    if arrived:
        poster.post(row.channel_id, row.payload, thread_ts=sub.card_ts, key=row.dedupe_key)
    poster.can_look = slack_can_tell
    restarted = make(WatchStore(tmp_path / "w.db"), poster, clock)
    with caplog.at_level(logging.INFO, logger="wesbot.watcher"):
        restarted.deliver()
        clock.advance(5)
        restarted.deliver()
    sent = [p for p in poster.posts if p.key == row.dedupe_key]
    assert len(sent) == posts and all(p.thread_ts == sub.card_ts for p in sent)
    assert store.outbox.pending_count() == 0
    [stored] = [r for r in store.db["outbox"].rows if r["id"] == row.id]
    assert stored["status"] == "sent" and stored["ts"] == sent[-1].ts
    said = " ".join(r.getMessage() for r in caplog.records)
    assert ("had reached Slack before wesbot stopped" in said) == (arrived and slack_can_tell)
    assert ("cannot tell whether it arrived" in said) == (not slack_can_tell)


def test_a_refused_token_keeps_every_row_and_logs_once_then_retries_after_token_retry(
        store: WatchStore, clock: FakeClock, poster: RecordingPoster, caplog: pytest.LogCaptureFixture) -> None:
    for channel in ("C1", "C2"):
        queue(store, clock, channel, f"for {channel}")
        poster.script[channel] = [slack_error("invalid_auth")]
    queue(store, clock, "C1", "second for C1")
    delivery = make(store, poster, clock)
    with caplog.at_level(logging.INFO, logger="wesbot.watcher"):
        delivery.deliver()
        for _ in range(29):
            clock.advance(10)
            delivery.deliver()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "SLACK_BOT_TOKEN" in errors[0].getMessage()
    assert [p.method for p in poster.posts] == ["failed", "failed"]  # one try per channel, then quiet
    assert store.outbox.pending_count() == 3 and {s for s, _ in outbox(store).values()} == {"pending"}
    clock.advance(TOKEN_RETRY - 290)
    delivery.deliver()
    assert texts(poster, "C1") == ["for C1"] and texts(poster, "C2") == ["for C2"]
    clock.advance(1)
    delivery.deliver()
    assert texts(poster, "C1") == ["for C1", "second for C1"] and store.outbox.pending_count() == 0


def _note_for_a_card_not_yet_posted(store: WatchStore, clock: FakeClock) -> Subscription:
    """A run just subscribed to (its card not posted yet), with a note owed in its card's thread."""
    subscribe(store, clock, "r1", "C1")
    [sub] = store.subscriptions.of_run("r1")
    store.outbox.notice_once("unreadable:r1:C1", channel_id="C1", payload={"text": "cannot read r1"}, now=clock.now(),
                      subscription_id=sub.id, in_thread=True)
    return sub


def test_a_note_for_a_card_not_yet_posted_is_never_posted_outside_its_thread(
        store: WatchStore, clock: FakeClock, poster: RecordingPoster) -> None:
    _note_for_a_card_not_yet_posted(store, clock)
    delivery = make(store, poster, clock)
    for _ in range(3):
        delivery.deliver()
        clock.advance(1)
    notes = [p for p in posted(poster) if p.message["text"] == "cannot read r1"]
    assert notes and all(p.thread_ts is not None for p in notes)


def test_a_note_in_a_cards_thread_goes_out_once_the_card_is_posted(store: WatchStore, clock: FakeClock,
                                                                   poster: RecordingPoster) -> None:
    _note_for_a_card_not_yet_posted(store, clock)
    delivery = make(store, poster, clock)
    for _ in range(3):
        delivery.deliver()
        clock.advance(1)
    card, note = posted(poster)
    assert "blocks" in card.message and card.thread_ts is None
    assert note.message["text"] == "cannot read r1" and note.thread_ts == card.ts and note.broadcast is False
