"""Small named values the watcher keeps between cycles and restarts: whether the last sweep read the whole
run list, since when WES has refused our credentials. A key-value table per server (``notices``, by its old name)."""

from __future__ import annotations

from sqlite_utils import Database

from .base import Store


class Values:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> str | None:
        row = self.store.db.execute("SELECT value FROM notices WHERE server_id = ? AND key = ?",
                                    [self.store.server_id, key]).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str | None) -> None:
        """Set ``key`` (None deletes it)."""
        with self.store.transaction() as db:
            set_value(db, self.store.server_id, key, value)


def set_value(db: Database, server_id: int, key: str, value: str | None) -> None:
    """:meth:`Values.set` inside a transaction already open (``db`` is its connection)."""
    if value is None:
        db.execute("DELETE FROM notices WHERE server_id = ? AND key = ?", [server_id, key])
    else:
        db.execute("INSERT INTO notices (server_id, key, value) VALUES (?, ?, ?) "
                   "ON CONFLICT (server_id, key) DO UPDATE SET value = excluded.value", [server_id, key, value])
