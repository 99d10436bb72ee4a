"""Open the SQLite database and bring its schema up to date.

Migrations are functions named ``mNNN_what`` registered on :data:`migrations`; they are applied on
every open, each in its own transaction. Only ever append a migration: never edit one that has shipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("wesbot")
BUSY_TIMEOUT_MS = 5000


@migrations()
def m001_create_meta(db: Database) -> None:
    """Facts about this database: when it was created, and which WES server it was used with."""
    db.table("meta").create({"key": str, "value": str}, pk="key")


def open_db(path: str | Path | None = None, *, memory: bool = False) -> Database:
    """Open (creating if needed) and migrate the database; WAL mode and a busy timeout for shared use."""
    if memory:
        db = Database(memory=True)
    else:
        db = Database(str(path))
        db.enable_wal()
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    migrations.apply(db)
    with db.atomic():
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)",
            [datetime.now(UTC).isoformat(timespec="seconds")],
        )
    return db


def record_wes_url(db: Database, wes_url: str) -> str | None:
    """Remember the WES server this database is used with; returns the previous one if it changed."""
    row = db.execute("SELECT value FROM meta WHERE key = 'wes_url'").fetchone()
    previous = row[0] if row else None
    with db.atomic():
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('wes_url', ?)", [wes_url])
    return previous if previous != wes_url else None
