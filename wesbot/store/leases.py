"""Named leases in SQLite: at most one holder at a time, and a quick takeover from a holder that died.

A lease is held until its ``expires_at`` (wall time) and renewed by its holder well before then. Each row also
records the holder's host and pid, so that a process restarted after a crash (``kill -9``, the OOM killer) does
not wait a whole lease period before it works again:

- a holder on **this** host whose pid no longer exists is dead: its lease is taken over at once;
- a holder on **another** host gets its full period, since its pid cannot be checked from here;
- a row without host or pid (written by an older wesbot) gets its full period too;
- a holder that recorded **our own** pid under another owner is an earlier ``Watcher`` of this very process
  (tests run two; a caller may build a new one after the first failed). Its threads may still be posting and
  this process is alive by definition, so it gets its full period as well.

A pid that was reused by an unrelated process looks alive, which errs on the safe side: the full period.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlite_utils import Database

Transaction = Callable[[], AbstractContextManager[Database]]


@dataclass(frozen=True, kw_only=True)
class LeaseHolder:
    """Who holds a lease, until when, and where it runs (``None`` in rows written by an older wesbot)."""

    owner: str
    expires_at: float
    host: str | None
    pid: int | None


def this_host() -> str:
    """This host, as far as pids go: the host name, and the pid namespace when there is one. Two containers
    given the same host name have their own pids; without the namespace each would take the other's lease
    (its pid looks dead here) and both would post."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()} {namespace}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks without sending anything).

    Anything that cannot be told for sure counts as alive, so that doubt costs a lease period, never a second
    holder: another user's process (PermissionError), pid 0 or below (a process group), Windows (where
    ``os.kill`` with 0 would send CTRL_C_EVENT). A zombie, killed but not yet reaped, is alive too."""
    if pid <= 0 or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Leases:
    """The ``leases`` table. ``db`` gives this thread's connection, ``tx`` a ``BEGIN IMMEDIATE`` transaction
    on it (the write lock up front, so that two processes deciding who holds a lease take turns)."""

    def __init__(self, db: Callable[[], Database], tx: Transaction, *, host: str | None = None,
                 pid: int | None = None, alive: Callable[[int], bool] | None = None) -> None:
        self._db = db
        self._tx = tx
        self.host = this_host() if host is None else host
        self.pid = os.getpid() if pid is None else pid
        self._alive = pid_alive if alive is None else alive

    def acquire(self, name: str, owner: str, *, now: float, period: float) -> bool:
        """Take or renew the lease. True when ``owner`` holds it until ``now + period``, recorded with this
        host and pid; False while someone else holds it (see the module docstring for when that ends)."""
        with self._tx() as db:
            if not self.may_take(_read(db, name), owner=owner, now=now):
                return False
            db.execute(
                "INSERT INTO leases (name, owner, expires_at, host, pid) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, "
                "host = excluded.host, pid = excluded.pid",
                [name, owner, now + period, self.host, self.pid],
            )
            return True

    def may_take(self, holder: LeaseHolder | None, *, owner: str, now: float) -> bool:
        """The takeover rule: free, ours, expired, or held by a process of this host that is gone."""
        if holder is None or holder.owner == owner or holder.expires_at < now:
            return True
        return self._died_here(holder)

    def _died_here(self, holder: LeaseHolder) -> bool:
        """Only a pid on this host can be checked; our own pid is alive (an earlier owner in this process)."""
        if holder.host != self.host or holder.pid is None or holder.pid == self.pid:
            return False
        return not self._alive(holder.pid)

    def release(self, name: str, owner: str) -> None:
        """Give the lease up at once (a clean stop), if ``owner`` still holds it."""
        with self._tx() as db:
            db.execute("UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ?", [name, owner])

    def holder(self, name: str) -> tuple[str, float] | None:
        """(owner, expires_at) of the last holder, whether or not the lease has expired since."""
        info = self.info(name)
        return None if info is None else (info.owner, info.expires_at)

    def info(self, name: str) -> LeaseHolder | None:
        """The last holder with its host and pid: what ``wesbot check`` can show about who is watching."""
        return _read(self._db(), name)


def _read(db: Database, name: str) -> LeaseHolder | None:
    row = db.execute("SELECT owner, expires_at, host, pid FROM leases WHERE name = ?", [name]).fetchone()
    if row is None:
        return None
    return LeaseHolder(owner=str(row[0]), expires_at=float(row[1]), host=row[2],
                       pid=None if row[3] is None else int(row[3]))
