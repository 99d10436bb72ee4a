"""Subscriptions, watched runs, the outbox and the lease: the watcher's state, all in SQLite.

Nothing that matters lives only in memory. A terminal transition and the notifications it owes are written
in one transaction (:meth:`WatchStore.record_terminal`), before anything is posted; the sender then posts
from the outbox and marks each row sent. Each outbox row has a unique ``dedupe_key`` (run, terminal state,
channel for notifications), so the same notification can never be queued twice.

Every thread gets its own SQLite connection (``sqlite3`` connections must not be shared across threads);
WAL mode and a busy timeout let the bot's listeners, its watcher and a second process share one file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .db import open_db
from .leases import Leases

Message = dict[str, Any]


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
    # From watched_runs: the state at the last poll and since when.
    state: str | None = None
    state_since: float | None = None
    exit_code: int | None = None
    start_time: str | None = None
    end_time: str | None = None


@dataclass(frozen=True, kw_only=True)
class SubscribeOutcome:
    subscription: Subscription
    created: bool  # a new subscription (a card will be posted)
    added_user: bool  # this user was not yet among its subscribers


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    id: int
    dedupe_key: str
    kind: str
    channel_id: str
    subscription_id: int | None
    in_thread: bool
    payload: Message
    status: str
    attempts: int
    created_at: float


@dataclass(frozen=True, kw_only=True)
class WatchedRun:
    run_id: str
    state: str | None
    failures: int
    failing_since: float | None
    unreadable_reported: bool


class WatchStore:
    """Domain operations on the watcher's tables. Thread-safe: one connection per thread."""

    def __init__(self, path: str | Path | None = None, *, memory: bool = False) -> None:
        if path is None and not memory:
            raise ValueError("a path, or memory=True")
        self._path = path
        self._local = threading.local()
        self._memory_db: Database | None = None
        self._memory_lock = threading.RLock()
        if memory:
            # One shared connection for an in-memory database (tests); transactions are serialised.
            self._memory_db = open_db(memory=True, shared=True)

    @property
    def db(self) -> Database:
        if self._memory_db is not None:
            return self._memory_db
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = open_db(self._path)
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[Database]:
        """A write transaction. BEGIN IMMEDIATE takes the write lock up front, so two processes sharing the
        file wait for each other (busy timeout) instead of failing on a read-to-write upgrade."""
        with self._memory_lock if self._memory_db is not None else nullcontext():
            db = self.db
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.conn.rollback()
                raise
            db.conn.execute("COMMIT")

    def close(self) -> None:
        db: Database | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- subscriptions ----------------------------------------------------------------------------

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
    ) -> SubscribeOutcome:
        """Watch ``run_id`` for ``channel_id``; one subscription per (run, channel), users are added to it."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id, status FROM subscriptions WHERE run_id = ? AND channel_id = ?", [run_id, channel_id]
            ).fetchone()
            created = row is None or row[1] != "active"
            if row is None:
                cursor = db.execute(
                    "INSERT INTO subscriptions (run_id, channel_id, status, created_at, expires_at, workflow) "
                    "VALUES (?, ?, 'active', ?, ?, ?)",
                    [run_id, channel_id, now, expires_at, workflow],
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
            db.execute(
                "INSERT INTO watched_runs (run_id, state, start_time, state_since, next_poll_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
                [run_id, state, start_time, now, now],
            )
            subscription = self._subscription(db, sub_id)
        return SubscribeOutcome(subscription=subscription, created=created, added_user=added)

    def unsubscribe(self, *, run_id: str, channel_id: str, user_id: str) -> str:
        """Remove ``user_id``; once nobody is left, the channel's subscription.

        Returns "not_subscribed", "user_removed" (others still watch) or "subscription_removed".
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM subscriptions WHERE run_id = ? AND channel_id = ? AND status = 'active'",
                [run_id, channel_id],
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

    def channel_subscriptions(self, channel_id: str) -> list[Subscription]:
        db = self.db
        ids = [r[0] for r in db.execute(
            "SELECT id FROM subscriptions WHERE channel_id = ? AND status = 'active' ORDER BY created_at", [channel_id]
        ).fetchall()]
        return [self._subscription(db, i) for i in ids]

    def subscription(self, sub_id: int) -> Subscription:
        return self._subscription(self.db, sub_id)

    def subscriptions_of_run(self, run_id: str, *, active_only: bool = True) -> list[Subscription]:
        db = self.db
        where = " AND status = 'active'" if active_only else ""
        ids = [r[0] for r in db.execute(f"SELECT id FROM subscriptions WHERE run_id = ?{where}", [run_id]).fetchall()]
        return [self._subscription(db, i) for i in ids]

    @staticmethod
    def _subscription(db: Database, sub_id: int) -> Subscription:
        row = db.execute(
            "SELECT s.id, s.run_id, s.channel_id, s.status, s.created_at, s.expires_at, s.workflow, s.card_ts, "
            "s.card_version, s.card_synced, s.card_failed, s.reason, w.state, w.state_since, w.exit_code, "
            "w.start_time, w.end_time "
            "FROM subscriptions s LEFT JOIN watched_runs w ON w.run_id = s.run_id WHERE s.id = ?",
            [sub_id],
        ).fetchone()
        users = tuple(r[0] for r in db.execute(
            "SELECT user_id FROM subscribers WHERE subscription_id = ? ORDER BY created_at, user_id", [sub_id]
        ).fetchall())
        return Subscription(
            id=row[0], run_id=row[1], channel_id=row[2], status=row[3], created_at=row[4], expires_at=row[5],
            workflow=row[6], card_ts=row[7], card_version=row[8], card_synced=row[9], card_failed=row[10],
            reason=row[11], users=users, state=row[12], state_since=row[13], exit_code=row[14],
            start_time=row[15], end_time=row[16],
        )

    # -- the watcher's reads and writes -----------------------------------------------------------

    def due_runs(self, now: float, limit: int | None = None, *, horizon: float | None = None) -> list[WatchedRun]:
        """Distinct runs with an active subscription whose next poll is due, oldest due first.

        Due times are wall time (they survive restarts). With ``horizon`` (the longest wait the watcher ever
        sets), a due time more than that ahead of ``now`` was written before the wall clock was set back, and
        counts as due now rather than in an hour."""
        sql = (
            "SELECT w.run_id, w.state, w.failures, w.failing_since, w.unreadable_reported FROM watched_runs w "
            "WHERE (w.next_poll_at <= ? OR w.next_poll_at > ?) AND EXISTS (SELECT 1 FROM subscriptions s "
            "WHERE s.run_id = w.run_id AND s.status = 'active') ORDER BY w.next_poll_at"
        )
        params: list[Any] = [now, _beyond(now, horizon)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            WatchedRun(run_id=r[0], state=r[1], failures=r[2], failing_since=r[3], unreadable_reported=bool(r[4]))
            for r in self.db.execute(sql, params).fetchall()
        ]

    def next_due(self) -> float | None:
        row = self.db.execute(
            "SELECT MIN(w.next_poll_at) FROM watched_runs w WHERE EXISTS (SELECT 1 FROM subscriptions s "
            "WHERE s.run_id = w.run_id AND s.status = 'active')"
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def record_states(self, polls: Iterable[tuple[str, str | None]], *, now: float, next_poll_at: float) -> int:
        """Store successful polls of non-terminal states, in one transaction. Returns how many changed (their
        cards go stale)."""
        changed = 0
        with self._tx() as db:
            for run_id, state in polls:
                changed += int(self._set_state(db, run_id, state, now, None, None, None))
                db.execute(
                    "UPDATE watched_runs SET last_polled_at = ?, next_poll_at = ?, failures = 0, failing_since = NULL, "
                    "failing_reason = NULL, unreadable_reported = 0 WHERE run_id = ?",
                    [now, next_poll_at, run_id],
                )
        return changed

    @staticmethod
    def _set_state(db: Database, run_id: str, state: str | None, now: float, exit_code: int | None,
                   start_time: str | None, end_time: str | None) -> bool:
        row = db.execute("SELECT state FROM watched_runs WHERE run_id = ?", [run_id]).fetchone()
        changed = row is not None and row[0] != state
        db.execute(
            "UPDATE watched_runs SET state = ?, exit_code = COALESCE(?, exit_code), "
            "start_time = COALESCE(?, start_time), end_time = COALESCE(?, end_time), "
            "state_since = CASE WHEN state IS ? THEN state_since ELSE ? END WHERE run_id = ?",
            [state, exit_code, start_time, end_time, state, now, run_id],
        )
        if changed:
            db.execute(
                "UPDATE subscriptions SET card_version = card_version + 1 WHERE run_id = ? AND status = 'active'",
                [run_id],
            )
        return changed

    def record_terminal(
        self,
        run_id: str,
        *,
        state: str,
        now: float,
        exit_code: int | None,
        start_time: str | None,
        end_time: str | None,
        render: Callable[[Subscription], Message],
    ) -> list[int]:
        """The run ended: in one transaction, store the state, queue one notification per active subscription
        (``dedupe_key`` = run, state, channel) and end those subscriptions. Returns the outbox ids queued."""
        queued: list[int] = []
        with self._tx() as db:
            self._set_state(db, run_id, state, now, exit_code, start_time, end_time)
            db.execute("UPDATE watched_runs SET last_polled_at = ?, failures = 0 WHERE run_id = ?", [now, run_id])
            sub_ids = [r[0] for r in db.execute(
                "SELECT id FROM subscriptions WHERE run_id = ? AND status = 'active'", [run_id]
            ).fetchall()]
            for sub_id in sub_ids:
                subscription = self._subscription(db, sub_id)
                key = f"end:{run_id}:{state}:{subscription.channel_id}"
                outbox_id = self._enqueue(db, key=key, kind="notification", channel_id=subscription.channel_id,
                                          subscription_id=sub_id, in_thread=True, payload=render(subscription),
                                          now=now)
                if outbox_id is not None:
                    queued.append(outbox_id)
                db.execute(
                    "UPDATE subscriptions SET status = 'ended', ended_at = ?, card_version = card_version + 1 "
                    "WHERE id = ?",
                    [now, sub_id],
                )
        return queued

    def record_failure(self, run_id: str, *, now: float, reason: str, next_poll_at: float) -> WatchedRun:
        """A poll that could not read the run (timeout, 5xx, auth). The subscription is kept."""
        with self._tx() as db:
            db.execute(
                "UPDATE watched_runs SET failures = failures + 1, failing_since = COALESCE(failing_since, ?), "
                "failing_reason = ?, last_polled_at = ?, next_poll_at = ? WHERE run_id = ?",
                [now, reason, now, next_poll_at, run_id],
            )
            row = db.execute(
                "SELECT run_id, state, failures, failing_since, unreadable_reported FROM watched_runs WHERE run_id = ?",
                [run_id],
            ).fetchone()
        return WatchedRun(run_id=row[0], state=row[1], failures=row[2], failing_since=row[3],
                          unreadable_reported=bool(row[4]))

    def record_bug(self, run_id: str, *, next_poll_at: float) -> None:
        """A poll that failed on a bug in wesbot: poll again later (with the run's backoff), but this is not the
        server's doing, so the run does not count as unreadable and nobody is told."""
        with self._tx() as db:
            db.execute("UPDATE watched_runs SET failures = failures + 1, next_poll_at = ? WHERE run_id = ?",
                       [next_poll_at, run_id])

    def end_subscriptions(self, run_id: str, *, status: str, reason: str, now: float,
                          render: Callable[[Subscription], Message] | None, key_prefix: str) -> list[int]:
        """End every active subscription of ``run_id`` (gone, expired), queueing a note for each if ``render``."""
        return self._end("run_id = ?", [run_id], status=status, reason=reason, now=now,
                         render=render, key_prefix=key_prefix)

    def expire_due(self, now: float, render: Callable[[Subscription], Message]) -> list[int]:
        return self._end("expires_at <= ?", [now], status="expired", reason="expired", now=now, render=render,
                         key_prefix="expired")

    def _end(self, where: str, params: list[Any], *, status: str, reason: str, now: float,
             render: Callable[[Subscription], Message] | None, key_prefix: str) -> list[int]:
        queued: list[int] = []
        with self._tx() as db:
            sub_ids = [r[0] for r in db.execute(
                f"SELECT id FROM subscriptions WHERE status = 'active' AND ({where})", params
            ).fetchall()]
            for sub_id in sub_ids:
                subscription = self._subscription(db, sub_id)
                if render is not None:
                    outbox_id = self._enqueue(
                        db, key=f"{key_prefix}:{subscription.run_id}:{subscription.channel_id}:{sub_id}",
                        kind="notice", channel_id=subscription.channel_id, subscription_id=sub_id, in_thread=True,
                        payload=render(subscription), now=now,
                    )
                    if outbox_id is not None:
                        queued.append(outbox_id)
                db.execute(
                    "UPDATE subscriptions SET status = ?, reason = ?, ended_at = ?, card_version = card_version + 1 "
                    "WHERE id = ?",
                    [status, reason, now, sub_id],
                )
        return queued

    def mark_unreadable_reported(self, run_id: str, *, now: float,
                                 render: Callable[[Subscription], Message]) -> list[int]:
        """Queue the one "cannot read this run" note per subscription, and remember it was sent."""
        queued: list[int] = []
        with self._tx() as db:
            row = db.execute("SELECT failing_since FROM watched_runs WHERE run_id = ?", [run_id]).fetchone()
            since = row[0] if row else now
            for sub_id in [r[0] for r in db.execute(
                "SELECT id FROM subscriptions WHERE run_id = ? AND status = 'active'", [run_id]
            ).fetchall()]:
                subscription = self._subscription(db, sub_id)
                outbox_id = self._enqueue(
                    db, key=f"unreadable:{run_id}:{subscription.channel_id}:{since}", kind="notice",
                    channel_id=subscription.channel_id, subscription_id=sub_id, in_thread=True,
                    payload=render(subscription), now=now,
                )
                if outbox_id is not None:
                    queued.append(outbox_id)
            db.execute("UPDATE watched_runs SET unreadable_reported = 1 WHERE run_id = ?", [run_id])
        return queued

    def notice_once(self, key: str, *, channel_id: str, payload: Message, now: float,
                    subscription_id: int | None = None, in_thread: bool = False) -> int | None:
        """Queue a notice unless one with this key was ever queued. Returns its outbox id, or None."""
        with self._tx() as db:
            return self._enqueue(db, key=key, kind="notice", channel_id=channel_id, subscription_id=subscription_id,
                                 in_thread=in_thread, payload=payload, now=now)

    def active_channels_of_runs(self, run_ids: Iterable[str]) -> list[str]:
        ids = list(run_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [r[0] for r in self.db.execute(
            f"SELECT DISTINCT channel_id FROM subscriptions WHERE status = 'active' AND run_id IN ({marks}) "
            "ORDER BY channel_id", ids
        ).fetchall()]

    def get_notice(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM notices WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_notice(self, key: str, value: str | None) -> None:
        with self._tx() as db:
            if value is None:
                db.execute("DELETE FROM notices WHERE key = ?", [key])
            else:
                db.execute("INSERT OR REPLACE INTO notices (key, value) VALUES (?, ?)", [key, value])

    @staticmethod
    def _enqueue(db: Database, *, key: str, kind: str, channel_id: str, subscription_id: int | None,
                 in_thread: bool, payload: Message, now: float) -> int | None:
        cursor = db.execute(
            "INSERT OR IGNORE INTO outbox (dedupe_key, kind, channel_id, subscription_id, in_thread, payload, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [key, kind, channel_id, subscription_id, int(in_thread), json.dumps(payload), now],
        )
        return int(cursor.lastrowid) if cursor.rowcount == 1 and cursor.lastrowid else None

    # -- the sender's reads and writes ------------------------------------------------------------

    def deliverable(self, now: float, limit: int = 50, *, horizon: float | None = None) -> list[OutboxRow]:
        """Rows that may be sent now, oldest first; ``horizon`` as for :meth:`due_runs`."""
        rows = self.db.execute(
            "SELECT id, dedupe_key, kind, channel_id, subscription_id, in_thread, payload, status, attempts, "
            "created_at FROM outbox WHERE status IN ('pending', 'sending') AND (not_before <= ? OR not_before > ?) "
            "ORDER BY id LIMIT ?",
            [now, _beyond(now, horizon), limit],
        ).fetchall()
        return [
            OutboxRow(id=r[0], dedupe_key=r[1], kind=r[2], channel_id=r[3], subscription_id=r[4], in_thread=bool(r[5]),
                      payload=json.loads(r[6]), status=r[7], attempts=r[8], created_at=r[9])
            for r in rows
        ]

    def next_outbox_time(self) -> float | None:
        row = self.db.execute("SELECT MIN(not_before) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def pending_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0])

    def mark_sending(self, outbox_id: int, now: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?", [outbox_id])

    def mark_sent(self, outbox_id: int, *, ts: str | None, now: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET status = 'sent', sent_at = ?, ts = ?, error = NULL WHERE id = ?",
                       [now, ts, outbox_id])

    def mark_retry(self, outbox_id: int, *, not_before: float, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET status = 'pending', not_before = ?, error = ? WHERE id = ?",
                       [not_before, error, outbox_id])

    def mark_failed(self, outbox_id: int, *, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?", [error, outbox_id])

    def fail_channel(self, channel_id: str, *, error: str, now: float) -> list[Subscription]:
        """Slack refuses to post in this channel for good: fail its subscriptions and its pending messages."""
        with self._tx() as db:
            sub_ids = [r[0] for r in db.execute(
                "SELECT id FROM subscriptions WHERE channel_id = ? AND status = 'active'", [channel_id]
            ).fetchall()]
            db.execute(
                "UPDATE subscriptions SET status = 'failed', reason = ?, ended_at = ? "
                "WHERE channel_id = ? AND status = 'active'",
                [error, now, channel_id],
            )
            db.execute(
                "UPDATE outbox SET status = 'failed', error = ? "
                "WHERE channel_id = ? AND status IN ('pending', 'sending')",
                [error, channel_id],
            )
            return [self._subscription(db, i) for i in sub_ids]

    def cards_to_sync(self, limit: int = 50) -> list[Subscription]:
        """Cards to post (active, none yet) or to update (changed since last synced)."""
        db = self.db
        return [self._subscription(db, i) for i, _ in self.card_candidates(limit)]

    def card_candidates(self, limit: int = 5000) -> list[tuple[int, str]]:
        """(subscription id, channel) of the cards to post or update, oldest first; cheap to call often."""
        return [(int(r[0]), str(r[1])) for r in self.db.execute(
            "SELECT id, channel_id FROM subscriptions WHERE card_failed IS NULL AND ("
            "(card_ts IS NULL AND status = 'active') OR (card_ts IS NOT NULL AND card_synced < card_version)) "
            "ORDER BY id LIMIT ?",
            [limit],
        ).fetchall()]

    def pending_channels(self, before: float, *, horizon: float | None = None) -> set[str]:
        """Channels with an outbox row that may be sent before ``before``; ``horizon`` as for :meth:`due_runs`."""
        # A note waiting for its card's thread does not hold the channel: the card must go first.
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT o.channel_id FROM outbox o LEFT JOIN subscriptions s ON s.id = o.subscription_id "
            "WHERE o.status IN ('pending', 'sending') AND (o.not_before <= ? OR o.not_before > ?) "
            "AND NOT (o.in_thread = 1 AND s.status = 'active' AND s.card_ts IS NULL AND s.card_failed IS NULL)",
            [before, _beyond(before, horizon)]).fetchall()}

    def set_card(self, sub_id: int, *, ts: str | None, version: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE subscriptions SET card_ts = COALESCE(?, card_ts), card_synced = ? WHERE id = ?",
                       [ts, version, sub_id])

    def set_card_failed(self, sub_id: int, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE subscriptions SET card_failed = ? WHERE id = ?", [error, sub_id])

    # -- the lease: one watcher posts at a time (the rule lives in leases.py) -----------------------

    @cached_property
    def leases(self) -> Leases:
        """The lease table, recorded with this host and pid. Built on first use: it holds no state of its own
        (two threads racing to build it get equal ones), and reads and writes on the caller's connection."""
        return Leases(lambda: self.db, self._tx)

    def acquire_lease(self, name: str, owner: str, *, now: float, period: float) -> bool:
        """Take or renew the lease. True when ``owner`` holds it until ``now + period``."""
        return self.leases.acquire(name, owner, now=now, period=period)

    def release_lease(self, name: str, owner: str) -> None:
        self.leases.release(name, owner)

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        return self.leases.holder(name)


def _beyond(now: float, horizon: float | None) -> float:
    """The stored wall time past which a due time can only predate a wall clock set back: due now."""
    return float("inf") if horizon is None else now + horizon
