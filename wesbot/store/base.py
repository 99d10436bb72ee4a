"""The database object: one SQLite connection per thread, and the one transaction helper every repository
uses. Repositories (subscriptions, runs, outbox, values, leases, watches, cancels) hold no state of their own;
they read on the caller's connection and write inside :meth:`Store.transaction`.

WAL mode and a busy timeout (``db.open_db``) let the bot's listeners, its watcher and a second process share
one file. ``sqlite3`` connections must not be shared across threads, hence one per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .db import open_db

Message = dict[str, Any]


class Store:
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
        """This thread's connection (opened, and the schema migrated, on first use)."""
        if self._memory_db is not None:
            return self._memory_db
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = open_db(self._path)
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[Database]:
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


def beyond(now: float, horizon: float | None) -> float:
    """The stored wall time past which a due time can only predate a wall clock set back: due now.

    Due times are wall time (they survive restarts, and another process reads them). With ``horizon`` (the
    longest wait the watcher ever sets), one further ahead than that counts as due now, not in an hour."""
    return float("inf") if horizon is None else now + horizon
