"""Is the database usable? Storage faults said in one sentence, and a health check for ``/healthz``.

A full disk, a read-only file or a database deleted under a running bot are an operator's problems, not bugs:
each gets one sentence that names the file (``WESBOT_DB``) and says the fix, instead of "something went wrong".
:class:`StorageHealth` finds the faults that no request has hit yet: the file removed or replaced since it was
opened (wesbot would go on writing to a file nobody will ever read), and a file that no longer takes a write.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from ..causes import causes
from .db import BUSY_TIMEOUT_MS, write_heartbeat

logger = logging.getLogger("wesbot.store")

# How often /healthz may really write to the database; in between it answers from the last probe.
PROBE_INTERVAL_SECONDS = 5.0
# The probe waits this long for another writer, not the store's full busy timeout: a health check must be quick.
PROBE_BUSY_SECONDS = 1.0


@dataclass(frozen=True)
class _Fault:
    """One kind of storage fault: how to recognise it, and the sentence (``{path}``, ``{folder}``) that says it."""

    codes: frozenset[int]  # SQLite result codes, extended (exact) or primary (the low byte)
    phrases: tuple[str, ...]  # message fragments, for an error that carries no code
    errnos: frozenset[int]  # for an OSError about the database's own files
    sentence: str


# The first fault that matches wins, so an extended code with a sentence of its own comes before its primary code.
_FAULTS = (
    _Fault(frozenset({1032}), (), frozenset(),  # SQLITE_READONLY_DBMOVED (its message is the plain read-only one)
           "wesbot's database {path} was moved or deleted while wesbot was running; put it back, or restart wesbot "
           "so that it opens the file WESBOT_DB names"),
    _Fault(frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM}), ("readonly database", "read-only"),
           frozenset({errno.EROFS, errno.EACCES, errno.EPERM}),
           "wesbot cannot write its database {path}: the file or its folder is read-only; give the user running "
           "wesbot write access to both (WAL mode also needs to create {path}-wal and {path}-shm)"),
    _Fault(frozenset({sqlite3.SQLITE_FULL}), ("database or disk is full",), frozenset({errno.ENOSPC, errno.EDQUOT}),
           "wesbot cannot write its database {path}: the disk (or the user's quota) is full; free space on the "
           "filesystem that holds {folder}"),
    _Fault(frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}), ("database is locked", "table is locked"),
           frozenset(),
           "wesbot's database {path} stayed locked by another process for longer than the busy timeout "
           f"({BUSY_TIMEOUT_MS / 1000:g} s); find what holds it (another wesbot process, an sqlite3 shell, "
           "a backup tool) and stop it"),
    _Fault(frozenset({sqlite3.SQLITE_CANTOPEN}), ("unable to open database file",),
           frozenset({errno.ENOENT, errno.ENOTDIR}),
           "wesbot cannot open its database {path}: the file or its folder is missing or cannot be created; point "
           "WESBOT_DB into an existing folder that the user running wesbot can write to"),
    _Fault(frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}), ("malformed", "file is not a database"),
           frozenset(),
           "wesbot's database {path} is damaged or is not a SQLite database; stop wesbot, move the file aside "
           "(keep it to inspect) and restore it from a backup, or let wesbot start a new, empty one"),
    _Fault(frozenset({sqlite3.SQLITE_IOERR}), ("disk i/o error",), frozenset({errno.EIO}),
           "wesbot could not read or write its database {path}: the operating system reported an I/O error; check "
           "the disk and the filesystem that holds {folder} (SQLite's WAL mode does not work on network filesystems)"),
)

_REMOVED = ("wesbot's database {path} was deleted while wesbot was running: what it writes now goes to the deleted "
            "file and is lost when it stops; restore the file from a backup and restart wesbot (a restart alone "
            "starts a new, empty database)")
_REPLACED = ("wesbot's database {path} was replaced by another file while wesbot was running, and wesbot still "
             "writes to the old one; restart wesbot so that all of it uses the new file (or put the old one back)")


def _is_memory(path: str | Path | None) -> bool:
    return path is None or str(path) in ("", ":memory:")


def _render(sentence: str, path: str | Path | None) -> str:
    if _is_memory(path):
        return sentence.format(path="(in memory)", folder="memory")
    shown = str(path)[:300]
    return sentence.format(path=shown, folder=os.path.dirname(os.path.abspath(shown)) or "/")


def _about_database(error: OSError, path: str | Path | None) -> bool:
    """An OSError counts only when it is about the database's own files or folder, not any file at all."""
    if _is_memory(path) or not error.filename:
        return False
    name, db = os.path.abspath(os.fsdecode(error.filename)), os.path.abspath(str(path))
    return name.startswith(db) or name == os.path.dirname(db)


def _matches(fault: _Fault, error: BaseException, path: str | Path | None) -> bool:
    if isinstance(error, OSError):
        return error.errno in fault.errnos and _about_database(error, path)
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code in fault.codes or (code & 0xFF) in fault.codes
    text = str(error).lower()
    return any(phrase in text for phrase in fault.phrases)


def describe_storage_error(exc: BaseException, path: str | Path | None) -> str | None:
    """One sentence (path and fix, no traceback) when ``exc`` is a storage fault; None for anything else."""
    for error in causes(exc):
        if not isinstance(error, sqlite3.Error | OSError):
            continue
        for fault in _FAULTS:
            if _matches(fault, error, path):
                return _render(fault.sentence, path)
    return None


def _connect_existing(path: str) -> sqlite3.Connection:
    """A connection to the file as it is now, as a new store thread would get it; ``mode=rw`` never creates it."""
    uri = "file:" + quote(os.path.abspath(path)) + "?mode=rw"
    return sqlite3.connect(uri, uri=True, timeout=PROBE_BUSY_SECONDS, isolation_level=None)


class StorageHealth:
    """Problems with the database, as sentences (none: healthy). Cheap enough to call on every ``/healthz``.

    The file's identity (device, inode) is recorded when the checker is built, right after the database is
    opened; a different one later means the file was replaced, none means it was deleted. The write probe
    commits a heartbeat row in ``meta`` over a fresh connection: a commit is what really reaches the disk (a
    ``BEGIN IMMEDIATE`` that is rolled back writes nothing, and succeeds on a read-only file), and a fresh
    connection sees what a new thread would (a file made read-only after start still takes writes through the
    connections already open). It runs at most once per ``interval``; in between, its last answer is reused.
    """

    def __init__(self, path: str | Path | None, *, interval: float = PROBE_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 connect: Callable[[], sqlite3.Connection] | None = None) -> None:
        self.path = None if _is_memory(path) else str(path)
        self._interval = interval
        self._clock = clock
        self._connect = connect or (lambda: _connect_existing(str(self.path)))
        self._lock = threading.Lock()
        self._probed_at: float | None = None
        self._probe_problems: list[str] = []
        self._reported: list[str] = []
        self._identity = self._stat_identity()

    def _stat_identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(str(self.path)) if self.path is not None else None
        except OSError:
            return None
        return (stat.st_dev, stat.st_ino) if stat is not None else None

    def check(self) -> list[str]:
        """The problems now, one sentence each. In-memory databases are always healthy."""
        if self.path is None:
            return []
        # A replaced file is not probed: the heartbeat would be written into a file that is not wesbot's.
        problems = self._file_problems() or self._probe()
        self._log_change(problems)
        return problems

    def _file_problems(self) -> list[str]:
        try:
            stat = os.stat(str(self.path))
        except FileNotFoundError:
            return [_render(_REMOVED, self.path)]
        except OSError as error:
            return [describe_storage_error(error, self.path) or f"wesbot cannot check its database {self.path}: "
                    f"{error.strerror}"]
        if self._identity is None:  # the file did not exist yet when the checker was built
            self._identity = (stat.st_dev, stat.st_ino)
        if (stat.st_dev, stat.st_ino) != self._identity:
            return [_render(_REPLACED, self.path)]
        return []

    def _probe(self) -> list[str]:
        with self._lock:
            now = self._clock()
            if self._probed_at is None or now - self._probed_at >= self._interval:
                self._probe_problems = self._write_probe()
                self._probed_at = now
            return list(self._probe_problems)

    def _write_probe(self) -> list[str]:
        try:
            with closing(self._connect()) as conn:
                write_heartbeat(conn, datetime.now(UTC))
        except sqlite3.Error as error:
            sentence = describe_storage_error(error, self.path)
            return [sentence or f"wesbot cannot write its database {self.path}: {str(error)[:200]}"]
        return []

    def _log_change(self, problems: list[str]) -> None:
        """Log when health changes, not on every check: an unhealthy bot polled each second must not flood."""
        with self._lock:
            if problems == self._reported:
                return
            self._reported = list(problems)
        for problem in problems:
            logger.error("storage: %s", problem)
        if not problems:
            logger.info("storage: the database %s is healthy again", self.path)
