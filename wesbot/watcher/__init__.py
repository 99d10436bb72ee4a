"""The watcher: wesbot's background half. Jobs read WES and store what they saw and what is owed; delivery
posts what is owed to Slack. They meet only in the store (jobs → store → delivery → Slack).

- ``loop.py``: the lease and the schedule; :class:`Watcher` is built from its collaborators and runs the jobs.
- ``subscriptions.py``: polling subscribed runs (list sweeps, status calls, backoff, auth episodes, expiry).
- ``sweep.py``: channel-wide watches, on pure functions (``diff``, ``route``, ``compose``).
- ``cancels.py``: following requested cancels to their outcome.
- ``details.py``: what a notification says about an ended run (run log, failed tasks, the end of stderr).
- ``delivery.py``: the only code that posts: the outbox, cards, cancel messages, pacing, retries.
- ``base.py``: clocks, settings, the WES protocol, the one concurrency helper, the bounded run-list read.
"""

from .base import Clock, SystemClock, WatchedWes, WatcherSettings, Workers
from .delivery import DeliverStats, Delivery, Poster
from .loop import LEASE, Fleet, Watcher, build_watcher
from .subscriptions import TickStats
from .sweep import SweepStats

__all__ = [
    "LEASE",
    "Clock",
    "DeliverStats",
    "Fleet",
    "Delivery",
    "Poster",
    "SweepStats",
    "SystemClock",
    "TickStats",
    "WatchedWes",
    "Watcher",
    "WatcherSettings",
    "Workers",
    "build_watcher",
]
