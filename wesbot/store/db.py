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


def open_db(path: str | Path | None = None, *, memory: bool = False, shared: bool = False,
            migrate: bool = True) -> Database:
    """Open (creating if needed) and migrate the database; WAL mode and a busy timeout for shared use.

    ``shared``: an in-memory database whose one connection may be used from several threads (tests).
    ``migrate=False``: a further connection to a file this process has migrated already (migrating takes the
    write lock, and the watchers' worker threads each open a connection).
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
    if not migrate:
        return db
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


# m006: the tables whose rows are about one WES server, each as rebuilt with a ``server_id`` in its uniqueness
# (SQLite cannot change a UNIQUE or a PRIMARY KEY in place), and the indexes to recreate on it.
_KEYED_TABLES: dict[str, tuple[str, str]] = {
    "subscriptions": (
        """
        CREATE TABLE new_subscriptions (
            id INTEGER PRIMARY KEY,
            server_id INTEGER NOT NULL REFERENCES servers (id),
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
            UNIQUE (server_id, run_id, channel_id)
        )
        """,
        "CREATE INDEX subscriptions_status ON subscriptions (server_id, status, run_id)",
    ),
    "watched_runs": (
        """
        CREATE TABLE new_watched_runs (
            server_id INTEGER NOT NULL REFERENCES servers (id),
            run_id TEXT NOT NULL,
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
            unreadable_reported INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (server_id, run_id)
        )
        """,
        "CREATE INDEX watched_runs_due ON watched_runs (server_id, next_poll_at)",
    ),
    "outbox": (
        """
        CREATE TABLE new_outbox (
            id INTEGER PRIMARY KEY,
            server_id INTEGER NOT NULL REFERENCES servers (id),
            -- one row per notification ever owed on a server: a repeat is impossible (run, state, channel,
            -- or a notice key)
            dedupe_key TEXT NOT NULL,
            kind TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            subscription_id INTEGER,
            -- post in the thread of this subscription's card, when it has one
            in_thread INTEGER NOT NULL DEFAULT 0,
            payload TEXT NOT NULL,
            -- pending | sending | sent | failed | skipped
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            sent_at REAL,
            ts TEXT,
            error TEXT,
            UNIQUE (server_id, dedupe_key)
        )
        """,
        "CREATE INDEX outbox_pending ON outbox (server_id, status, not_before)",
    ),
    "notices": (
        """
        CREATE TABLE new_notices (
            server_id INTEGER NOT NULL REFERENCES servers (id),
            key TEXT NOT NULL,
            value TEXT,
            PRIMARY KEY (server_id, key)
        )
        """,
        "",
    ),
    "audit": (
        """
        CREATE TABLE new_audit (
            id INTEGER PRIMARY KEY,
            server_id INTEGER NOT NULL REFERENCES servers (id),
            at REAL NOT NULL,
            user_id TEXT NOT NULL,
            channel_id TEXT,
            run_id TEXT NOT NULL,
            wes_url TEXT NOT NULL,
            state_before TEXT,
            -- sending | requested | denied | already-finished | already-requested | wes-error
            -- | confirmed-canceled | ended-otherwise | no-effect
            outcome TEXT NOT NULL,
            wes_status INTEGER,
            detail TEXT
        )
        """,
        "CREATE INDEX audit_run ON audit (server_id, run_id, at)",
    ),
    "cancels": (
        """
        CREATE TABLE new_cancels (
            server_id INTEGER NOT NULL REFERENCES servers (id),
            -- one cancel in flight per run: the primary key is what makes a double click send one cancel
            run_id TEXT NOT NULL,
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
            synced INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (server_id, run_id)
        )
        """,
        "CREATE INDEX cancels_status ON cancels (server_id, status, next_poll_at)",
    ),
    "channel_watches": (
        """
        CREATE TABLE new_channel_watches (
            id INTEGER PRIMARY KEY,
            server_id INTEGER NOT NULL REFERENCES servers (id),
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
            UNIQUE (server_id, channel_id, kind, tag_key, tag_value)
        )
        """,
        "",
    ),
    "swept_runs": (
        """
        CREATE TABLE new_swept_runs (
            server_id INTEGER NOT NULL REFERENCES servers (id),
            run_id TEXT NOT NULL,
            state TEXT,
            seen_at REAL NOT NULL,
            PRIMARY KEY (server_id, run_id)
        )
        """,
        "",
    ),
}
LEGACY_SERVER_ID = 1


@migrations()
def m006_key_rows_by_server(db: Database) -> None:
    """Every row about runs belongs to one WES server (``servers``), and each channel may pick its default
    server (``channel_servers``, by configured name). The rows of a database written by the single-server
    release belong to one legacy server (id 1, no name yet, the URL it recorded): the first server configured
    with that URL claims them (``servers.claim_server``). Every row and every id is kept: subscriptions.id
    and outbox.id are referenced by other tables."""
    _script(
        db,
        """
        CREATE TABLE servers (
            id INTEGER PRIMARY KEY,
            -- the configured name, NULL for the legacy server until a configured one claims it
            name TEXT,
            -- without a trailing '/', or '' for a legacy database that never recorded its URL
            url TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (name, url)
        );
        CREATE TABLE channel_servers (
            channel_id TEXT PRIMARY KEY,
            -- a configured server's name
            server TEXT NOT NULL,
            set_by TEXT NOT NULL,
            set_at REAL NOT NULL
        )
        """,
    )
    _add_legacy_server(db)
    for table, (create, index) in _KEYED_TABLES.items():
        _rebuild_with_server(db, table, create, index)


def _add_legacy_server(db: Database) -> None:
    """The one server of a database that has rows, or a recorded URL: id 1, which every old row gets. A fresh
    database gets none (the first server claimed is then a new row like any other)."""
    used = " OR ".join(f"EXISTS (SELECT 1 FROM {table})" for table in _KEYED_TABLES)
    recorded = db.execute("SELECT value FROM meta WHERE key = 'wes_url'").fetchone()
    if recorded is None and not db.execute(f"SELECT {used}").fetchone()[0]:
        return
    db.execute(
        "INSERT INTO servers (id, name, url, created_at) VALUES (?, NULL, ?, ?)",
        [LEGACY_SERVER_ID, (recorded[0] or "").rstrip("/") if recorded else "", time.time()],
    )


def _rebuild_with_server(db: Database, table: str, create: str, index: str) -> None:
    """The SQLite way to change a table's keys: create the new table, copy every row (every column, by name,
    with the legacy server's id), drop the old one, rename the new one, recreate the indexes."""
    columns = ", ".join(f'"{row[1]}"' for row in db.execute(f"PRAGMA table_info({table})").fetchall())
    db.execute(create)
    db.execute(f"INSERT INTO new_{table} (server_id, {columns}) SELECT ?, {columns} FROM {table}", [LEGACY_SERVER_ID])
    db.execute(f"DROP TABLE {table}")
    db.execute(f"ALTER TABLE new_{table} RENAME TO {table}")
    if index:
        db.execute(index)


@migrations()
def m007_add_task_progress(db: Database) -> None:
    """A running run's task progress (its card shows it), as ``outcome.TaskProgress.as_json``, and when it was
    read: the watcher reads it every few minutes, not every poll."""
    db.execute("ALTER TABLE watched_runs ADD COLUMN tasks TEXT")
    db.execute("ALTER TABLE watched_runs ADD COLUMN tasks_read_at REAL")


@migrations()
def m008_create_unfurls(db: Database) -> None:
    """When each run was last unfurled in each channel (``store.unfurls``): once per channel per half hour."""
    _script(
        db,
        """
        CREATE TABLE unfurls (
            server_id INTEGER NOT NULL REFERENCES servers (id),
            run_id TEXT NOT NULL,
            channel_id TEXT NOT NULL,
            -- wall time of the claim
            at REAL NOT NULL,
            PRIMARY KEY (server_id, run_id, channel_id)
        );
        CREATE INDEX unfurls_at ON unfurls (server_id, at)
        """,
    )


@migrations()
def m009_add_deadlines(db: Database) -> None:
    """Deadlines: a channel watch's duration (``watch long 6h``, ``watch queued 30m``); when the sweep first saw
    each run (the clock of a run whose list entry gives no start time); which late runs each watch told of
    (once each); a subscription's ``--deadline`` and when it was said."""
    _script(
        db,
        """
        ALTER TABLE channel_watches ADD COLUMN after_seconds REAL;
        ALTER TABLE swept_runs ADD COLUMN first_seen REAL;
        ALTER TABLE subscriptions ADD COLUMN deadline_after REAL;
        ALTER TABLE subscriptions ADD COLUMN deadline_told REAL;
        CREATE TABLE late_runs (
            server_id INTEGER NOT NULL REFERENCES servers (id),
            watch_id INTEGER NOT NULL,
            run_id TEXT NOT NULL,
            told_at REAL NOT NULL,
            PRIMARY KEY (server_id, watch_id, run_id)
        )
        """,
    )


@migrations()
def m010_create_outbox_files(db: Database) -> None:
    """A file owed with an outbox row (the run's timeline picture with its end notification), written in the
    transaction that queues the row and uploaded in the row's thread once the row is posted (``store.files``)."""
    _script(
        db,
        """
        CREATE TABLE outbox_files (
            outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id),
            filename TEXT NOT NULL,
            title TEXT NOT NULL,
            -- the bytes, until they are uploaded or given up (then NULL)
            png BLOB,
            -- pending (until its row is posted, then due) | uploading (an attempt started: it may have reached
            -- Slack) | uploaded | failed
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0,
            -- the thread it goes in, set when its row was posted: the row's thread, or the row's own ts
            thread_ts TEXT,
            -- Slack's id of the file of the latest attempt, stored before the file is shared in the channel
            file_id TEXT,
            error TEXT,
            uploaded_at REAL
        );
        CREATE INDEX outbox_files_due ON outbox_files (status, not_before)
        """,
    )


@migrations()
def m011_create_report_schedules(db: Database) -> None:
    """Scheduled reports (``store.reports``): one per channel and server, in its setter's time zone, and when
    it is next due (each period's report has its own outbox key, so it goes out once)."""
    _script(
        db,
        """
        CREATE TABLE report_schedules (
            id INTEGER PRIMARY KEY,
            server_id INTEGER NOT NULL REFERENCES servers (id),
            channel_id TEXT NOT NULL,
            -- as typed: daily HH:MM | weekly DAY HH:MM
            schedule TEXT NOT NULL,
            tz TEXT NOT NULL,
            set_by TEXT NOT NULL,
            set_at REAL NOT NULL,
            next_at REAL NOT NULL,
            UNIQUE (server_id, channel_id)
        )
        """,
    )
