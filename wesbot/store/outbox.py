"""The outbox: every message owed to Slack, written by the jobs (in the transaction that decided it was owed)
and posted by delivery, which marks each row sent, to be retried, or failed.

Each row has a ``dedupe_key`` unique on its server (run, terminal state, channel for notifications), so the
same message can never be queued twice: :func:`enqueue` is the one INSERT, used by every repository that owes
one. Each server's delivery reads its own rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Database

from .base import Message, Store, beyond
from .files import fail as fail_file
from .files import ready as file_ready


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
    # For a row posted in its card's thread: the card's ts (None once the subscription ended without a card).
    thread_ts: str | None = None


# An outbox row (``o``, joined with its subscription ``s``) that may go now: not a note owed in the thread of
# a card that is not posted yet (it goes once the card is).
_READY = "NOT (o.in_thread = 1 AND s.status = 'active' AND s.card_ts IS NULL AND s.card_failed IS NULL)"


def enqueue(db: Database, server_id: int, *, key: str, kind: str, channel_id: str, payload: Message, now: float,
            subscription_id: int | None = None, in_thread: bool = False, skip: bool = False) -> int | None:
    """Queue one message of server ``server_id`` inside the caller's transaction, unless one with this key ever
    was on that server (the same run id on two servers is two runs). Returns its outbox id, or None. ``skip``
    only reserves the key (a run that went into a digest)."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO outbox (server_id, dedupe_key, kind, channel_id, subscription_id, in_thread, "
        "payload, created_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [server_id, key, kind, channel_id, subscription_id, int(in_thread), json.dumps(payload), now,
         "skipped" if skip else "pending"],
    )
    return int(cursor.lastrowid) if cursor.rowcount == 1 and cursor.lastrowid else None


def enqueue_in_threads(db: Database, server_id: int, owed: dict[int, Message], *, kind: str, now: float,
                       key: Callable[[str, str, int], str]) -> list[tuple[int, int | None]]:
    """Queue, inside the caller's transaction, the message rendered for each subscription in ``owed`` that is
    still active, in its card's thread; ``key(run_id, channel_id, sub_id)`` names it. A subscription that
    ended since it was rendered is left out. Returns (subscription id, outbox id or None) of those queued for."""
    done: list[tuple[int, int | None]] = []
    for sub_id, payload in owed.items():
        row = db.execute("SELECT run_id, channel_id FROM subscriptions WHERE id = ? AND server_id = ? "
                         "AND status = 'active'", [sub_id, server_id]).fetchone()
        if row is not None:
            done.append((sub_id, enqueue(db, server_id, key=key(row[0], row[1], sub_id), kind=kind, channel_id=row[1],
                                         subscription_id=sub_id, in_thread=True, payload=payload, now=now)))
    return done


class Outbox:
    def __init__(self, store: Store) -> None:
        self.store = store

    def notice_once(self, key: str, *, channel_id: str, payload: Message, now: float,
                    subscription_id: int | None = None, in_thread: bool = False) -> int | None:
        """Queue a notice unless one with this key was ever queued. Returns its outbox id, or None."""
        with self.store.transaction() as db:
            return enqueue(db, self.store.server_id, key=key, kind="notice", channel_id=channel_id,
                           subscription_id=subscription_id, in_thread=in_thread, payload=payload, now=now)

    def deliverable(self, now: float, limit: int = 50, *, horizon: float | None = None) -> list[OutboxRow]:
        """Rows that may be sent now, oldest first, each with the thread it goes in; ``horizon`` as for
        :func:`~wesbot.store.base.beyond`. A note owed in the thread of a card not posted yet waits for it."""
        rows = self.store.db.execute(
            "SELECT o.id, o.dedupe_key, o.kind, o.channel_id, o.subscription_id, o.in_thread, o.payload, o.status, "
            "o.attempts, o.created_at, CASE WHEN o.in_thread = 1 THEN s.card_ts END FROM outbox o "
            "LEFT JOIN subscriptions s ON s.id = o.subscription_id "
            "WHERE o.server_id = ? AND o.status IN ('pending', 'sending') AND (o.not_before <= ? OR o.not_before > ?) "
            f"AND {_READY} ORDER BY o.id LIMIT ?",
            [self.store.server_id, now, beyond(now, horizon), limit],
        ).fetchall()
        return [
            OutboxRow(id=r[0], dedupe_key=r[1], kind=r[2], channel_id=r[3], subscription_id=r[4], in_thread=bool(r[5]),
                      payload=json.loads(r[6]), status=r[7], attempts=r[8], created_at=r[9], thread_ts=r[10])
            for r in rows
        ]

    def next_time(self) -> float | None:
        """When the next row may be sent (wall time), or None when nothing is owed."""
        row = self.store.db.execute(
            "SELECT MIN(not_before) FROM outbox WHERE server_id = ? AND status IN ('pending', 'sending')",
            [self.store.server_id]).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def pending_count(self) -> int:
        return int(self.store.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE server_id = ? AND status IN ('pending', 'sending')",
            [self.store.server_id]).fetchone()[0])

    def oldest_pending(self) -> float | None:
        """When the oldest row still owed was queued (wall time), or None when nothing is owed."""
        row = self.store.db.execute(
            "SELECT MIN(created_at) FROM outbox WHERE server_id = ? AND status IN ('pending', 'sending')",
            [self.store.server_id]).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def pending_channels(self, before: float, *, horizon: float | None = None) -> set[str]:
        """Channels with an outbox row that may be sent before ``before``."""
        # A note waiting for its card's thread does not hold the channel: the card must go first.
        return {r[0] for r in self.store.db.execute(
            "SELECT DISTINCT o.channel_id FROM outbox o LEFT JOIN subscriptions s ON s.id = o.subscription_id "
            "WHERE o.server_id = ? AND o.status IN ('pending', 'sending') AND (o.not_before <= ? OR o.not_before > ?) "
            f"AND {_READY}", [self.store.server_id, before, beyond(before, horizon)]).fetchall()}

    def mark_sending(self, outbox_id: int, now: float) -> None:
        """Before the post: a row left 'sending' by a crash may have reached Slack (delivery looks first)."""
        with self.store.transaction() as db:
            db.execute("UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?", [outbox_id])

    def mark_sent(self, outbox_id: int, *, ts: str | None, now: float, thread_ts: str | None = None) -> None:
        """Posted (``ts``; ``thread_ts``: the thread it was posted in). A file owed with it is due now, in that
        thread, else in the thread of the message itself."""
        with self.store.transaction() as db:
            db.execute("UPDATE outbox SET status = 'sent', sent_at = ?, ts = ?, error = NULL WHERE id = ?",
                       [now, ts, outbox_id])
            file_ready(db, outbox_id, thread_ts or ts)

    def mark_retry(self, outbox_id: int, *, not_before: float, error: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE outbox SET status = 'pending', not_before = ?, error = ? WHERE id = ?",
                       [not_before, error, outbox_id])

    def mark_failed(self, outbox_id: int, *, error: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE outbox SET status = 'failed', error = ? WHERE id = ?", [error, outbox_id])
            fail_file(db, outbox_id, "its message was not posted")
