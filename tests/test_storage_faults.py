"""Storage faults: one sentence that names the file and the fix, in Slack, on the terminal and in /healthz.

Real files in ``tmp_path`` throughout. Read-only is made with a ``mode=ro`` connection (root ignores file modes;
the chmod variant runs only as another user); a real SQLITE_FULL comes from ``PRAGMA max_page_count``, and the
health probe's full disk is a fake connection that raises "database or disk is full", since a real full
filesystem needs a mount.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App

from wesbot.commands import parse
from wesbot.server import make_wsgi
from wesbot.slack.app import Deps, answer
from wesbot.store import open_db
from wesbot.store.health import StorageHealth, describe_storage_error
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore

DB = "/x/wesbot.db"


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (sqlite3.OperationalError("attempt to write a readonly database"), "is read-only"),
        (OSError(errno.EROFS, "Read-only file system", DB + "-wal"), "is read-only"),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), "is read-only"),
        (sqlite3.OperationalError("database or disk is full"), "is full"),
        (OSError(errno.ENOSPC, "No space left on device", DB), "is full"),
        (sqlite3.OperationalError("database is locked"), "stayed locked"),
        (sqlite3.OperationalError("unable to open database file"), "cannot open"),
        (sqlite3.DatabaseError("database disk image is malformed"), "is damaged"),
        (sqlite3.DatabaseError("file is not a database"), "is damaged"),
        (sqlite3.OperationalError("disk I/O error"), "I/O error"),
    ],
)
def test_each_storage_fault_is_one_sentence_with_the_path_and_the_fix(error: BaseException, says: str) -> None:
    sentence = describe_storage_error(error, DB)
    assert sentence is not None and says in sentence
    assert DB in sentence and "\n" not in sentence and "Traceback" not in sentence
    assert ";" in sentence  # what is wrong; then what to do


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("database or disk is full"),  # not a storage error, whatever its text
        sqlite3.IntegrityError("UNIQUE constraint failed: meta.key"),
        sqlite3.OperationalError("no such table: meta"),
        PermissionError(errno.EACCES, "Permission denied", "/etc/other-file"),
        OSError(errno.ENOSPC, "No space left on device"),  # no file named: not known to be the database
    ],
)
def test_anything_else_is_not_a_storage_fault(error: BaseException) -> None:
    assert describe_storage_error(error, DB) is None


def test_a_storage_fault_wrapped_by_another_error_is_still_seen() -> None:
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.Error as inner:
            raise RuntimeError("could not subscribe") from inner
    except RuntimeError as outer:
        assert "is full" in (describe_storage_error(outer, DB) or "")


def _raised(action: Callable[[], object]) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        action()
    return caught.value


def test_real_sqlite_errors_are_recognised_by_their_codes(tmp_path: Path) -> None:
    path = tmp_path / "wesbot.db"
    open_db(path).close()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    readonly = _raised(lambda: ro.execute("INSERT INTO meta VALUES ('k', 'v')"))
    missing = _raised(lambda: sqlite3.connect(str(tmp_path / "no-such-folder" / "w.db")).execute("SELECT 1"))
    (tmp_path / "junk.db").write_bytes(b"not sqlite " * 500)
    junk = _raised(lambda: sqlite3.connect(str(tmp_path / "junk.db")).execute("SELECT * FROM sqlite_master"))
    small = sqlite3.connect(str(tmp_path / "small.db"))
    small.execute("CREATE TABLE t (x)")
    small.execute("PRAGMA max_page_count = 3")
    full = _raised(lambda: [small.execute("INSERT INTO t VALUES (randomblob(3000))") for _ in range(5)])
    for error, says in ((readonly, "is read-only"), (missing, "cannot open"), (junk, "is damaged"), (full, "is full")):
        assert says in (describe_storage_error(error, str(path)) or ""), error


# -- the health checker ---------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "wesbot.db"
    open_db(path).close()
    return path


def _heartbeat(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'health_probe'").fetchone()
    return row[0] if row else None


def test_a_usable_database_is_healthy_and_the_probe_really_commits(db_path: Path) -> None:
    assert StorageHealth(db_path).check() == []
    assert _heartbeat(db_path) is not None  # a committed write: the one a full disk or read-only file refuses


def test_in_memory_databases_are_always_healthy() -> None:
    assert StorageHealth(None).check() == [] and StorageHealth(":memory:").check() == []


def test_a_read_only_database_is_reported_though_begin_immediate_would_pass(db_path: Path) -> None:
    def read_only() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)

    # Why the probe commits a row: taking the write lock and rolling back succeeds on a read-only database.
    conn = read_only()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")
    conn.close()
    [problem] = StorageHealth(db_path, connect=read_only).check()
    assert "cannot write its database" in problem and "is read-only" in problem and str(db_path) in problem


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes; the mode=ro test covers read-only")
def test_a_database_chmod_read_only_after_start_is_reported(db_path: Path) -> None:
    health = StorageHealth(db_path)
    db_path.chmod(0o444)
    db_path.parent.chmod(0o555)
    try:
        [problem] = health.check()
    finally:
        db_path.parent.chmod(0o755)
        db_path.chmod(0o644)
    assert "is read-only" in problem


def test_a_full_disk_is_reported(db_path: Path) -> None:
    class FullDisk:
        def execute(self, *args: Any) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        def commit(self) -> None: ...

        def close(self) -> None: ...

    [problem] = StorageHealth(db_path, connect=lambda: FullDisk()).check()  # type: ignore[arg-type,return-value]
    assert "is full" in problem and str(db_path.parent) in problem


def test_a_database_locked_by_another_process_is_reported(db_path: Path) -> None:
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        [problem] = StorageHealth(db_path, connect=lambda: sqlite3.connect(db_path, timeout=0.05)).check()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "stayed locked" in problem


def test_a_database_deleted_while_open_is_reported(db_path: Path) -> None:
    db = open_db(db_path)
    health = StorageHealth(db_path)
    for name in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        name.unlink(missing_ok=True)
    # The open connection does not notice: it goes on writing to the deleted file.
    db.execute("INSERT INTO meta (key, value) VALUES ('after', 'delete')")
    [problem] = health.check()
    assert "was deleted while wesbot was running" in problem and str(db_path) in problem
    assert not db_path.exists()  # the probe did not create a new, empty database
    db.close()


def test_a_database_replaced_by_another_file_is_reported_and_not_written(db_path: Path, tmp_path: Path) -> None:
    health = StorageHealth(db_path)
    other = tmp_path / "other.db"
    open_db(other).close()
    os.replace(other, db_path)
    [problem] = health.check()
    assert "was replaced by another file" in problem
    assert _heartbeat(db_path) is None  # no heartbeat written into a file that is not wesbot's


def test_a_database_corrupted_in_place_is_reported(db_path: Path) -> None:
    health = StorageHealth(db_path)
    with open(db_path, "r+b") as file:  # same inode: only the probe can tell
        file.write(b"garbage " * 16)
    [problem] = health.check()
    assert "is damaged or is not a SQLite database" in problem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_probe_runs_at_most_once_per_interval(db_path: Path) -> None:
    clock, opened = Clock(), []
    broken = [True]

    def connect() -> sqlite3.Connection:
        opened.append(clock.now)
        return sqlite3.connect(f"file:{db_path}?mode={'ro' if broken[0] else 'rw'}", uri=True)

    health = StorageHealth(db_path, interval=5, clock=clock, connect=connect)
    assert health.check() and health.check()  # the second answer is the cached one
    assert len(opened) == 1
    broken[0] = False
    clock.now += 4.9
    assert health.check() and len(opened) == 1
    clock.now += 0.2
    assert health.check() == [] and len(opened) == 2  # recovered once the probe ran again


def test_health_logs_a_change_once_not_every_check(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    health = StorageHealth(db_path)
    db_path.unlink()
    with caplog.at_level(logging.INFO, logger="wesbot.store"):
        for _ in range(3):
            health.check()
    assert [r.levelname for r in caplog.records] == ["ERROR"]


# -- /healthz ---------------------------------------------------------------------------------------


def _get_health(wsgi: Callable[..., Any]) -> tuple[str, dict[str, str], str]:
    seen: list[Any] = []
    body = b"".join(wsgi({"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"},
                         lambda status, headers: seen.extend([status, dict(headers)])))
    return seen[0], seen[1], body.decode()


def test_healthz_is_503_with_the_sentences_when_storage_is_unhealthy(db_path: Path) -> None:
    app = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False)
    health = StorageHealth(db_path)
    wsgi = make_wsgi(app, healthy=lambda: True, signing_secret="s", problems=health.check)
    assert _get_health(wsgi)[::2] == ("200 OK", "ok\n")
    db_path.unlink()
    status, headers, body = _get_health(wsgi)
    assert status == "503 Service Unavailable" and headers["Content-Type"].startswith("text/plain")
    assert body.endswith("\n") and "was deleted while wesbot was running" in body and str(db_path) in body
    # stopping wins: a process on its way out is not judged by its storage
    stopping = make_wsgi(app, healthy=lambda: False, signing_secret="s", problems=health.check)
    assert _get_health(stopping)[::2] == ("503 Service Unavailable", "stopping\n")


# -- Slack and the terminal ----------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.fixture
def read_only_store(db_path: Path) -> Iterator[WatchStore]:
    store = WatchStore(db_path)
    store.db.execute("PRAGMA query_only = ON")  # this thread's connection refuses writes, as a read-only file does
    yield store
    store.close()


def test_a_slash_command_that_hits_a_storage_fault_says_what_is_wrong(
        read_only_store: WatchStore, db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    respond = Recorder()
    with ThreadPoolExecutor(1) as pool, caplog.at_level(logging.ERROR, logger="wesbot.slack"):
        deps = Deps.single(wes=None, host="wes.test", pool=pool, store=read_only_store,  # type: ignore[arg-type]
                    watches=WatchesStore(read_only_store), db_path=str(db_path))
        result = answer(deps, parse("watch failed"), respond, user_id="U1", channel_id="C1")
    assert not result.ok
    [call] = respond.calls
    assert "cannot write its database" in call["text"] and str(db_path) in call["text"]
    assert "something went wrong" not in call["text"] and "Traceback" not in str(call)
    error_id = re.search(r"error id ([0-9a-f]{8})", call["text"])
    assert error_id, call["text"]
    [record] = [r for r in caplog.records if error_id.group(1) in r.getMessage()]
    assert record.levelname == "ERROR" and record.exc_info is not None  # logged once, with the traceback


def test_the_terminal_prints_the_sentence_and_exits_1(tmp_path: Path) -> None:
    db_path = tmp_path / "wesbot.db"
    db_path.write_bytes(b"this is not a database " * 200)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WES_", "SLACK_", "WESBOT_"))}
    env.update(WES_URL="http://127.0.0.1:9/ga4gh/wes/v1", WESBOT_DB=str(db_path))
    out = subprocess.run([sys.executable, "-m", "wesbot", "audit"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith("wesbot: wesbot's database ") and "is damaged" in out.stderr
    assert str(db_path) in out.stderr and "Traceback" not in out.stderr and out.stderr.count("\n") == 1
