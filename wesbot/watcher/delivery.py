"""Delivery: the only part of wesbot's background that talks to Slack. Never calls WES.

It posts what the jobs stored: outbox rows (notifications, notices, digests, DMs), the files owed with them (a
run's timeline picture, in its notification's thread), the run cards (posted, then updated in place), and the
cancel messages (announced, then updated with the outcome). Paced per
channel (one post a second, Slack's own limit), several channels at once, retrying what can be retried
(429 after its Retry-After, 5xx and connection errors with backoff), giving up on permanent errors with a
DM to the subscribers, and backing off for a long while when Slack refuses the token itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .. import observe
from ..routing import server_label
from ..slack.blocks import pin_server
from ..slack.cards import cancel_announcement, cancel_outcome, card, channel_failed_text, notice
from ..slack.owners import resolve_owners
from ..slack.poster import PostResult
from ..store.cancels import Cancel, CancelStore
from ..store.files import FileRow
from ..store.watch import OutboxRow, Subscription, WatchStore
from .base import Clock, WatcherSettings, Workers

logger = logging.getLogger("wesbot.watcher")

# Slack refuses the bot token: try again this often (a person has to fix the token).
TOKEN_RETRY = 300.0
T = TypeVar("T")


# Outbox keys that name a run: "end:RUN:STATE:CHANNEL" (notifications), "gone:RUN:CHANNEL:SUB" and the like
# (notices), "unreadable:RUN:CHANNEL:SINCE". The last two parts never hold a colon; a run id may.
_RUN_KEYS = ("end:", "gone:", "expired:", "unreadable:")


def run_of(row: OutboxRow) -> str | None:
    """The run an outbox row is about (for its log line), or None (a digest, a DM, an auth notice)."""
    prefix, _, rest = row.dedupe_key.partition(":")
    if f"{prefix}:" not in _RUN_KEYS or rest.count(":") < 2:
        return None
    return rest.rsplit(":", 2)[0]


class Poster(Protocol):
    """What delivery needs of Slack (``SlackPoster`` has all of it)."""

    def post(self, channel: str, message: dict[str, Any], *, thread_ts: str | None = None,
             broadcast: bool = False, key: str | None = None) -> PostResult: ...
    def update(self, channel: str, ts: str, message: dict[str, Any]) -> PostResult: ...
    def find_posted(self, channel: str, key: str, *, thread_ts: str | None, oldest: float) -> str | None | bool: ...
    def respond(self, response_url: str, message: dict[str, Any]) -> bool: ...
    def upload_file(self, channel: str, content: bytes, *, filename: str, title: str, thread_ts: str | None = None,
                    comment: str | None = None, on_file_id: Callable[[str], None] | None = None) -> PostResult: ...
    def find_file(self, channel: str, file_id: str, *, thread_ts: str) -> bool | None: ...


@dataclass
class DeliverStats:
    sent: int = 0
    cards: int = 0
    retried: int = 0
    failed: int = 0
    files: int = 0

    def add(self, other: DeliverStats) -> None:
        self.sent += other.sent
        self.cards += other.cards
        self.retried += other.retried
        self.failed += other.failed
        self.files += other.files

    @property
    def busy(self) -> bool:
        return bool(self.sent or self.cards or self.retried or self.failed or self.files)


@dataclass
class Pacing:
    """When each channel may take its next post. Kept in memory only, so in monotonic time: callers give
    durations, never times, and a wall clock set back cannot hold a channel's posts for an hour."""

    clock: Clock
    next_allowed: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ready(self, channel: str) -> bool:
        now = self.clock.monotonic()
        with self.lock:
            return self.next_allowed.get(channel, now) <= now

    def hold(self, channel: str, seconds: float) -> None:
        """No post to ``channel`` for ``seconds`` from now (a longer hold already set stays)."""
        until = self.clock.monotonic() + seconds
        with self.lock:
            self.next_allowed[channel] = max(self.next_allowed.get(channel, until), until)


class PinnedPoster:
    """A poster whose every message has its command buttons bound to one server (see ``pin_server``): with
    several servers, each server's watcher posts through one, so a click acts on the server it came from."""

    def __init__(self, poster: Poster, server: str) -> None:
        self.poster = poster
        self.server = server

    def post(self, channel: str, message: dict[str, Any], *, thread_ts: str | None = None,
             broadcast: bool = False, key: str | None = None) -> PostResult:
        return self.poster.post(channel, pin_server(message, self.server), thread_ts=thread_ts,
                                broadcast=broadcast, key=key)

    def update(self, channel: str, ts: str, message: dict[str, Any]) -> PostResult:
        return self.poster.update(channel, ts, pin_server(message, self.server))

    def find_posted(self, channel: str, key: str, *, thread_ts: str | None, oldest: float) -> str | None | bool:
        return self.poster.find_posted(channel, key, thread_ts=thread_ts, oldest=oldest)

    def respond(self, response_url: str, message: dict[str, Any]) -> bool:
        return self.poster.respond(response_url, pin_server(message, self.server))

    def upload_file(self, channel: str, content: bytes, *, filename: str, title: str, thread_ts: str | None = None,
                    comment: str | None = None, on_file_id: Callable[[str], None] | None = None) -> PostResult:
        return self.poster.upload_file(channel, content, filename=filename, title=title, thread_ts=thread_ts,
                                       comment=comment, on_file_id=on_file_id)

    def find_file(self, channel: str, file_id: str, *, thread_ts: str) -> bool | None:
        return self.poster.find_file(channel, file_id, thread_ts=thread_ts)


class Delivery:
    """``server``: this server's name when there are several (messages name it, buttons are bound to it).
    ``on_ended``: told the users of a subscription once its end notification reached Slack (their Home tabs are
    refreshed); it must not block, and whatever it raises is logged and dropped."""

    def __init__(self, store: WatchStore, poster: Poster, workers: Workers, *, host: str,
                 settings: WatcherSettings, clock: Clock, cancels: CancelStore | None = None,
                 server: str | None = None, run_url: str | None = None,
                 on_ended: Callable[[list[str]], None] | None = None,
                 owners: Callable[[str], str | None] | None = None) -> None:
        self.store = store
        self.owners = owners  # email address -> Slack user id, for the owner mentions (slack.owners)
        self.on_ended = on_ended
        self.poster: Poster = poster if server is None else PinnedPoster(poster, server)
        self.server = server
        self.run_url = run_url  # the server's run-link template: the cards' Open button
        self.workers = workers
        self.host = server_label(server or "", host, several=server is not None)
        self.settings = settings
        self.clock = clock
        self.cancels = cancels
        self.pacing = Pacing(clock)
        self._token_refused_since: float | None = None

    def deliver(self, *, limit: int = 200) -> DeliverStats:
        """Post the cards and the outbox rows that are due, paced per channel. Stops early on ``stop``."""
        stats = DeliverStats()
        self._cancel_messages(stats)
        # Notifications first: they are what people wait for; then the pictures in their threads; card updates
        # take the channel's next slots.
        self._send_outbox(stats, limit)
        self._send_files(stats, limit)
        self._sync_cards(stats)
        return stats

    def owed(self) -> bool:
        """Whether anything is waiting to be posted (the sender thread polls faster then)."""
        return self.store.outbox.pending_count() > 0 or self.store.files.owed() > 0 or bool(
            self.store.subscriptions.cards_to_sync(limit=1)) or (
            self.cancels is not None and bool(self.cancels.to_sync() or self.cancels.to_announce()))

    @property
    def _stopped(self) -> bool:
        return self.workers.stop.is_set()

    # -- the outbox ------------------------------------------------------------------------------------

    def _send_outbox(self, stats: DeliverStats, limit: int) -> None:
        """Post due rows: in each round, the oldest row of every channel that may post now, several channels
        at once (``post_concurrency``); a channel's own rows go out one at a time, in order, paced."""
        done = 0
        while done < limit and not self._stopped:
            firsts: dict[str, OutboxRow] = {}
            for row in self.store.outbox.deliverable(self.clock.now(), limit=1000,
                                                     horizon=self.settings.longest_wait):
                if row.channel_id not in firsts and self.pacing.ready(row.channel_id):
                    firsts[row.channel_id] = row
            batch = list(firsts.values())[: limit - done]
            if not batch:
                break
            self._in_parallel(self._send, batch, stats)
            done += len(batch)

    def _send(self, row: OutboxRow, stats: DeliverStats) -> None:
        thread = row.thread_ts
        broadcast = row.kind == "notification" and thread is not None
        if row.status == "sending" and self._arrived_before(row, thread):
            return
        self.store.outbox.mark_sending(row.id, self.clock.now())
        # Who started a run is named by email in what the jobs stored: a mention from here, where Slack is.
        payload = resolve_owners(row.payload, self.owners) if self.owners is not None else row.payload
        result = self.poster.post(row.channel_id, payload, thread_ts=thread, broadcast=broadcast,
                                  key=row.dedupe_key)
        if not result.ok and result.permanent and not result.channel_error and payload.get("blocks"):
            # A message Slack will not take as blocks: the plain-text fallback still says what happened, where.
            result = self.poster.post(row.channel_id, {"text": payload.get("text", "")}, thread_ts=thread,
                                      broadcast=broadcast, key=row.dedupe_key)
        self.pacing.hold(row.channel_id, self.settings.pace_seconds)
        self._settle(row, result, stats)

    def _arrived_before(self, row: OutboxRow, thread_ts: str | None) -> bool:
        """A previous attempt was cut short (a crash, kill -9): it may have reached Slack. Look before posting."""
        found = self.poster.find_posted(row.channel_id, row.dedupe_key, thread_ts=thread_ts,
                                        oldest=row.created_at - 60)
        if found:
            logger.info("outbox %s (%s) had reached Slack before wesbot stopped", row.id, row.dedupe_key)
            self.store.outbox.mark_sent(row.id, ts=found if isinstance(found, str) else None, now=self.clock.now(),
                                        thread_ts=thread_ts)
            observe.notification(row.kind, row.channel_id, run_of(row), "sent", None)  # when it arrived is unknown
            self._ended(row)
            return True
        if found is None:
            logger.warning("outbox %s (%s) was being sent when wesbot stopped and Slack cannot tell whether "
                           "it arrived; sending it again", row.id, row.dedupe_key)
        return False

    def _settle(self, row: OutboxRow, result: PostResult, stats: DeliverStats) -> None:
        """Record what Slack said of a row: sent, failed for good, or to be retried (and when)."""
        done = self.clock.now()
        error = result.error or "error"
        if result.ok:
            self._token_refused_since = None
            self.store.outbox.mark_sent(row.id, ts=result.ts, now=done, thread_ts=row.thread_ts)
            stats.sent += 1
            # The row was queued when the run's end was seen: its age is the notification's delay.
            observe.notification(row.kind, row.channel_id, run_of(row), "sent", done - row.created_at)
            self._ended(row)
        elif result.permanent:
            self.store.outbox.mark_failed(row.id, error=error)
            if result.channel_error:
                self._channel_failed(row.channel_id, result, done)
            stats.failed += 1
            observe.notification(row.kind, row.channel_id, run_of(row), "given_up", None, error=error)
        elif result.token_error:
            self._token_refused(result)
            self.store.outbox.mark_retry(row.id, not_before=done + TOKEN_RETRY, error=error)
            self.pacing.hold(row.channel_id, TOKEN_RETRY)
            stats.retried += 1
            observe.notification(row.kind, row.channel_id, run_of(row), "retry", None, error=error)
        else:
            self._token_refused_since = None
            wait = result.retry_after or min(2.0 ** min(row.attempts + 1, 12), self.settings.retry_cap)
            self.store.outbox.mark_retry(row.id, not_before=done + wait, error=error)
            if result.retry_after:
                self.pacing.hold(row.channel_id, wait)
            stats.retried += 1
            observe.notification(row.kind, row.channel_id, run_of(row), "retry", None, error=error)

    def _ended(self, row: OutboxRow) -> None:
        """A subscription's end notification reached Slack: tell ``on_ended`` who watched the run. Never lets a
        failure there reach delivery."""
        if self.on_ended is None or row.subscription_id is None or not row.dedupe_key.startswith("end:"):
            return
        try:
            self.on_ended(list(self.store.subscriptions.get(row.subscription_id).users))
        except Exception:
            logger.warning("could not tell who watched run %s that it ended", run_of(row), exc_info=True)

    # -- files ----------------------------------------------------------------------------------------

    def _send_files(self, stats: DeliverStats, limit: int) -> None:
        """Upload the files whose messages were posted, in the same rounds and pacing as the outbox: the oldest
        of each channel that may post now. A failing upload is retried or given up on its own, and never holds up
        a notification (those went first, and a channel's pace is shared)."""
        done = 0
        while done < limit and not self._stopped:
            firsts: dict[str, FileRow] = {}
            for row in self.store.files.due(self.clock.now(), limit=1000, horizon=self.settings.longest_wait):
                if row.channel_id not in firsts and self.pacing.ready(row.channel_id):
                    firsts[row.channel_id] = row
            batch = list(firsts.values())[: limit - done]
            if not batch:
                break
            self._in_parallel(self._upload, batch, stats)
            done += len(batch)

    def _upload(self, row: FileRow, stats: DeliverStats) -> None:
        """Upload one file in its message's thread. An attempt cut short after Slack gave the file an id (a crash,
        kill -9) may have shared it: it is looked for in the thread first, and uploaded again only when it is not
        there, or when Slack cannot tell (then it may show twice rather than never)."""
        if row.thread_ts is None:
            self.store.files.mark_failed(row.outbox_id, error="the thread of its message is unknown")
            return
        files = self.store.files
        if row.status == "uploading" and row.file_id:
            found = self.poster.find_file(row.channel_id, row.file_id, thread_ts=row.thread_ts)
            if found:
                logger.info("the file of outbox %s (%s) had reached Slack before wesbot stopped", row.outbox_id,
                            row.key)
                files.mark_uploaded(row.outbox_id, now=self.clock.now())
                return
            if found is None:
                logger.warning("the file of outbox %s (%s) was being uploaded when wesbot stopped and Slack cannot "
                               "tell whether it arrived; uploading it again", row.outbox_id, row.key)
        content = files.content(row.outbox_id)
        if content is None:
            return  # uploaded or given up since it was listed
        files.mark_uploading(row.outbox_id)
        result = self.poster.upload_file(row.channel_id, content, filename=row.filename, title=row.title,
                                         thread_ts=row.thread_ts,
                                         on_file_id=lambda file_id: files.set_file_id(row.outbox_id, file_id))
        self.pacing.hold(row.channel_id, self.settings.pace_seconds)
        self._settle_file(row, result, stats)

    def _settle_file(self, row: FileRow, result: PostResult, stats: DeliverStats) -> None:
        done = self.clock.now()
        error = result.error or "error"
        if result.ok:
            self._token_refused_since = None
            self.store.files.mark_uploaded(row.outbox_id, now=done, file_id=result.file_id)
            stats.files += 1
            logger.info("uploaded %s in the thread of outbox %s (%s)", row.filename, row.outbox_id, row.key)
        elif result.permanent:
            # Not the channel's end: the message itself was posted (a public channel the bot is not in takes
            # posts, thanks to chat:write.public, but not files). Only the picture is given up.
            self.store.files.mark_failed(row.outbox_id, error=error)
            stats.failed += 1
            logger.warning("gave up uploading %s in %s (%s): %s", row.filename, row.channel_id, row.key, error)
        elif result.token_error:
            self._token_refused(result)
            self.store.files.mark_retry(row.outbox_id, not_before=done + TOKEN_RETRY, error=error)
            self.pacing.hold(row.channel_id, TOKEN_RETRY)
            stats.retried += 1
        else:
            wait = result.retry_after or min(2.0 ** min(row.attempts + 1, 12), self.settings.retry_cap)
            self.store.files.mark_retry(row.outbox_id, not_before=done + wait, error=error)
            if result.retry_after:
                self.pacing.hold(row.channel_id, wait)
            stats.retried += 1
            logger.info("uploading %s in %s failed (%s); trying again in %.0f s", row.filename, row.channel_id,
                        error, wait)

    # -- cards -----------------------------------------------------------------------------------------

    def _sync_cards(self, stats: DeliverStats) -> None:
        """Post new cards and update stale ones, one per channel per round, in the slots notifications left."""
        while not self._stopped:
            # A channel with a notification waiting keeps its next slot for it, not for a card update.
            waiting = self.store.outbox.pending_channels(self.clock.now() + self.settings.pace_seconds,
                                                  horizon=self.settings.longest_wait)
            firsts: dict[str, int] = {}
            for sub_id, channel in self.store.subscriptions.card_candidates():
                if channel not in firsts and channel not in waiting and self.pacing.ready(channel):
                    firsts[channel] = sub_id
            if not firsts:
                return
            self._in_parallel(self._sync_card, [self.store.subscriptions.get(sub_id) for sub_id in firsts.values()],
                              stats)

    def _sync_card(self, sub: Subscription, stats: DeliverStats) -> None:
        message = card(sub, host=self.host, run_url=self.run_url)
        if sub.card_ts is None:
            result = self.poster.post(sub.channel_id, message)
        else:
            result = self.poster.update(sub.channel_id, sub.card_ts, message)
        self.pacing.hold(sub.channel_id, self.settings.pace_seconds)
        if result.ok:
            self._token_refused_since = None
            self.store.subscriptions.set_card(sub.id, ts=result.ts, version=sub.card_version)
            stats.cards += 1
        elif result.token_error:
            # The installation, not the card: try this channel again after the token backoff, not every second.
            self._token_refused(result)
            self.pacing.hold(sub.channel_id, TOKEN_RETRY)
        elif result.permanent and result.channel_error:
            self._channel_failed(sub.channel_id, result, self.clock.now())
        elif result.permanent:
            logger.warning("card of run %s in %s failed: %s", sub.run_id, sub.channel_id, result.error)
            self.store.subscriptions.set_card_failed(sub.id, result.error or "error")
        elif result.retry_after:
            self.pacing.hold(sub.channel_id, result.retry_after)

    # -- cancel messages -------------------------------------------------------------------------------

    def _cancel_messages(self, stats: DeliverStats) -> None:
        """Announce the cancels a restarted process took over, and update each decided cancel's message in
        place (or tell the canceller through the response_url, if the channel had none)."""
        cancels = self.cancels
        if cancels is None:
            return
        for cancel in cancels.to_announce():
            if self._stopped:
                return
            self._announce(cancels, cancel)
        for cancel in cancels.to_sync():
            if self._stopped:
                return
            if self._sync_cancel(cancel):
                cancels.synced(cancel.run_id)
                stats.cards += 1

    def _announce(self, cancels: CancelStore, cancel: Cancel) -> None:
        """The in-channel message of a cancel whose process died before it could post it."""
        channel = cancel.channel_id
        if channel is None or not self.pacing.ready(channel):
            return
        result = self.poster.post(channel, cancel_announcement(cancel.user_id, cancel.run_id, cancel.state_before,
                                                                  server=self.server),
                                  thread_ts=self.store.subscriptions.card_of(cancel.run_id, channel))
        self.pacing.hold(channel, self.settings.pace_seconds)
        if result.ok or result.permanent:
            cancels.announced(cancel.run_id, message_ts=result.ts if result.ok else None,
                              message_error=None if result.ok else (result.error or "error"))

    def _sync_cancel(self, cancel: Cancel) -> bool:
        """True once the outcome has been said (or there is nowhere to say it)."""
        message = cancel_outcome(cancel, self.clock.now(), server=self.server)
        if cancel.message_ts and cancel.channel_id:
            if not self.pacing.ready(cancel.channel_id):
                return False
            result = self.poster.update(cancel.channel_id, cancel.message_ts, message)
            self.pacing.hold(cancel.channel_id, self.settings.pace_seconds)
            return result.ok or result.permanent  # else retried on the next turn
        if cancel.response_url:
            if not self.poster.respond(cancel.response_url, {**message, "response_type": "ephemeral",
                                                             "replace_original": False}):
                logger.info("could not tell the canceller of %s the outcome", cancel.run_id)
        return True

    # -- failures --------------------------------------------------------------------------------------

    def _token_refused(self, result: PostResult) -> None:
        """Slack refuses the bot token: loud, once per episode; every row stays owed."""
        if self._token_refused_since is None:
            self._token_refused_since = self.clock.monotonic()
            logger.error("Slack rejects the bot token (%s): fix SLACK_BOT_TOKEN; %d notifications waiting",
                         result.error, self.store.outbox.pending_count())

    def _channel_failed(self, channel: str, result: PostResult, now: float) -> None:
        """Slack will not take posts in ``channel``: end its subscriptions and tell their subscribers by DM."""
        if channel.startswith(("U", "W")):
            return  # a DM that failed: nobody left to tell
        error = result.error or "error"
        failed = self.store.subscriptions.fail_channel(channel, error=error, now=now)
        logger.warning("Slack refuses posts in %s (%s); %d subscriptions failed", channel, error, len(failed))
        for sub in failed:
            payload = notice(None, channel_failed_text(channel, error, sub.run_id, server=self.server))
            for user in sub.users:
                self.store.outbox.notice_once(f"dm:{sub.id}:{user}", channel_id=user, payload=payload, now=now)

    def _in_parallel(self, fn: Callable[[T, DeliverStats], None], items: list[T], stats: DeliverStats) -> None:
        """``fn(item, stats)`` for each item, up to ``post_concurrency`` channels at once."""
        if self.settings.post_concurrency <= 1 or len(items) == 1:
            for item in items:
                fn(item, stats)
            return

        def one(item: T) -> DeliverStats:
            part = DeliverStats()
            fn(item, part)
            return part

        for part in self.workers.map(one, items, self.settings.post_concurrency):
            stats.add(part)
