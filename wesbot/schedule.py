"""When a scheduled report goes out: ``daily 09:00`` or ``weekly mon 09:00``, in the time zone of the person who
set it. Pure: the next time, and the period each time belongs to (what makes a report go out once per period).

Local times are turned into instants with :mod:`zoneinfo`, so daylight saving time is followed: a report at
09:00 stays at 09:00 local when the clocks change. A time that does not exist that day (in the hour skipped in
spring) comes an hour later; a time that comes twice (in autumn) comes the first time only, and the period
(the local date) makes sure of that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class Schedule:
    kind: str  # daily | weekly
    hour: int
    minute: int
    weekday: int | None = None  # 0 is Monday; weekly only

    def text(self) -> str:
        """As it is typed, and read back by :func:`parse_schedule`."""
        day = f" {DAYS[self.weekday]}" if self.weekday is not None else ""
        return f"{self.kind}{day} {self.hour:02d}:{self.minute:02d}"

    @property
    def window(self) -> float:
        """The seconds the report covers: the day or the week before it."""
        return 86400.0 if self.kind == "daily" else 7 * 86400.0

    def next_after(self, moment: float, tz: ZoneInfo) -> float:
        """The first time of this schedule strictly after ``moment`` (epoch seconds)."""
        local = datetime.fromtimestamp(moment, tz).date()
        for offset in range(0, 9):
            day = local + timedelta(days=offset)
            if self.weekday is not None and day.weekday() != self.weekday:
                continue
            at = self._at(day, tz)
            if at > moment:
                return at
        raise AssertionError("a daily or weekly time comes within 8 days")  # pragma: no cover

    def _at(self, day: date, tz: ZoneInfo) -> float:
        wall = datetime(day.year, day.month, day.day, self.hour, self.minute, tzinfo=tz)
        instant = wall.timestamp()
        if datetime.fromtimestamp(instant, tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
            # In the hour skipped when the clocks go forward: an hour later, when that time exists.
            return (wall + timedelta(hours=1)).timestamp()
        return instant

    def period(self, at: float, tz: ZoneInfo) -> str:
        """The period a time of this schedule belongs to: its local date (a report goes out once per period)."""
        return datetime.fromtimestamp(at, tz).date().isoformat()


def parse_schedule(words: list[str]) -> Schedule | None:
    """``daily HH:MM`` or ``weekly DAY HH:MM``; None when the words are not one."""
    lowered = [word.lower() for word in words]
    if len(lowered) == 2 and lowered[0] == "daily" and (found := _TIME.fullmatch(lowered[1])):
        return Schedule("daily", int(found.group(1)), int(found.group(2)))
    if len(lowered) == 3 and lowered[0] == "weekly" and (lowered[1] in DAYS or lowered[1] in _DAY_NAMES) and (
            found := _TIME.fullmatch(lowered[2])):
        return Schedule("weekly", int(found.group(1)), int(found.group(2)), weekday=DAYS.index(lowered[1][:3]))
    return None


def zone(name: str | None) -> ZoneInfo:
    """The time zone Slack gave for a person (``Europe/Paris``), or UTC when it gave none or one unknown here."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
