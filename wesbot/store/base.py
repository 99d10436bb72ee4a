"""The database object: one SQLite connection per thread, and the one transaction helper every repository
uses. Repositories (subscriptions, runs, outbox, values, leases, watches, cancels) hold no state of their own;
they read on the caller's connection and write inside :meth:`Store.transaction`. A store is scoped to one WES
server (``server_id``): its repositories see that server's rows only, leases and ``meta`` excepted.

WAL mode and a busy timeout (``db.open_db``) let the bot's listeners, its watcher and a second process share
one file. ``sqlite3`` connections must not be shared across threads, hence one per thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Self

from sqlite_utils import Database

from .db import open_db
from .servers import claim_server

Message = dict[str, Any]


class Store:
    """One WES server's view of the database: every repository reads and writes the rows of ``server`` (by
    name) at ``url`` only. :meth:`scoped` gives another server's view of the same database."""

    def __init__(self, path: str | Path | None = None, *, memory: bool = False, server: str = "default",
                 url: str = "") -> None:
        if path is None and not memory:
            raise ValueError("a path, or memory=True")
        self._path = path
        self._memory_db: Database | None = None
        self._memory_lock = threading.RLock()
        # Set once one connection has migrated the file: the other threads' connections (a watcher's workers
        # are new threads each cycle) skip migrating, which takes the write lock and, with several servers'
        # watchers on one file, made writers wait past the busy timeout. Shared with scoped() copies.
        self._migrated = threading.Event()
        if memory:
            # One shared connection for an in-memory database (tests); transactions are serialised.
            self._memory_db = open_db(memory=True, shared=True)
        self._scope(server, url)

    def _scope(self, server: str, url: str) -> None:
        """What belongs to one store object rather than to the database: its server, and its threads'
        connections (a file store opens its own; an in-memory one has only the shared one)."""
        self.server = server
        self.url = url
        self._server_id: int | None = None
        self._local = threading.local()

    def scoped(self, server: str, url: str) -> Self:
        """The same database (the same file, or the same in-memory connection and lock) seen by another
        server. Built without ``__init__``, which would open a new in-memory database."""
        other = object.__new__(type(self))
        other._path, other._memory_db, other._memory_lock = self._path, self._memory_db, self._memory_lock
        other._migrated = self._migrated
        other._scope(server, url)
        return other

    @property
    def server_id(self) -> int:
        """This server's id in ``servers``, claimed on first use (see :func:`~wesbot.store.servers.claim_server`).

        Claimed in a transaction of its own, committed before anything uses the id: inside the caller's, a
        rollback would leave the id cached and its row gone. Two threads may both claim: claiming is
        idempotent, both get the same id."""
        if self._server_id is None:
            with self._write() as db:
                self._server_id = claim_server(db, self.server, self.url, time.time())
        return self._server_id

    @property
    def db(self) -> Database:
        """This thread's connection (opened, and the schema migrated, on first use)."""
        if self._memory_db is not None:
            return self._memory_db
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = open_db(self._path, migrate=not self._migrated.is_set())
            self._migrated.set()
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction. BEGIN IMMEDIATE takes the write lock up front, so two processes sharing the
        file wait for each other (busy timeout) instead of failing on a read-to-write upgrade.

        The server is claimed first, so that repositories may read :attr:`server_id` inside."""
        self.server_id  # noqa: B018 - claimed now: a claim cannot run inside this transaction
        with self._write() as db:
            yield db

    @contextmanager
    def _write(self) -> Iterator[Database]:
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
