"""Channel-wide watches, and the sweep's memory of each listed run's last state (SQLite), per WES server: a
channel watching every failed run watches one server's runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..format import duration_text
from ..wes.models import is_terminal, parse_state
from .outbox import enqueue
from .values import set_value
from .watch import WatchStore

WATCH_KINDS = ("failed", "finished", "long", "queued")
# The value that says whether the last sweep read the whole run list (the next one decides on it).
SWEEP_COMPLETE = "sweep_complete"


@dataclass(frozen=True, kw_only=True)
class ChannelWatch:
    id: int
    channel_id: str
    kind: str
    tag_key: str
    tag_value: str
    created_by: str
    created_at: float
    active_from: float | None
    # A deadline watch's duration (long, queued), in seconds; None for the watches of ends (failed, finished).
    after: float | None = None

    def matches_tags(self, tags: dict[str, str]) -> bool:
        return not self.tag_key or tags.get(self.tag_key) == self.tag_value

    def describe(self) -> str:
        tag = f" tagged {self.tag_key}={self.tag_value}" if self.tag_key else ""
        if self.kind == "long":
            return f"every run{tag} still active {duration_text(self.after or 0)} after it started"
        if self.kind == "queued":
            return f"every run{tag} queued or initializing for {duration_text(self.after or 0)}"
        return f"every run{tag} that {'fails' if self.kind == 'failed' else 'ends'}"


@dataclass(frozen=True, kw_only=True)
class Owed:
    """A message the sweep owes: ``skip`` rows only reserve their key (the run went into a digest)."""

    key: str
    channel_id: str
    payload: dict[str, Any]
    kind: str = "notification"
    skip: bool = False


_COLUMNS = "id, channel_id, kind, tag_key, tag_value, created_by, created_at, active_from, after_seconds"


def _watch(row: tuple[Any, ...]) -> ChannelWatch:
    return ChannelWatch(id=row[0], channel_id=row[1], kind=row[2], tag_key=row[3], tag_value=row[4],
                        created_by=row[5], created_at=row[6], active_from=row[7], after=row[8])


class WatchesStore:
    def __init__(self, store: WatchStore) -> None:
        self.store = store

    def add(self, *, channel_id: str, kind: str, tag_key: str, tag_value: str, user_id: str,
            now: float, after: float | None = None) -> tuple[ChannelWatch, bool]:
        """Set a watch (one per channel, kind and tag); a deadline watch set again with another duration takes
        it, and starts over as new (the runs already late by it come in one digest)."""
        with self.store.transaction() as db:
            server_id = self.store.server_id
            existing = db.execute(
                f"SELECT {_COLUMNS}, status FROM channel_watches WHERE server_id = ? AND channel_id = ? AND kind = ? "
                "AND tag_key = ? AND tag_value = ?", [server_id, channel_id, kind, tag_key, tag_value]).fetchone()
            if existing is not None and existing[9] == "active" and existing[8] == after:
                return _watch(existing), False
            if existing is not None:
                db.execute("UPDATE channel_watches SET status = 'active', created_by = ?, created_at = ?, "
                           "active_from = NULL, after_seconds = ? WHERE id = ?", [user_id, now, after, existing[0]])
                # A watch set again starts over: the late runs it told of are told again, in its first digest.
                db.execute("DELETE FROM late_runs WHERE server_id = ? AND watch_id = ?", [server_id, existing[0]])
                watch_id = existing[0]
            else:
                watch_id = db.execute(
                    "INSERT INTO channel_watches (server_id, channel_id, kind, tag_key, tag_value, created_by, "
                    "created_at, after_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [server_id, channel_id, kind, tag_key, tag_value, user_id, now, after]).lastrowid
            row = db.execute(f"SELECT {_COLUMNS} FROM channel_watches WHERE id = ?", [watch_id]).fetchone()
            return _watch(row), True

    def remove(self, *, channel_id: str, kind: str, tag_key: str, tag_value: str) -> bool:
        with self.store.transaction() as db:
            return db.execute(
                "UPDATE channel_watches SET status = 'removed' WHERE server_id = ? AND channel_id = ? AND kind = ? "
                "AND tag_key = ? AND tag_value = ? AND status = 'active'",
                [self.store.server_id, channel_id, kind, tag_key, tag_value]).rowcount == 1

    def of_channel(self, channel_id: str) -> list[ChannelWatch]:
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM channel_watches WHERE server_id = ? AND channel_id = ? AND status = 'active' "
            "ORDER BY id", [self.store.server_id, channel_id]).fetchall()
        return [_watch(r) for r in rows]

    def of_creator(self, user_id: str) -> list[ChannelWatch]:
        """The active watches ``user_id`` set, in every channel (the Home tab)."""
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM channel_watches WHERE server_id = ? AND created_by = ? AND status = 'active' "
            "ORDER BY id", [self.store.server_id, user_id]).fetchall()
        return [_watch(r) for r in rows]

    def remove_own(self, watch_id: int, user_id: str) -> ChannelWatch | None:
        """Remove watch ``watch_id`` if it is active and ``user_id`` set it (the Home tab's Unwatch button, whose
        value is not trusted): the watch removed, else None."""
        with self.store.transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM channel_watches WHERE id = ? AND server_id = ? AND created_by = ? "
                "AND status = 'active'", [watch_id, self.store.server_id, user_id]).fetchone()
            if row is None:
                return None
            db.execute("UPDATE channel_watches SET status = 'removed' WHERE id = ?", [watch_id])
            return _watch(row)

    def active(self) -> list[ChannelWatch]:
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM channel_watches WHERE server_id = ? AND status = 'active' ORDER BY id",
            [self.store.server_id]).fetchall()
        return [_watch(r) for r in rows]

    def any_active(self) -> bool:
        return self.store.db.execute("SELECT 1 FROM channel_watches WHERE server_id = ? AND status = 'active' LIMIT 1",
                                     [self.store.server_id]).fetchone() is not None

    def first_seen(self) -> dict[str, float]:
        """When the sweep first saw each run it stores (wall time): the clock of the deadline watches."""
        return {r[0]: r[1] for r in self.store.db.execute(
            "SELECT run_id, COALESCE(first_seen, seen_at) FROM swept_runs WHERE server_id = ?",
            [self.store.server_id]).fetchall()}

    def late_marker(self) -> int:
        """Changes whenever a late run is recorded (the sweeper keeps what was told in memory between sweeps)."""
        row = self.store.db.execute("SELECT MAX(rowid) FROM late_runs").fetchone()
        return int(row[0] or 0)

    def told_late(self) -> set[tuple[int, str]]:
        """(watch id, run id) of every late run a deadline watch has told of."""
        return {(r[0], r[1]) for r in self.store.db.execute(
            "SELECT watch_id, run_id FROM late_runs WHERE server_id = ?", [self.store.server_id]).fetchall()}

    def swept_states(self) -> dict[str, str | None]:
        return {r[0]: r[1] for r in self.store.db.execute(
            "SELECT run_id, state FROM swept_runs WHERE server_id = ?", [self.store.server_id]).fetchall()}

    def subscribed_channels(self, run_ids: Iterable[str]) -> set[tuple[str, str]]:
        """(run, channel) pairs with an active run subscription: those channels hear about it from there."""
        ids = list(run_ids)
        pairs: set[tuple[str, str]] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            pairs.update((r[0], r[1]) for r in self.store.db.execute(
                "SELECT run_id, channel_id FROM subscriptions WHERE server_id = ? AND status = 'active' "
                f"AND run_id IN ({marks})", [self.store.server_id, *chunk]).fetchall())
        return pairs

    def record_sweep(self, *, changes: list[tuple[str, str | None]], owed: list[Owed], now: float,
                     complete: bool, activate: bool, late: Iterable[tuple[int, str]] = ()) -> int:
        """In one transaction: the states seen, the messages they owe (deduplicated by key), the late runs told
        of (``late``: watch id, run id), whether the sweep read the whole list (the next sweep decides on that),
        and the activation of watches created before it. Returns how many messages were queued."""
        queued = 0
        with self.store.transaction() as db:
            server_id = self.store.server_id
            db.conn.executemany(
                "INSERT INTO swept_runs (server_id, run_id, state, seen_at, first_seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (server_id, run_id) DO UPDATE SET state = excluded.state, seen_at = excluded.seen_at",
                [(server_id, run_id, state, now, now) for run_id, state in changes],
            )
            db.conn.executemany(
                "INSERT OR IGNORE INTO late_runs (server_id, watch_id, run_id, told_at) VALUES (?, ?, ?, ?)",
                [(server_id, watch_id, run_id, now) for watch_id, run_id in late])
            # An ended run is never late again: what was told of it is forgotten.
            db.conn.executemany("DELETE FROM late_runs WHERE server_id = ? AND run_id = ?",
                                [(server_id, run_id) for run_id, state in changes if is_terminal(parse_state(state))])
            for item in owed:
                queued += int(enqueue(db, server_id, key=item.key, kind=item.kind, channel_id=item.channel_id,
                                      payload=item.payload, now=now, skip=item.skip) is not None and not item.skip)
            if activate:
                db.execute("UPDATE channel_watches SET active_from = ? WHERE server_id = ? AND active_from IS NULL "
                           "AND status = 'active' AND created_at <= ?", [now, server_id, now])
            set_value(db, server_id, SWEEP_COMPLETE, "1" if complete else "0")
        return queued
