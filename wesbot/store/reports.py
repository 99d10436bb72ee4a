"""Scheduled reports (``/wes report daily 09:00``): one per channel and WES server, with the time zone of whoever
set it and when it is next due. Posting one queues it in the outbox with a key naming its period, and moves its
next time on, in one transaction: once per period, across restarts and processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..schedule import Schedule, parse_schedule, zone
from .base import Message, Store
from .outbox import enqueue


@dataclass(frozen=True, kw_only=True)
class ReportSchedule:
    id: int
    channel_id: str
    schedule: Schedule
    tz: str
    set_by: str
    set_at: float
    next_at: float

    def describe(self) -> str:
        return f"the report, {self.schedule.text()} ({self.tz})"


_COLUMNS = "id, channel_id, schedule, tz, set_by, set_at, next_at"


def _row(row: Any) -> ReportSchedule | None:
    schedule = parse_schedule(str(row[2]).split())
    if schedule is None:  # not one this wesbot writes: left alone, never posted
        return None
    return ReportSchedule(id=row[0], channel_id=row[1], schedule=schedule, tz=row[3], set_by=row[4], set_at=row[5],
                          next_at=row[6])


class ReportSchedules:
    def __init__(self, store: Store) -> None:
        self.store = store

    def set(self, *, channel_id: str, schedule: Schedule, tz: str, user_id: str, now: float) -> ReportSchedule:
        """Set (or replace) the channel's schedule; it is next due at its first time after ``now``."""
        next_at = schedule.next_after(now, zone(tz))
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO report_schedules (server_id, channel_id, schedule, tz, set_by, set_at, next_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (server_id, channel_id) DO UPDATE SET "
                "schedule = excluded.schedule, tz = excluded.tz, set_by = excluded.set_by, set_at = excluded.set_at, "
                "next_at = excluded.next_at",
                [self.store.server_id, channel_id, schedule.text(), tz, user_id, now, next_at])
        found = self.of_channel(channel_id)
        assert found is not None
        return found

    def remove(self, channel_id: str) -> bool:
        with self.store.transaction() as db:
            return db.execute("DELETE FROM report_schedules WHERE server_id = ? AND channel_id = ?",
                              [self.store.server_id, channel_id]).rowcount == 1

    def of_channel(self, channel_id: str) -> ReportSchedule | None:
        row = self.store.db.execute(f"SELECT {_COLUMNS} FROM report_schedules WHERE server_id = ? AND channel_id = ?",
                                    [self.store.server_id, channel_id]).fetchone()
        return None if row is None else _row(row)

    def due(self, now: float) -> list[ReportSchedule]:
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM report_schedules WHERE server_id = ? AND next_at <= ? ORDER BY next_at",
            [self.store.server_id, now]).fetchall()
        return [found for found in map(_row, rows) if found is not None]

    def next_due(self) -> float | None:
        row = self.store.db.execute("SELECT MIN(next_at) FROM report_schedules WHERE server_id = ?",
                                    [self.store.server_id]).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def record_posted(self, report: ReportSchedule, *, period: str, payload: Message, next_at: float,
                      now: float) -> int | None:
        """Queue the report of ``period`` (unless it was queued before: then nothing) and move the schedule to
        ``next_at``, in one transaction. A schedule changed since it was read keeps its new time."""
        with self.store.transaction() as db:
            queued = enqueue(db, self.store.server_id, key=f"report:{report.id}:{period}", kind="report",
                             channel_id=report.channel_id, payload=payload, now=now)
            db.execute("UPDATE report_schedules SET next_at = ? WHERE id = ? AND next_at = ?",
                       [next_at, report.id, report.next_at])
        return queued
