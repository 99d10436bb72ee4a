"""The watcher's database: one object (a :class:`~wesbot.store.base.Store`) and its repositories.

Nothing that matters lives only in memory. A terminal transition and the notifications it owes are written
in one transaction (:meth:`WatchedRuns.record_terminal`), before anything is posted; delivery then posts
from the outbox and marks each row sent. Each outbox row has a unique ``dedupe_key``, so the same
notification can never be queued twice. Messages are rendered before a transaction, never inside one.
"""

from __future__ import annotations

from functools import cached_property

from .base import Message, Store
from .files import OutboxFiles, Pictures
from .leases import Leases
from .outbox import Outbox, OutboxRow
from .reports import ReportSchedules
from .runs import WatchedRun, WatchedRuns
from .subscriptions import SubscribeOutcome, Subscription, Subscriptions
from .unfurls import Unfurls
from .values import Values

__all__ = ["Message", "OutboxRow", "SubscribeOutcome", "Subscription", "WatchStore", "WatchedRun"]


class WatchStore(Store):
    """The database, with one repository per concern: ``subscriptions``, ``runs`` (watched runs), ``outbox``,
    ``files`` (the files owed with outbox rows), ``values`` (small named values) and ``leases``. Channel watches
    and cancels have theirs in ``watches.py`` and ``cancels.py``, built on the same object. All of them see this
    store's server only; the leases are shared (their names say which server they are for)."""

    def _scope(self, server: str, url: str) -> None:
        """The repositories too: each is bound to this store object, so to its server (see ``scoped``)."""
        super()._scope(server, url)
        self.subscriptions = Subscriptions(self)
        # The timeline pictures drawn for runs that just ended, until their end notification is queued with them.
        self.pictures = Pictures()
        self.runs = WatchedRuns(self, pictures=self.pictures)
        self.outbox = Outbox(self)
        self.files = OutboxFiles(self)
        self.values = Values(self)
        self.unfurls = Unfurls(self)
        self.reports = ReportSchedules(self)

    @cached_property
    def leases(self) -> Leases:
        """The lease table, recorded with this host and pid. Built on first use: it holds no state of its own
        (two threads racing to build it get equal ones), and reads and writes on the caller's connection."""
        return Leases(lambda: self.db, self.transaction)
