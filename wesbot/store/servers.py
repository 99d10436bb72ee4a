"""Which WES server each stored row belongs to: the ``servers`` table, and each channel's default server.

wesbot serves several WES servers from one database, and a run id means nothing without its server: every row
that is about runs carries a ``server_id``. A server is known by its configured name *and* its URL, because
pointing a name at another URL makes it another server: the old rows (runs of the old server) must neither be
polled on the new one nor reported gone there. They keep their id, untouched, until that URL is configured
again (:func:`claim_server` finds them), and :func:`held_servers` says what is waiting there meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlite_utils import Database

if TYPE_CHECKING:  # base.py claims through this module
    from .base import Store


def normal_url(url: str) -> str:
    """The URL as stored and compared: ``http://x/`` and ``http://x`` are the same server."""
    return url.rstrip("/")


def claim_server(db: Database, name: str, url: str, now: float) -> int:
    """The id of the server (``name``, ``url``), inside the caller's transaction; created on first use.

    1. a row with this name and URL: its id;
    2. else the legacy row (the one server of a database written before servers had names, ``name`` NULL)
       when its URL is this one, or is '' (that database never recorded its URL: it belongs to the first
       server claimed): it takes this name and URL;
    3. else a new row.

    Claiming twice gives the same id, so two threads or processes racing to claim are harmless."""
    url = normal_url(url)
    row = db.execute("SELECT id FROM servers WHERE name = ? AND url = ?", [name, url]).fetchone()
    if row is not None:
        return int(row[0])
    legacy = db.execute(
        "SELECT id FROM servers WHERE name IS NULL AND url IN (?, '') ORDER BY url = '', id LIMIT 1", [url]
    ).fetchone()
    if legacy is not None:
        db.execute("UPDATE servers SET name = ?, url = ? WHERE id = ?", [name, url, legacy[0]])
        return int(legacy[0])
    cursor = db.execute("INSERT INTO servers (name, url, created_at) VALUES (?, ?, ?)", [name, url, now])
    return int(cursor.lastrowid or 0)


@dataclass(frozen=True, kw_only=True)
class HeldServer:
    """A server no longer configured (or configured with another URL) whose rows wait for it to come back."""

    name: str | None  # None: the legacy server, never claimed
    url: str
    subscriptions: int  # active
    watches: int  # active channel watches
    cancels: int  # not done

    def describe(self) -> str:
        """One line for the operator: what is kept, and why nothing happens to it."""
        counts = [f"{n} {one if n == 1 else many}" for n, one, many in (
            (self.subscriptions, "subscription", "subscriptions"), (self.watches, "channel watch", "channel watches"),
            (self.cancels, "cancel", "cancels")) if n]
        return (f"{self.name or '(unnamed)'} at {self.url or '(no URL recorded)'}: {', '.join(counts)} kept "
                "untouched, not watched, until a server of that name and URL is configured again")


def held_servers(db: Database, configured: Iterable[tuple[str, str]]) -> list[HeldServer]:
    """Servers that match no configured (name, URL) and still have live rows, by id: what an operator should
    hear about at start-up, since nothing watches those rows until that server is configured again."""
    wanted = {(name, normal_url(url)) for name, url in configured}
    rows = db.execute(
        "SELECT s.name, s.url, "
        "(SELECT COUNT(*) FROM subscriptions WHERE server_id = s.id AND status = 'active'), "
        "(SELECT COUNT(*) FROM channel_watches WHERE server_id = s.id AND status = 'active'), "
        "(SELECT COUNT(*) FROM cancels WHERE server_id = s.id AND status != 'done') "
        "FROM servers s ORDER BY s.id"
    ).fetchall()
    return [
        HeldServer(name=name, url=url, subscriptions=int(subs), watches=int(watches), cancels=int(cancels))
        for name, url, subs, watches, cancels in rows
        if (name, url) not in wanted and (subs or watches or cancels)
    ]


class ChannelServers:
    """Each channel's default server, by configured name: set by a user in the channel, and not scoped to a
    server (it is what picks one). A name no longer configured is the caller's to handle."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, channel_id: str) -> str | None:
        row = self.store.db.execute("SELECT server FROM channel_servers WHERE channel_id = ?", [channel_id]).fetchone()
        return None if row is None else str(row[0])

    def set(self, channel_id: str, server: str, user_id: str, now: float) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO channel_servers (channel_id, server, set_by, set_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (channel_id) DO UPDATE SET server = excluded.server, set_by = excluded.set_by, "
                "set_at = excluded.set_at",
                [channel_id, server, user_id, now],
            )

    def clear(self, channel_id: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM channel_servers WHERE channel_id = ?", [channel_id])

    def chosen(self, channel_id: str) -> tuple[str, str] | None:
        """(server, who chose it) for the channel, or None."""
        row = self.store.db.execute("SELECT server, set_by FROM channel_servers WHERE channel_id = ?",
                                    [channel_id]).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))
