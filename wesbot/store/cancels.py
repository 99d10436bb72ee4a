"""The audit trail of cancel attempts, and the cancels being followed until their run ends (SQLite), per WES
server: the same run id on two servers is two runs, each with its own cancel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from .base import beyond
from .watch import WatchStore


@dataclass(frozen=True, kw_only=True)
class AuditRow:
    id: int
    server: str  # the name of the server it was tried on
    at: float
    user_id: str
    channel_id: str | None
    run_id: str
    wes_url: str
    state_before: str | None
    outcome: str
    wes_status: int | None
    detail: str | None


@dataclass(frozen=True, kw_only=True)
class Cancel:
    run_id: str
    status: str
    user_id: str
    channel_id: str | None
    state_before: str | None
    requested_at: float
    deadline: float
    next_poll_at: float
    message_ts: str | None
    message_error: str | None
    response_url: str | None
    audit_id: int | None
    final_state: str | None
    outcome: str | None
    synced: bool


_CANCEL_COLUMNS = ("run_id, status, user_id, channel_id, state_before, requested_at, deadline, next_poll_at, "
                   "message_ts, message_error, response_url, audit_id, final_state, outcome, synced")


def _cancel(row: tuple[object, ...]) -> Cancel:
    return Cancel(
        run_id=str(row[0]), status=str(row[1]), user_id=str(row[2]), channel_id=row[3],  # type: ignore[arg-type]
        state_before=row[4], requested_at=float(row[5]), deadline=float(row[6]),  # type: ignore[arg-type]
        next_poll_at=float(row[7]), message_ts=row[8], message_error=row[9], response_url=row[10],  # type: ignore[arg-type]
        audit_id=row[11], final_state=row[12], outcome=row[13], synced=bool(row[14]),  # type: ignore[arg-type]
    )


class CancelStore:
    """Built on the same per-thread connections and transactions as :class:`WatchStore`, and on its server:
    ``wes_url`` is what audit rows record (its URL as the operator configured it)."""

    def __init__(self, store: WatchStore, wes_url: str) -> None:
        self.store = store
        self.wes_url = wes_url

    # -- audit ------------------------------------------------------------------------------------

    def audit(self, *, now: float, user_id: str, channel_id: str | None, run_id: str, state_before: str | None,
              outcome: str, wes_status: int | None = None, detail: str | None = None) -> int:
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO audit (server_id, at, user_id, channel_id, run_id, wes_url, state_before, outcome, "
                "wes_status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [self.store.server_id, now, user_id, channel_id, run_id, self.wes_url, state_before, outcome,
                 wes_status, (detail or "")[:500] or None],
            )
            return int(cursor.lastrowid or 0)

    def set_audit_outcome(self, audit_id: int, outcome: str, detail: str | None = None,
                          wes_status: int | None = None) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE audit SET outcome = ?, detail = COALESCE(?, detail), "
                       "wes_status = COALESCE(?, wes_status) WHERE id = ?",
                       [outcome, detail[:500] if detail else None, wes_status, audit_id])

    def recent_audit(self, run_id: str | None = None, limit: int = 20,
                     channel_id: str | None = None) -> list[AuditRow]:
        """This server's latest attempts, of one run and/or typed in one channel (None: every channel, for the
        terminal)."""
        filters = [("run_id = ?", run_id), ("channel_id = ?", channel_id)]
        kept = [("server_id = ?", self.store.server_id), *((sql, value) for sql, value in filters if value)]
        where = " AND ".join(sql for sql, _ in kept)
        params: list[object] = [value for _, value in kept]
        rows = self.store.db.execute(
            "SELECT id, at, user_id, channel_id, run_id, wes_url, state_before, outcome, wes_status, detail "
            f"FROM audit WHERE {where} ORDER BY at DESC, id DESC LIMIT ?", [*params, limit]
        ).fetchall()
        return [AuditRow(id=r[0], server=self.store.server, at=r[1], user_id=r[2], channel_id=r[3], run_id=r[4],
                         wes_url=r[5], state_before=r[6], outcome=r[7], wes_status=r[8], detail=r[9]) for r in rows]

    # -- the one cancel in flight per run ---------------------------------------------------------

    def claim(self, *, run_id: str, user_id: str, channel_id: str | None, state_before: str | None, now: float,
              deadline: float, response_url: str | None) -> Cancel | None:
        """Claim the right to send this run's cancel. None when it is ours; else the cancel already in flight.

        (server, run id) is the primary key of ``cancels``: of two clicks at the same moment, one insert wins.
        A finished follow-up ("done") is replaced: a run can be cancelled again if it was restarted.
        The claim and its audit row ("sending") are written together, before the POST: a process that dies
        during the POST leaves both, for :meth:`stale_claims` to find.
        """
        with self.store.transaction() as db:
            server_id = self.store.server_id
            db.execute("DELETE FROM cancels WHERE server_id = ? AND run_id = ? AND status = 'done'",
                       [server_id, run_id])
            inserted = db.execute(
                "INSERT OR IGNORE INTO cancels (server_id, run_id, status, user_id, channel_id, state_before, "
                "requested_at, deadline, response_url) VALUES (?, ?, 'requesting', ?, ?, ?, ?, ?, ?)",
                [server_id, run_id, user_id, channel_id, state_before, now, deadline, response_url],
            ).rowcount
            if inserted == 1:
                audit_id = db.execute(
                    "INSERT INTO audit (server_id, at, user_id, channel_id, run_id, wes_url, state_before, outcome) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'sending')",
                    [server_id, now, user_id, channel_id, run_id, self.wes_url, state_before],
                ).lastrowid
                db.execute("UPDATE cancels SET audit_id = ? WHERE server_id = ? AND run_id = ?",
                           [audit_id, server_id, run_id])
                return None
            row = db.execute(f"SELECT {_CANCEL_COLUMNS} FROM cancels WHERE server_id = ? AND run_id = ?",
                             [server_id, run_id]).fetchone()
            return _cancel(row)

    def release(self, run_id: str) -> None:
        """WES refused or failed: drop the claim so that someone may try again."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM cancels WHERE server_id = ? AND run_id = ? AND status = 'requesting'",
                       [self.store.server_id, run_id])

    def requested(self, run_id: str, *, audit_id: int, now: float, message_ts: str | None,
                  message_error: str | None) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE cancels SET status = 'requested', audit_id = ?, next_poll_at = ?, message_ts = ?, "
                "message_error = ? WHERE server_id = ? AND run_id = ?",
                [audit_id, now, message_ts, message_error, self.store.server_id, run_id],
            )

    def stale_claims(self, before: float) -> list[Cancel]:
        """Claims left 'requesting' since before ``before``: their process most likely died mid-POST."""
        rows = self.store.db.execute(
            f"SELECT {_CANCEL_COLUMNS} FROM cancels WHERE server_id = ? AND status = 'requesting' "
            "AND requested_at < ?", [self.store.server_id, before]
        ).fetchall()
        return [_cancel(r) for r in rows]

    def adopt(self, run_id: str, *, now: float, message_ts: str | None, message_error: str | None) -> bool:
        """Follow a stale claim from now on (False: it was no longer 'requesting')."""
        with self.store.transaction() as db:
            return db.execute(
                "UPDATE cancels SET status = 'requested', next_poll_at = ?, message_ts = ?, message_error = ? "
                "WHERE server_id = ? AND run_id = ? AND status = 'requesting'",
                [now, message_ts, message_error, self.store.server_id, run_id],
            ).rowcount == 1

    def following(self) -> int:
        return int(self.store.db.execute("SELECT COUNT(*) FROM cancels WHERE server_id = ? AND status = 'requested'",
                                         [self.store.server_id]).fetchone()[0])

    def to_follow(self, now: float, *, horizon: float | None = None) -> list[Cancel]:
        """Requested cancels whose follow-up is due; one due more than ``horizon`` ahead was written before the
        wall clock was set back, and is due now."""
        rows = self.store.db.execute(
            f"SELECT {_CANCEL_COLUMNS} FROM cancels WHERE server_id = ? AND status = 'requested' AND "
            "(next_poll_at <= ? OR next_poll_at > ?) ORDER BY next_poll_at",
            [self.store.server_id, now, beyond(now, horizon)]
        ).fetchall()
        return [_cancel(r) for r in rows]

    def poll_later(self, run_id: str, next_poll_at: float) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE cancels SET next_poll_at = ? WHERE server_id = ? AND run_id = ?",
                       [next_poll_at, self.store.server_id, run_id])

    def finish(self, run_id: str, *, final_state: str | None, outcome: str) -> None:
        with self.store.transaction() as db:
            server_id = self.store.server_id
            row = db.execute("SELECT audit_id FROM cancels WHERE server_id = ? AND run_id = ?",
                             [server_id, run_id]).fetchone()
            db.execute(
                "UPDATE cancels SET status = 'done', final_state = ?, outcome = ?, synced = 0 "
                "WHERE server_id = ? AND run_id = ?",
                [final_state, outcome, server_id, run_id],
            )
            if row and row[0]:
                db.execute("UPDATE audit SET outcome = ? WHERE id = ?", [outcome, row[0]])

    def to_announce(self) -> list[Cancel]:
        """Cancels followed without their channel message: a restarted process took them over (see
        ``cancel.recover``) before the dead one could post it. Delivery posts it."""
        rows = self.store.db.execute(
            f"SELECT {_CANCEL_COLUMNS} FROM cancels WHERE server_id = ? AND status = 'requested' "
            "AND message_ts IS NULL AND message_error IS NULL AND channel_id IS NOT NULL ORDER BY requested_at",
            [self.store.server_id],
        ).fetchall()
        return [_cancel(r) for r in rows]

    def announced(self, run_id: str, *, message_ts: str | None, message_error: str | None) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE cancels SET message_ts = ?, message_error = ? WHERE server_id = ? AND run_id = ?",
                       [message_ts, message_error, self.store.server_id, run_id])

    def to_sync(self) -> list[Cancel]:
        rows = self.store.db.execute(
            f"SELECT {_CANCEL_COLUMNS} FROM cancels WHERE server_id = ? AND status = 'done' AND synced = 0 "
            "ORDER BY requested_at", [self.store.server_id],
        ).fetchall()
        return [_cancel(r) for r in rows]

    def synced(self, run_id: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE cancels SET synced = 1, response_url = NULL WHERE server_id = ? AND run_id = ?",
                       [self.store.server_id, run_id])

    def get(self, run_id: str) -> Cancel | None:
        row = self.store.db.execute(f"SELECT {_CANCEL_COLUMNS} FROM cancels WHERE server_id = ? AND run_id = ?",
                                    [self.store.server_id, run_id]).fetchone()
        return None if row is None else _cancel(row)


def every_audit(db: Database, run_id: str | None = None, limit: int = 20) -> list[AuditRow]:
    """The latest attempts on every server the database knows, newest first, each named by its server (a server
    never named, the single-server release's, by its URL): what ``wesbot audit`` prints from the database alone."""
    where, params = ("WHERE a.run_id = ?", [run_id]) if run_id else ("", [])
    rows = db.execute(
        "SELECT a.id, COALESCE(s.name, s.url, ''), a.at, a.user_id, a.channel_id, a.run_id, a.wes_url, "
        "a.state_before, a.outcome, a.wes_status, a.detail FROM audit a LEFT JOIN servers s ON s.id = a.server_id "
        f"{where} ORDER BY a.at DESC, a.id DESC LIMIT ?", [*params, limit]).fetchall()
    return [AuditRow(id=r[0], server=r[1], at=r[2], user_id=r[3], channel_id=r[4], run_id=r[5], wes_url=r[6],
                     state_before=r[7], outcome=r[8], wes_status=r[9], detail=r[10]) for r in rows]
