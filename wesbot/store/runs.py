"""Watched runs: the last state the watcher read of each subscribed run, when to read it next, and how its
reads have been failing. Writing an end also queues what it owes, in the same transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from .base import Message, Store, beyond
from .files import Pictures, attach
from .outbox import enqueue_in_threads


@dataclass(frozen=True, kw_only=True)
class WatchedRun:
    run_id: str
    state: str | None
    failures: int
    failing_since: float | None
    unreadable_reported: bool
    start_time: str | None = None  # the run's own, from WES
    read_at: float | None = None  # see READ_AT


# When the run was last read: by the watcher, or before its first poll by the subscribe command (the state's
# time). A card's running time is counted to it, so that the card is a function of what is stored.
READ_AT = "COALESCE(w.last_polled_at, w.state_since)"
_WATCHED_RUN = f"w.run_id, w.state, w.failures, w.failing_since, w.unreadable_reported, w.start_time, {READ_AT}"


def _watched_run(row: Any) -> WatchedRun:
    return WatchedRun(run_id=row[0], state=row[1], failures=row[2], failing_since=row[3],
                      unreadable_reported=bool(row[4]), start_time=row[5], read_at=row[6])


# A watched run (``w``) that some active subscription of its server still wants polled.
_SUBSCRIBED = ("EXISTS (SELECT 1 FROM subscriptions s WHERE s.server_id = w.server_id AND s.run_id = w.run_id "
               "AND s.status = 'active')")


class WatchedRuns:
    """``pictures``: where the watcher puts the timeline picture of a run that just ended; :meth:`record_terminal`
    takes it and owes it with the end notifications it queues."""

    def __init__(self, store: Store, *, pictures: Pictures | None = None) -> None:
        self.store = store
        self.pictures = pictures

    def due(self, now: float, limit: int | None = None, *, horizon: float | None = None) -> list[WatchedRun]:
        """Distinct runs with an active subscription whose next poll is due, oldest due first.

        Due times are wall time (they survive restarts). With ``horizon`` (the longest wait the watcher ever
        sets), a due time more than that ahead of ``now`` was written before the wall clock was set back, and
        counts as due now rather than in an hour."""
        sql = (
            f"SELECT {_WATCHED_RUN} FROM watched_runs w "
            f"WHERE w.server_id = ? AND (w.next_poll_at <= ? OR w.next_poll_at > ?) AND {_SUBSCRIBED} "
            "ORDER BY w.next_poll_at"
        )
        params: list[Any] = [self.store.server_id, now, beyond(now, horizon)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_watched_run(r) for r in self.store.db.execute(sql, params).fetchall()]

    def next_due(self) -> float | None:
        row = self.store.db.execute(
            f"SELECT MIN(w.next_poll_at) FROM watched_runs w WHERE w.server_id = ? AND {_SUBSCRIBED}",
            [self.store.server_id],
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def watched_count(self) -> int:
        """How many runs have an active subscription (the metrics' ``wesbot_watched_runs``)."""
        return int(self.store.db.execute(
            "SELECT COUNT(DISTINCT run_id) FROM subscriptions WHERE server_id = ? AND status = 'active'",
            [self.store.server_id]).fetchone()[0])

    def record_states(self, polls: Iterable[tuple[str, str | None]], *, now: float, next_poll_at: float,
                      start_times: Mapping[str, str] | None = None, refresh: Collection[str] = ()) -> int:
        """Store successful polls of non-terminal states, in one transaction. Returns how many changed (their
        cards go stale). ``start_times``: runs' start times just learned; ``refresh``: runs whose cards show
        something new although their state is the same (the watcher's to judge), bumped too."""
        changed = 0
        starts = start_times or {}
        with self.store.transaction() as db:
            server_id = self.store.server_id
            for run_id, state in polls:
                changed += int(self._set_state(db, server_id, run_id, state, now, None, starts.get(run_id), None))
                db.execute(
                    "UPDATE watched_runs SET last_polled_at = ?, next_poll_at = ?, failures = 0, failing_since = NULL, "
                    "failing_reason = NULL, unreadable_reported = 0 WHERE server_id = ? AND run_id = ?",
                    [now, next_poll_at, server_id, run_id],
                )
            _bump_cards(db, server_id, refresh)
        return changed

    @staticmethod
    def _set_state(db: Database, server_id: int, run_id: str, state: str | None, now: float, exit_code: int | None,
                   start_time: str | None, end_time: str | None) -> bool:
        row = db.execute("SELECT state FROM watched_runs WHERE server_id = ? AND run_id = ?",
                         [server_id, run_id]).fetchone()
        changed = row is not None and row[0] != state
        db.execute(
            "UPDATE watched_runs SET state = ?, exit_code = COALESCE(?, exit_code), "
            "start_time = COALESCE(?, start_time), end_time = COALESCE(?, end_time), "
            "state_since = CASE WHEN state IS ? THEN state_since ELSE ? END WHERE server_id = ? AND run_id = ?",
            [state, exit_code, start_time, end_time, state, now, server_id, run_id],
        )
        if changed:
            _bump_cards(db, server_id, [run_id])
        return changed

    def progress_due(self, now: float, *, every: float, limit: int) -> list[str]:
        """Subscribed runs RUNNING whose task progress was never read, or not for ``every`` seconds; never read
        first, then the oldest read."""
        rows = self.store.db.execute(
            f"SELECT w.run_id FROM watched_runs w WHERE w.server_id = ? AND w.state = 'RUNNING' AND {_SUBSCRIBED} "
            "AND (w.tasks_read_at IS NULL OR w.tasks_read_at <= ? OR w.tasks_read_at > ?) "
            "ORDER BY w.tasks_read_at IS NOT NULL, w.tasks_read_at LIMIT ?",
            [self.store.server_id, now - every, now + every, limit]).fetchall()
        return [row[0] for row in rows]

    def record_progress(self, run_id: str, tasks: str | None, *, now: float) -> bool:
        """Store a read of the run's task progress (``tasks`` None: it could not be read, the last one is kept).
        Its cards go stale when the progress changed; returns whether it did."""
        with self.store.transaction() as db:
            server_id = self.store.server_id
            row = db.execute("SELECT tasks FROM watched_runs WHERE server_id = ? AND run_id = ?",
                             [server_id, run_id]).fetchone()
            changed = row is not None and tasks is not None and row[0] != tasks
            db.execute("UPDATE watched_runs SET tasks = COALESCE(?, tasks), tasks_read_at = ? "
                       "WHERE server_id = ? AND run_id = ?", [tasks, now, server_id, run_id])
            if changed:
                _bump_cards(db, server_id, [run_id])
        return changed

    def record_terminal(self, run_id: str, *, state: str, now: float, exit_code: int | None,
                        start_time: str | None, end_time: str | None, owed: dict[int, Message]) -> list[int]:
        """The run ended: in one transaction, store the state, queue the notification rendered for each
        subscription in ``owed`` (``dedupe_key`` = run, state, channel) and end those subscriptions. Rendered
        before the transaction: a subscription made since is not in ``owed``, stays active and is told on its
        next poll. The run's timeline picture, if one was drawn (``pictures``), is owed with each notification, in
        the same transaction. Returns the outbox ids queued."""
        picture = self.pictures.take(run_id, state) if self.pictures is not None else None
        with self.store.transaction() as db:
            server_id = self.store.server_id
            self._set_state(db, server_id, run_id, state, now, exit_code, start_time, end_time)
            db.execute("UPDATE watched_runs SET last_polled_at = ?, failures = 0 WHERE server_id = ? AND run_id = ?",
                       [now, server_id, run_id])
            queued = enqueue_in_threads(db, server_id, owed, kind="notification", now=now,
                                        key=lambda run, channel, _: f"end:{run}:{state}:{channel}")
            db.conn.executemany(
                "UPDATE subscriptions SET status = 'ended', ended_at = ?, card_version = card_version + 1 WHERE id = ?",
                [(now, sub_id) for sub_id, _ in queued])
            for _, outbox_id in queued:
                if picture is not None and outbox_id is not None:
                    attach(db, outbox_id, picture)
        return [outbox_id for _, outbox_id in queued if outbox_id is not None]

    def record_failure(self, run_id: str, *, now: float, reason: str, next_poll_at: float,
                       refresh: bool = False) -> WatchedRun:
        """A poll that could not read the run (timeout, 5xx, auth). The subscription is kept. ``refresh``: its
        cards show something new (it has just become unreadable)."""
        with self.store.transaction() as db:
            server_id = self.store.server_id
            db.execute(
                "UPDATE watched_runs SET failures = failures + 1, failing_since = COALESCE(failing_since, ?), "
                "failing_reason = ?, last_polled_at = ?, next_poll_at = ? WHERE server_id = ? AND run_id = ?",
                [now, reason, now, next_poll_at, server_id, run_id],
            )
            if refresh:
                _bump_cards(db, server_id, [run_id])
            row = db.execute(f"SELECT {_WATCHED_RUN} FROM watched_runs w WHERE w.server_id = ? AND w.run_id = ?",
                             [server_id, run_id]).fetchone()
        return _watched_run(row)

    def record_bug(self, run_id: str, *, next_poll_at: float) -> None:
        """A poll that failed on a bug in wesbot: poll again later (with the run's backoff), but this is not the
        server's doing, so the run does not count as unreadable and nobody is told."""
        with self.store.transaction() as db:
            db.execute("UPDATE watched_runs SET failures = failures + 1, next_poll_at = ? "
                       "WHERE server_id = ? AND run_id = ?", [next_poll_at, self.store.server_id, run_id])

    def failing_since(self, run_id: str) -> float | None:
        row = self.store.db.execute("SELECT failing_since FROM watched_runs WHERE server_id = ? AND run_id = ?",
                                    [self.store.server_id, run_id]).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_unreadable_reported(self, run_id: str, *, now: float, since: float, owed: dict[int, Message]) -> list[int]:
        """Queue the one "cannot read this run" note rendered for each subscription in ``owed`` (still active),
        and remember it was sent."""
        with self.store.transaction() as db:
            server_id = self.store.server_id
            queued = enqueue_in_threads(db, server_id, owed, kind="notice", now=now,
                                        key=lambda run, channel, _: f"unreadable:{run}:{channel}:{since}")
            db.execute("UPDATE watched_runs SET unreadable_reported = 1 WHERE server_id = ? AND run_id = ?",
                       [server_id, run_id])
        return [outbox_id for _, outbox_id in queued if outbox_id is not None]


def _bump_cards(db: Database, server_id: int, run_ids: Iterable[str]) -> None:
    """The cards of these runs' active subscriptions are stale: delivery renders and updates them."""
    db.conn.executemany(
        "UPDATE subscriptions SET card_version = card_version + 1 WHERE server_id = ? AND run_id = ? "
        "AND status = 'active'", [(server_id, run_id) for run_id in run_ids])
