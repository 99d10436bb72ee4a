"""Open the SQLite database and bring its schema up to date.

Migrations are functions named ``mNNN_what`` registered on :data:`migrations`; they are applied on
every open, each in its own transaction. Only ever append a migration: never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
import time
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


def _script(db: Database, sql: str) -> None:
    """Run several statements inside the migration's transaction (``executescript`` would commit first)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def open_db(path: str | Path | None = None, *, memory: bool = False, shared: bool = False) -> Database:
    """Open (creating if needed) and migrate the database; WAL mode and a busy timeout for shared use.

    ``shared``: an in-memory database whose one connection may be used from several threads (tests).
    """
    if memory:
        db = Database(sqlite3.connect(":memory:", check_same_thread=not shared))
    else:
        # The busy timeout is set on the connection itself, so that even switching to WAL mode, the first
        # statement, waits for another process that holds the lock instead of failing.
        db = Database(sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000))
        _switch_to_wal(db)
        # In WAL mode, NORMAL survives any crash of the process (kill -9 included); only a power cut can lose
        # the last commits. It spares an fsync per transaction, which the watcher makes many of.
        db.execute("PRAGMA synchronous = NORMAL")
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Two processes (or threads) opening a new file at once must not both create the tables: migrate
    # under the write lock, so the second one sees the first one's migrations as applied.
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        migrations.apply(db)
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.execute("COMMIT")
    with db.atomic():
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)",
            [datetime.now(UTC).isoformat(timespec="seconds")],
        )
    return db


def _switch_to_wal(db: Database) -> None:
    """WAL mode, once per file. The switch needs the file to itself, and SQLite may answer "locked" at once,
    without waiting out the busy timeout, while another connection opens the same new file (seen with four
    at once under load): try again for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if db.journal_mode != "wal":
                db.enable_wal()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def write_heartbeat(conn: sqlite3.Connection, now: datetime) -> None:
    """Commit one small row in ``meta``: the storage health probe. Only a commit proves that the file still
    takes writes (a read-only file, a full disk); the same key every time, so the table does not grow."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('health_probe', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [now.isoformat()],
    )
    conn.commit()


def record_wes_url(db: Database, wes_url: str) -> str | None:
    """Remember the WES server this database is used with; returns the previous one if it changed."""
    row = db.execute("SELECT value FROM meta WHERE key = 'wes_url'").fetchone()
    previous = row[0] if row else None
    with db.atomic():
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('wes_url', ?)", [wes_url])
    return previous if previous != wes_url else None


@migrations()
def m002_create_watch_tables(db: Database) -> None:
    """Subscriptions, the runs they watch, the outbox of messages owed to Slack, and the watcher's lease."""
    _script(
        db,
        """
        CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            -- active | ended (terminal state seen) | gone (404) | expired | failed (Slack refused) | removed
            status TEXT NOT NULL DEFAULT 'active',
            reason TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            ended_at REAL,
            workflow TEXT,
            -- the card message in the channel, kept up to date with chat.update
            card_ts TEXT,
            card_version INTEGER NOT NULL DEFAULT 1,
            card_synced INTEGER NOT NULL DEFAULT 0,
            card_failed TEXT,
            UNIQUE (run_id, channel_id)
        );
        CREATE INDEX subscriptions_status ON subscriptions (status, run_id);
        CREATE TABLE subscribers (
            subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
            user_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (subscription_id, user_id)
        );
        CREATE TABLE watched_runs (
            run_id TEXT PRIMARY KEY,
            state TEXT,
            exit_code INTEGER,
            start_time TEXT,
            end_time TEXT,
            state_since REAL,
            last_polled_at REAL,
            next_poll_at REAL NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0,
            failing_since REAL,
            failing_reason TEXT,
            unreadable_reported INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX watched_runs_due ON watched_runs (next_poll_at);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            -- one row per notification ever owed: a repeat is impossible (run, state, channel, or a notice key)
            dedupe_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            subscription_id INTEGER,
            -- post in the thread of this subscription's card, when it has one
            in_thread INTEGER NOT NULL DEFAULT 0,
            payload TEXT NOT NULL,
            -- pending | sending | sent | failed
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            sent_at REAL,
            ts TEXT,
            error TEXT
        );
        CREATE INDEX outbox_pending ON outbox (status, not_before);
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE TABLE notices (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        """
    )


@migrations()
def m003_create_cancel_tables(db: Database) -> None:
    """The audit trail of cancel attempts, and the cancels wesbot follows until the run ends."""
    _script(
        db,
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            user_id TEXT NOT NULL,
            channel_id TEXT,
            run_id TEXT NOT NULL,
            wes_url TEXT NOT NULL,
            state_before TEXT,
            -- requested | denied | already-finished | already-requested | wes-error | confirmed-canceled
            -- | ended-otherwise | no-effect
            outcome TEXT NOT NULL,
            wes_status INTEGER,
            detail TEXT
        );
        CREATE INDEX audit_run ON audit (run_id, at);
        CREATE TABLE cancels (
            -- one cancel in flight per run: the primary key is what makes a double click send one cancel
            run_id TEXT PRIMARY KEY,
            -- requesting (claimed, POST in flight) | requested (WES said yes) | done
            status TEXT NOT NULL,
            user_id TEXT NOT NULL,
            channel_id TEXT,
            state_before TEXT,
            requested_at REAL NOT NULL,
            deadline REAL NOT NULL,
            next_poll_at REAL NOT NULL DEFAULT 0,
            message_ts TEXT,
            message_error TEXT,
            response_url TEXT,
            audit_id INTEGER,
            final_state TEXT,
            outcome TEXT,
            synced INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX cancels_status ON cancels (status, next_poll_at);
        """,
    )


@migrations()
def m004_create_channel_watches(db: Database) -> None:
    """Channel-wide watches (every run that fails, or ends), and the last state the sweep saw of each run."""
    _script(
        db,
        """
        CREATE TABLE channel_watches (
            id INTEGER PRIMARY KEY,
            channel_id TEXT NOT NULL,
            -- failed | finished
            kind TEXT NOT NULL,
            tag_key TEXT NOT NULL DEFAULT '',
            tag_value TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            -- set by the first sweep after creation: runs that ended before are never announced
            active_from REAL,
            status TEXT NOT NULL DEFAULT 'active',
            UNIQUE (channel_id, kind, tag_key, tag_value)
        );
        CREATE TABLE swept_runs (
            run_id TEXT PRIMARY KEY,
            state TEXT,
            seen_at REAL NOT NULL
        );
        """,
    )


@migrations()
def m005_add_lease_host_and_pid(db: Database) -> None:
    """Where the lease holder runs, so that a restart on the same host takes over from a dead pid at once.
    Nullable: a row written by an older wesbot has neither, and its holder gets the full lease period."""
    _script(db, "ALTER TABLE leases ADD COLUMN host TEXT; ALTER TABLE leases ADD COLUMN pid INTEGER")
