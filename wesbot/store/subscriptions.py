"""Subscriptions: who watches which run in which channel, and the run's card in that channel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlite_utils import Database

from ..outcome import TaskProgress
from .base import Message, Store
from .outbox import enqueue_in_threads
from .runs import READ_AT


@dataclass(frozen=True, kw_only=True)
class Subscription:
    id: int
    run_id: str
    channel_id: str
    status: str
    created_at: float
    expires_at: float
    workflow: str | None
    card_ts: str | None
    card_version: int
    card_synced: int
    card_failed: str | None
    reason: str | None
    users: tuple[str, ...]
    # From watched_runs: the state at the last poll and since when; the run's own times from WES.
    state: str | None = None
    state_since: float | None = None
    exit_code: int | None = None
    start_time: str | None = None
    end_time: str | None = None
    # When the run was last read (runs.READ_AT: what the card's running time is counted to), and since when
    # and why its reads have been failing (None while they succeed).
    read_at: float | None = None
    failing_since: float | None = None
    failing_reason: str | None = None
    # The run's task progress at its last read (RUNNING runs only; None: not read, or no tasks given).
    progress: TaskProgress | None = None
    # --deadline: how long after its start the run should have ended, and when the missed deadline was said.
    deadline_after: float | None = None
    deadline_told: float | None = None


@dataclass(frozen=True, kw_only=True)
class SubscribeOutcome:
    subscription: Subscription
    created: bool  # a new subscription (a card will be posted)
    added_user: bool  # this user was not yet among its subscribers


@dataclass(frozen=True, kw_only=True)
class EndedRun:
    """A run whose end a subscription saw: its last state, exit code, and when the end was seen (wall time)."""

    run_id: str
    state: str | None
    exit_code: int | None
    ended_at: float | None


def read_subscription(db: Database, sub_id: int) -> Subscription:
    """One subscription with its subscribers and its run's last known state, on ``db`` (any connection)."""
    row = db.execute(
        "SELECT s.id, s.run_id, s.channel_id, s.status, s.created_at, s.expires_at, s.workflow, s.card_ts, "
        "s.card_version, s.card_synced, s.card_failed, s.reason, w.state, w.state_since, w.exit_code, "
        f"w.start_time, w.end_time, {READ_AT}, w.failing_since, w.failing_reason, w.tasks, s.deadline_after, "
        "s.deadline_told "
        "FROM subscriptions s LEFT JOIN watched_runs w ON w.server_id = s.server_id AND w.run_id = s.run_id "
        "WHERE s.id = ?",
        [sub_id],
    ).fetchone()
    users = tuple(r[0] for r in db.execute(
        "SELECT user_id FROM subscribers WHERE subscription_id = ? ORDER BY created_at, user_id", [sub_id]
    ).fetchall())
    return Subscription(
        id=row[0], run_id=row[1], channel_id=row[2], status=row[3], created_at=row[4], expires_at=row[5],
        workflow=row[6], card_ts=row[7], card_version=row[8], card_synced=row[9], card_failed=row[10],
        reason=row[11], users=users, state=row[12], state_since=row[13], exit_code=row[14],
        start_time=row[15], end_time=row[16], read_at=row[17], failing_since=row[18], failing_reason=row[19],
        progress=TaskProgress.from_json(row[20]), deadline_after=row[21], deadline_told=row[22],
    )


class Subscriptions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def subscribe(
        self,
        *,
        run_id: str,
        channel_id: str,
        user_id: str,
        now: float,
        expires_at: float,
        state: str | None,
        workflow: str | None = None,
        start_time: str | None = None,
        deadline_after: float | None = None,
    ) -> SubscribeOutcome:
        """Watch ``run_id`` for ``channel_id``; one subscription per (server, run, channel), users are added
        to it. ``deadline_after`` (--deadline) sets the subscription's deadline, or a new one (said afresh)."""
        with self.store.transaction() as db:
            server_id = self.store.server_id
            row = db.execute(
                "SELECT id, status FROM subscriptions WHERE server_id = ? AND run_id = ? AND channel_id = ?",
                [server_id, run_id, channel_id],
            ).fetchone()
            created = row is None or row[1] != "active"
            if row is None:
                cursor = db.execute(
                    "INSERT INTO subscriptions (server_id, run_id, channel_id, status, created_at, expires_at, "
                    "workflow) VALUES (?, ?, ?, 'active', ?, ?, ?)",
                    [server_id, run_id, channel_id, now, expires_at, workflow],
                )
                sub_id = int(cursor.lastrowid or 0)
            else:
                sub_id = int(row[0])
                if created:
                    # A run subscribed to again after it was removed: a fresh card, a fresh set of users.
                    db.execute("DELETE FROM subscribers WHERE subscription_id = ?", [sub_id])
                    db.execute(
                        "UPDATE subscriptions SET status = 'active', reason = NULL, created_at = ?, expires_at = ?, "
                        "ended_at = NULL, workflow = COALESCE(?, workflow), card_ts = NULL, card_failed = NULL, "
                        "card_version = card_version + 1 WHERE id = ?",
                        [now, expires_at, workflow, sub_id],
                    )
            added = db.execute(
                "INSERT OR IGNORE INTO subscribers (subscription_id, user_id, created_at) VALUES (?, ?, ?)",
                [sub_id, user_id, now],
            ).rowcount == 1
            if added and not created:
                db.execute("UPDATE subscriptions SET card_version = card_version + 1 WHERE id = ?", [sub_id])
            if deadline_after is not None:
                db.execute("UPDATE subscriptions SET deadline_after = ?, deadline_told = NULL WHERE id = ?",
                           [deadline_after, sub_id])
            db.execute(
                "INSERT INTO watched_runs (server_id, run_id, state, start_time, state_since, next_poll_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (server_id, run_id) DO NOTHING",
                [server_id, run_id, state, start_time, now, now],
            )
            subscription = read_subscription(db, sub_id)
        return SubscribeOutcome(subscription=subscription, created=created, added_user=added)

    def unsubscribe(self, *, run_id: str, channel_id: str, user_id: str) -> str:
        """Remove ``user_id``; once nobody is left, the channel's subscription.

        Returns "not_subscribed", "user_removed" (others still watch) or "subscription_removed".
        """
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT id FROM subscriptions WHERE server_id = ? AND run_id = ? AND channel_id = ? "
                "AND status = 'active'",
                [self.store.server_id, run_id, channel_id],
            ).fetchone()
            if row is None:
                return "not_subscribed"
            sub_id = int(row[0])
            removed = db.execute(
                "DELETE FROM subscribers WHERE subscription_id = ? AND user_id = ?", [sub_id, user_id]
            ).rowcount
            left = db.execute("SELECT COUNT(*) FROM subscribers WHERE subscription_id = ?", [sub_id]).fetchone()[0]
            if left == 0:
                db.execute(
                    "UPDATE subscriptions SET status = 'removed', reason = 'unsubscribed', "
                    "card_version = card_version + 1 WHERE id = ?",
                    [sub_id],
                )
                return "subscription_removed"
            if not removed:
                return "not_subscribed"
            db.execute("UPDATE subscriptions SET card_version = card_version + 1 WHERE id = ?", [sub_id])
            return "user_removed"

    def of_channel(self, channel_id: str) -> list[Subscription]:
        db = self.store.db
        ids = [r[0] for r in db.execute(
            "SELECT id FROM subscriptions WHERE server_id = ? AND channel_id = ? AND status = 'active' "
            "ORDER BY created_at", [self.store.server_id, channel_id]
        ).fetchall()]
        return [read_subscription(db, i) for i in ids]

    def of_user(self, user_id: str) -> list[Subscription]:
        """The active subscriptions ``user_id`` is one of the users of, in every channel (the Home tab), the
        newest first."""
        db = self.store.db
        ids = [r[0] for r in db.execute(
            "SELECT s.id FROM subscriptions s JOIN subscribers u ON u.subscription_id = s.id WHERE s.server_id = ? "
            "AND s.status = 'active' AND u.user_id = ? ORDER BY s.created_at DESC, s.id DESC",
            [self.store.server_id, user_id]).fetchall()]
        return [read_subscription(db, i) for i in ids]

    def ended_of_user(self, user_id: str, *, since: float, limit: int) -> list[Subscription]:
        """``user_id``'s subscriptions whose run ended (its terminal state was seen) at ``since`` or later, the
        latest first."""
        db = self.store.db
        ids = [r[0] for r in db.execute(
            "SELECT s.id FROM subscriptions s JOIN subscribers u ON u.subscription_id = s.id WHERE s.server_id = ? "
            "AND s.status = 'ended' AND s.ended_at >= ? AND u.user_id = ? ORDER BY s.ended_at DESC, s.id DESC LIMIT ?",
            [self.store.server_id, since, user_id, limit]).fetchall()]
        return [read_subscription(db, i) for i in ids]

    def recently_ended(self, limit: int = 200) -> list[EndedRun]:
        """The last ``limit`` runs whose end a subscription saw, in any channel, the latest first (one row per
        run): where the Home tab finds a server's latest failures without asking WES."""
        return [EndedRun(run_id=r[0], state=r[1], exit_code=r[2], ended_at=r[3]) for r in self.store.db.execute(
            "SELECT s.run_id, w.state, w.exit_code, MAX(s.ended_at) AS ended FROM subscriptions s "
            "JOIN watched_runs w ON w.server_id = s.server_id AND w.run_id = s.run_id "
            "WHERE s.server_id = ? AND s.status = 'ended' GROUP BY s.run_id ORDER BY ended DESC LIMIT ?",
            [self.store.server_id, limit]).fetchall()]

    def with_deadlines(self) -> list[Subscription]:
        """The active subscriptions whose --deadline has not been said yet (the poller judges which passed)."""
        db = self.store.db
        ids = [r[0] for r in db.execute(
            "SELECT id FROM subscriptions WHERE server_id = ? AND status = 'active' AND deadline_after IS NOT NULL "
            "AND deadline_told IS NULL", [self.store.server_id]).fetchall()]
        return [read_subscription(db, i) for i in ids]

    def tell_deadline(self, owed: dict[int, Message], *, now: float) -> list[int]:
        """Queue each subscription's missed-deadline note (in its card's thread) and remember it was said, in one
        transaction. Returns the outbox ids queued."""
        with self.store.transaction() as db:
            queued = enqueue_in_threads(db, self.store.server_id, owed, kind="notice", now=now,
                                        key=lambda run, channel, sub_id: f"deadline:{run}:{channel}:{sub_id}:{now}")
            db.conn.executemany("UPDATE subscriptions SET deadline_told = ? WHERE id = ?",
                                [(now, sub_id) for sub_id in owed])
        return [outbox_id for _, outbox_id in queued if outbox_id is not None]

    def card_of(self, run_id: str, channel_id: str) -> str | None:
        """The ts of the run's card in the channel, while it is watched there: where whatever else is said of
        the run in that channel goes (a cancel), so that it is one thread, not another post."""
        row = self.store.db.execute(
            "SELECT card_ts FROM subscriptions WHERE server_id = ? AND run_id = ? AND channel_id = ? "
            "AND status = 'active' AND card_ts IS NOT NULL", [self.store.server_id, run_id, channel_id]).fetchone()
        return None if row is None else str(row[0])

    def get(self, sub_id: int) -> Subscription:
        return read_subscription(self.store.db, sub_id)

    def of_run(self, run_id: str, *, active_only: bool = True) -> list[Subscription]:
        db = self.store.db
        where = " AND status = 'active'" if active_only else ""
        ids = [r[0] for r in db.execute(f"SELECT id FROM subscriptions WHERE server_id = ? AND run_id = ?{where}",
                                        [self.store.server_id, run_id]).fetchall()]
        return [read_subscription(db, i) for i in ids]

    def due_to_expire(self, now: float) -> list[Subscription]:
        db = self.store.db
        ids = [r[0] for r in db.execute(
            "SELECT id FROM subscriptions WHERE server_id = ? AND status = 'active' AND expires_at <= ?",
            [self.store.server_id, now]).fetchall()]
        return [read_subscription(db, i) for i in ids]

    def active_channels_of_runs(self, run_ids: Iterable[str]) -> list[str]:
        ids = list(run_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [r[0] for r in self.store.db.execute(
            "SELECT DISTINCT channel_id FROM subscriptions WHERE server_id = ? AND status = 'active' "
            f"AND run_id IN ({marks}) ORDER BY channel_id", [self.store.server_id, *ids]
        ).fetchall()]

    def end(self, owed: dict[int, Message], *, status: str, reason: str | None, now: float,
            key_prefix: str) -> list[int]:
        """End the subscriptions in ``owed`` that are still active (run gone, expired), queueing the note
        rendered for each. Rendered before: a subscription made since is not in ``owed`` and stays active
        (the next poll deals with it). Returns the outbox ids queued."""
        with self.store.transaction() as db:
            queued = enqueue_in_threads(db, self.store.server_id, owed, kind="notice", now=now,
                                        key=lambda run, channel, sub_id: f"{key_prefix}:{run}:{channel}:{sub_id}")
            db.conn.executemany(
                "UPDATE subscriptions SET status = ?, reason = COALESCE(?, reason), ended_at = ?, "
                "card_version = card_version + 1 WHERE id = ?",
                [(status, reason, now, sub_id) for sub_id, _ in queued],
            )
        return [outbox_id for _, outbox_id in queued if outbox_id is not None]

    def fail_channel(self, channel_id: str, *, error: str, now: float) -> list[Subscription]:
        """Slack refuses to post in this channel for good: fail its subscriptions and its pending messages,
        this server's (each server's delivery finds out for itself)."""
        with self.store.transaction() as db:
            server_id = self.store.server_id
            sub_ids = [r[0] for r in db.execute(
                "SELECT id FROM subscriptions WHERE server_id = ? AND channel_id = ? AND status = 'active'",
                [server_id, channel_id],
            ).fetchall()]
            db.execute(
                "UPDATE subscriptions SET status = 'failed', reason = ?, ended_at = ? "
                "WHERE server_id = ? AND channel_id = ? AND status = 'active'",
                [error, now, server_id, channel_id],
            )
            db.execute(
                "UPDATE outbox SET status = 'failed', error = ? "
                "WHERE server_id = ? AND channel_id = ? AND status IN ('pending', 'sending')",
                [error, server_id, channel_id],
            )
            return [read_subscription(db, i) for i in sub_ids]

    def cards_to_sync(self, limit: int = 50) -> list[Subscription]:
        """Cards to post (active, none yet) or to update (changed since last synced)."""
        db = self.store.db
        return [read_subscription(db, i) for i, _ in self.card_candidates(limit)]

    def card_candidates(self, limit: int = 5000) -> list[tuple[int, str]]:
        """(subscription id, channel) of the cards to post or update, oldest first; cheap to call often."""
        return [(int(r[0]), str(r[1])) for r in self.store.db.execute(
            "SELECT id, channel_id FROM subscriptions WHERE server_id = ? AND card_failed IS NULL AND ("
            "(card_ts IS NULL AND status = 'active') OR (card_ts IS NOT NULL AND card_synced < card_version)) "
            "ORDER BY id LIMIT ?",
            [self.store.server_id, limit],
        ).fetchall()]

    def set_card(self, sub_id: int, *, ts: str | None, version: int) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE subscriptions SET card_ts = COALESCE(?, card_ts), card_synced = ? WHERE id = ?",
                       [ts, version, sub_id])

    def set_card_failed(self, sub_id: int, error: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE subscriptions SET card_failed = ? WHERE id = ?", [error, sub_id])
