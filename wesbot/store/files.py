"""Files owed with outbox rows: the timeline picture of a run, uploaded in the thread of its end notification.

A file is written (:func:`attach`) in the transaction that queues its outbox row, so a crash loses neither or
both. It waits while its row is owed; when the row is posted, :meth:`~wesbot.store.outbox.Outbox.mark_sent`
records the thread it goes in (the row's thread, or the row itself), in the same transaction, and the file is due.
Delivery then uploads it (:class:`OutboxFiles`): marked ``uploading`` before, with Slack's file id stored before
the file is shared, and ``uploaded`` after; a row found ``uploading`` after a crash is looked for in its thread
before it is uploaded again. The bytes are dropped once the file is uploaded or given up.

:class:`Pictures` is the hand-over between the job that draws a picture and the transaction that stores it: the
job (``watcher.details``) puts it down, the repository that queues the end notification
(``WatchedRuns.record_terminal``) takes it. It is in memory only for that moment: a crash before the transaction
loses the picture together with the run's end, which is then read (and drawn) again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlite_utils import Database

from .base import Store, beyond

# Pictures drawn but not taken (their run's end was not recorded: a bug, a failed write) are dropped beyond this.
PICTURES_KEPT = 32


@dataclass(frozen=True, kw_only=True)
class Picture:
    """A PNG owed with a message: its file name and title in Slack, and its bytes."""

    filename: str
    title: str
    png: bytes


class Pictures:
    """The pictures drawn for runs that just ended, by (run id, terminal state), until the transaction that queues
    the run's end notification takes them. Thread-safe; bounded (the oldest go first)."""

    def __init__(self, limit: int = PICTURES_KEPT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], Picture] = OrderedDict()

    def put(self, run_id: str, state: str, picture: Picture) -> None:
        with self._lock:
            self._items[(run_id, state)] = picture
            self._items.move_to_end((run_id, state))
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def take(self, run_id: str, state: str) -> Picture | None:
        with self._lock:
            return self._items.pop((run_id, state), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def attach(db: Database, outbox_id: int, picture: Picture) -> None:
    """Owe ``picture`` with outbox row ``outbox_id``, inside the caller's transaction (the one that queued it)."""
    db.execute("INSERT OR IGNORE INTO outbox_files (outbox_id, filename, title, png) VALUES (?, ?, ?, ?)",
               [outbox_id, picture.filename, picture.title, picture.png])


@dataclass(frozen=True, kw_only=True)
class FileRow:
    """A file that may be uploaded now: its row's channel, the thread it goes in (None: its row's ts is unknown)."""

    outbox_id: int
    channel_id: str
    thread_ts: str | None
    filename: str
    title: str
    status: str
    attempts: int
    file_id: str | None
    # The dedupe key of its outbox row (which run it belongs to, for the log).
    key: str


# The files of this server (``o`` is the outbox row a file ``f`` belongs to) whose row was posted.
_DUE = ("FROM outbox_files f JOIN outbox o ON o.id = f.outbox_id WHERE o.server_id = ? AND o.status = 'sent' "
        "AND f.status IN ('pending', 'uploading')")


class OutboxFiles:
    def __init__(self, store: Store) -> None:
        self.store = store

    def due(self, now: float, *, limit: int = 50, horizon: float | None = None) -> list[FileRow]:
        """Files whose row was posted and whose next attempt is due, oldest first (without their bytes:
        :meth:`content`)."""
        rows = self.store.db.execute(
            "SELECT f.outbox_id, o.channel_id, f.thread_ts, f.filename, f.title, f.status, f.attempts, f.file_id, "
            f"o.dedupe_key {_DUE} AND (f.not_before <= ? OR f.not_before > ?) ORDER BY f.outbox_id LIMIT ?",
            [self.store.server_id, now, beyond(now, horizon), limit]).fetchall()
        return [FileRow(outbox_id=r[0], channel_id=r[1], thread_ts=r[2], filename=r[3], title=r[4], status=r[5],
                        attempts=r[6], file_id=r[7], key=r[8]) for r in rows]

    def content(self, outbox_id: int) -> bytes | None:
        """The bytes of a file still owed; None once it was uploaded or given up."""
        row = self.store.db.execute("SELECT png FROM outbox_files WHERE outbox_id = ?", [outbox_id]).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def owed(self) -> int:
        """How many files wait for an upload whose row was posted (due now or after a backoff)."""
        return int(self.store.db.execute(f"SELECT COUNT(*) {_DUE}", [self.store.server_id]).fetchone()[0])

    def status(self, outbox_id: int) -> tuple[str, str | None] | None:
        """(status, error) of the file owed with ``outbox_id``; None when there is none."""
        row = self.store.db.execute("SELECT status, error FROM outbox_files WHERE outbox_id = ?",
                                    [outbox_id]).fetchone()
        return None if row is None else (row[0], row[1])

    def mark_uploading(self, outbox_id: int) -> None:
        """Before an attempt: a file left ``uploading`` by a crash may have reached Slack (delivery looks first).
        The previous attempt's file id is forgotten: this attempt gets its own."""
        with self.store.transaction() as db:
            db.execute("UPDATE outbox_files SET status = 'uploading', attempts = attempts + 1, file_id = NULL "
                       "WHERE outbox_id = ?", [outbox_id])

    def set_file_id(self, outbox_id: int, file_id: str) -> None:
        """Slack's id of the file being uploaded, stored before it is shared (the one thing a crash must not lose)."""
        with self.store.transaction() as db:
            db.execute("UPDATE outbox_files SET file_id = ? WHERE outbox_id = ?", [file_id, outbox_id])

    def mark_uploaded(self, outbox_id: int, *, now: float, file_id: str | None = None) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE outbox_files SET status = 'uploaded', uploaded_at = ?, file_id = COALESCE(?, file_id), "
                       "png = NULL, error = NULL WHERE outbox_id = ?", [now, file_id, outbox_id])

    def mark_retry(self, outbox_id: int, *, not_before: float, error: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE outbox_files SET status = 'pending', not_before = ?, error = ? WHERE outbox_id = ?",
                       [not_before, error, outbox_id])

    def mark_failed(self, outbox_id: int, *, error: str) -> None:
        with self.store.transaction() as db:
            fail(db, outbox_id, error)


def fail(db: Database, outbox_id: int, error: str) -> None:
    """Give up the file owed with ``outbox_id`` (if any), inside the caller's transaction."""
    db.execute("UPDATE outbox_files SET status = 'failed', error = ?, png = NULL WHERE outbox_id = ? "
               "AND status IN ('pending', 'uploading')", [error, outbox_id])


def ready(db: Database, outbox_id: int, thread_ts: str | None) -> None:
    """Its row was posted: the file goes in ``thread_ts`` (None: the row's ts is unknown, so it cannot go)."""
    if thread_ts is None:
        fail(db, outbox_id, "the thread of its message is unknown")
        return
    db.execute("UPDATE outbox_files SET thread_ts = ? WHERE outbox_id = ? AND thread_ts IS NULL",
               [thread_ts, outbox_id])
