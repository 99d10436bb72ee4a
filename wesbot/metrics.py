"""Prometheus metrics: what an operator graphs and alerts on. :mod:`wesbot.observe` is the only writer.

Every metric lives in one :class:`Metrics` object with its own ``CollectorRegistry`` (never prometheus_client's
global one), so that tests, benchmarks and several apps in one process do not collide: a test makes a fresh
``Metrics()`` and passes it to the ``observe`` functions, or swaps the process's one with :func:`use`.

    wesbot_commands_total{command,outcome}            /wes commands and cancel clicks: ok, usage, wes, slack, internal
    wesbot_command_seconds{command}                   histogram: from the lookup's start to the answer sent
    wesbot_cancels_total{outcome}                     cancel clicks: requested, denied, already-finished, ...
    wesbot_wes_requests_total{server,call,outcome}    WES calls (retries included): ok, http_4xx, http_5xx,
                                                      unreachable, protocol, internal
    wesbot_wes_request_seconds{server,call}           histogram: one call, retries and redirects included
    wesbot_wes_unreachable{server}                    1 during an outage seen by the watcher, else 0
    wesbot_watched_runs{server}                       runs with an active subscription      (read at scrape)
    wesbot_channel_watches{server}                    active channel-wide watches           (read at scrape)
    wesbot_outbox_pending                             messages owed to Slack                (read at scrape)
    wesbot_outbox_oldest_pending_seconds              age of the oldest one, 0 when none    (read at scrape)
    wesbot_notifications_sent_total{kind}             outbox rows Slack accepted: notification, notice, digest
    wesbot_notifications_given_up_total{kind}         rows given up for good (a channel gone, a message refused)
    wesbot_notification_retries_total{kind}           attempts to be retried (429, 5xx, a refused token)
    wesbot_notification_delay_seconds                 histogram: a run's end seen (the row queued) -> Slack took it
    wesbot_slack_api_errors_total{method,error}       failed Web API calls: Slack's error code, http_NNN, or the
                                                      connection error's name
    wesbot_lease_held                                 1 while this process holds the watcher lease
    wesbot_last_poll_timestamp_seconds{server}        when the watcher last finished a poll cycle (Unix time)
    wesbot_info{version}                              always 1

``server`` is the WES server's host (and port), never a URL. No label ever carries a run id, a user id or text
from WES or Slack beyond bounded codes, so the number of series stays small.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__

if TYPE_CHECKING:
    from .store.watch import WatchStore
    from .store.watches import WatchesStore

logger = logging.getLogger("wesbot.metrics")

# Slash commands answer within a few seconds, or within the WES deadline (15 s by default) at worst.
COMMAND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)
WES_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# A notification waits for the channel's pace (1 s), retries after 429s, and a whole outage of Slack at worst.
DELAY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Metrics:
    """Every wesbot metric, registered on ``registry`` (a new one by default).

    ``standard`` adds prometheus_client's process and garbage-collector metrics (process_resident_memory_bytes,
    process_start_time_seconds ...), as its default registry has them."""

    def __init__(self, registry: CollectorRegistry | None = None, *, standard: bool = False) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.commands = Counter("wesbot_commands", "Slash commands and cancel clicks answered, by outcome",
                                ["command", "outcome"], registry=r)
        self.command_seconds = Histogram("wesbot_command_seconds", "Time to answer a command", ["command"],
                                         buckets=COMMAND_BUCKETS, registry=r)
        self.cancels = Counter("wesbot_cancels", "Cancel clicks, by what came of them", ["outcome"], registry=r)
        self.wes_requests = Counter("wesbot_wes_requests", "WES API calls, by outcome",
                                    ["server", "call", "outcome"], registry=r)
        self.wes_request_seconds = Histogram("wesbot_wes_request_seconds", "Time of one WES API call",
                                             ["server", "call"], buckets=WES_BUCKETS, registry=r)
        self.wes_unreachable = Gauge("wesbot_wes_unreachable", "1 while the watcher cannot reach the WES server",
                                     ["server"], registry=r)
        self.notifications_sent = Counter("wesbot_notifications_sent", "Messages from the outbox Slack accepted",
                                          ["kind"], registry=r)
        self.notifications_given_up = Counter("wesbot_notifications_given_up",
                                              "Messages from the outbox given up for good", ["kind"], registry=r)
        self.notification_retries = Counter("wesbot_notification_retries",
                                            "Posts from the outbox to be tried again", ["kind"], registry=r)
        self.notification_delay = Histogram(
            "wesbot_notification_delay_seconds", "From a run's end being seen to its notification reaching Slack",
            buckets=DELAY_BUCKETS, registry=r)
        self.slack_errors = Counter("wesbot_slack_api_errors", "Failed Slack Web API calls",
                                    ["method", "error"], registry=r)
        self.lease_held = Gauge("wesbot_lease_held", "1 while this process holds the watcher lease", registry=r)
        self.last_poll = Gauge("wesbot_last_poll_timestamp_seconds",
                               "When the watcher last finished polling the server (Unix time)", ["server"],
                               registry=r)
        Info("wesbot", "wesbot's version", registry=r).info({"version": __version__})
        if standard:
            from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self._store: StoreCollector | None = None
        self._lock = threading.Lock()

    def track_store(self, store: WatchStore, watches: WatchesStore | None = None, *, server: str,
                    clock: Callable[[], float] = time.time) -> None:
        """Report the store's figures (watched runs, channel watches, the outbox) at every scrape, read then
        rather than kept up to date, so that several processes on one database all report the truth."""
        self.track_stores([(store, watches, server)], clock=clock)

    def track_stores(self, stores: Sequence[tuple[WatchStore, WatchesStore | None, str]], *,
                     clock: Callable[[], float] = time.time) -> None:
        """:meth:`track_store` for several servers: (its scoped store, its watches, its host) each."""
        with self._lock:
            if self._store is not None:
                self.registry.unregister(self._store)
            self._store = StoreCollector(stores, clock=clock)
            self.registry.register(self._store)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class StoreCollector(Collector):
    """The figures that live in the store, read at scrape time through its repositories. A store that
    cannot be read (locked too long, a disk error) leaves them out of that scrape, with one warning per
    episode; ``/healthz`` is what says why."""

    def __init__(self, stores: Sequence[tuple[WatchStore, WatchesStore | None, str]], *,
                 clock: Callable[[], float]) -> None:
        self.stores = stores
        self.clock = clock
        self._failing = False

    def collect(self) -> Iterator[Metric]:
        try:
            figures = self._read()
        except (sqlite3.Error, OSError) as error:
            if not self._failing:
                self._failing = True
                logger.warning("metrics: could not read the store (%s); its figures are left out", error)
            return
        finally:
            # Scrapes may come on a new thread each (prometheus_client's server): never leave a connection behind.
            for store, _, _ in self.stores:
                store.close()
        if self._failing:
            self._failing = False
            logger.info("metrics: the store can be read again")
        yield from figures

    def _read(self) -> list[Metric]:
        watched = GaugeMetricFamily("wesbot_watched_runs", "Runs with an active subscription", labels=["server"])
        channel = GaugeMetricFamily("wesbot_channel_watches", "Active channel-wide watches", labels=["server"])
        pending, oldest = 0, None
        for store, watches, server in self.stores:
            watched.add_metric([server], store.runs.watched_count())
            if watches is not None:
                channel.add_metric([server], len(watches.active()))
            pending += store.outbox.pending_count()
            first = store.outbox.oldest_pending()
            oldest = first if oldest is None or (first is not None and first < oldest) else oldest
        figures: list[Metric] = [watched]
        if any(watches is not None for _, watches, _ in self.stores):
            figures.append(channel)
        figures.append(GaugeMetricFamily("wesbot_outbox_pending", "Messages owed to Slack", value=pending))
        figures.append(GaugeMetricFamily(
            "wesbot_outbox_oldest_pending_seconds", "Age of the oldest message owed to Slack (0 when none)",
            value=0.0 if oldest is None else max(self.clock() - oldest, 0.0)))
        return figures


_current = Metrics(standard=True)


def current() -> Metrics:
    """The process's metrics: what ``observe`` updates by default and ``/metrics`` serves."""
    return _current


def use(metrics: Metrics) -> Metrics:
    """Make ``metrics`` the process's (tests); returns the previous one, to put back."""
    global _current
    previous, _current = _current, metrics
    return previous


def start_server(host: str, port: int, metrics: Metrics | None = None) -> None:
    """Serve the metrics over HTTP on ``host:port`` from a daemon thread (Socket Mode, ``wesbot watch``).
    OSError when the port cannot be bound."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=(metrics or current()).registry)
