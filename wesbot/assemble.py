"""The bot's parts for each configured WES server, as ``wesbot serve`` and ``wesbot watch`` run them.

Each server gets its own client (its credentials go to its own URL only), its own log reader (its own log
hosts, its own credentials), its own scoped store and its own watcher; only the Slack poster and the database
file are shared. Rows the database holds for a server the configuration no longer names (or names at another
URL) are kept untouched, and said once here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .servers import ServerConfig
from .slack.poster import SlackPoster
from .store.cancels import CancelStore
from .store.db import open_db
from .store.servers import HeldServer, held_servers
from .store.watch import WatchStore
from .store.watches import WatchesStore
from .watcher.loop import Watcher, build_watcher
from .wes.client import WesClient
from .wes.logs import LogFetcher

logger = logging.getLogger("wesbot")


def wes_client(settings: Settings, server: ServerConfig | None = None) -> WesClient:
    """A client for ``server`` (default: the first one) with the settings' timeouts."""
    server = server or settings.servers[0]
    deadline = settings.wes_timeout
    return WesClient(server.url, auth=server.auth, token=server.token,
                     timeout=min(10.0, deadline), connect_timeout=min(5.0, deadline), deadline=deadline)


def log_fetcher(settings: Settings, server: ServerConfig | None = None) -> LogFetcher:
    """What reads ``server``'s log URLs (default: the first server's), with its credentials and log hosts."""
    server = server or settings.servers[0]
    return LogFetcher(server.url, auth=server.auth, token=server.token, allowed_hosts=server.log_hosts)


@dataclass
class ServerParts:
    """One configured server's client, log reader, scoped store and watcher (None: ``--no-watcher``)."""

    config: ServerConfig
    wes: WesClient
    logs: LogFetcher
    store: WatchStore
    cancels: CancelStore
    watches: WatchesStore
    watcher: Watcher | None

    @property
    def wake(self) -> Callable[[], None] | None:
        return self.watcher.wake.set if self.watcher is not None else None


def build_servers(settings: Settings, poster: SlackPoster | None, stop: threading.Event, resources: ExitStack, *,
                  watch: bool = True, on_ended: Callable[[list[str]], None] | None = None) -> list[ServerParts]:
    """Every configured server's parts; clients and log readers are closed with ``resources``. ``on_ended``:
    each watcher's delivery tells it who watched a run whose end it posted (the Home tabs)."""
    several = len(settings.servers) > 1
    parts = []
    for server in settings.servers:
        wes = resources.enter_context(wes_client(settings, server))
        logs = resources.enter_context(log_fetcher(settings, server))
        store = WatchStore(settings.db_path, server=server.name, url=server.url)
        _ = store.server_id  # claimed now, in the configuration's order (see wesbot.store.servers.claim_server)
        watcher = None
        if watch and poster is not None:
            watcher = build_watcher(settings, store, wes, poster, server=server, several=several, logs=logs,
                                    stop=stop, on_ended=on_ended)
        # Repositories hold no state: the watcher's own instances and these see the same rows.
        parts.append(ServerParts(config=server, wes=wes, logs=logs, store=store, cancels=CancelStore(store, server.url),
                                 watches=WatchesStore(store), watcher=watcher))
    return parts


def stored_but_not_configured(settings: Settings) -> list[HeldServer]:
    """The stored servers the configuration no longer names (or names at another URL), read from WESBOT_DB when
    it exists (this never creates the database): their rows are kept untouched, never watched, never reported
    gone, until a server of that name and URL is configured again."""
    if not Path(settings.db_path).expanduser().is_file():
        return []
    db = open_db(settings.db_path)
    try:
        return held_servers(db, [(server.name, server.url) for server in settings.servers])
    finally:
        db.close()


def report_held(settings: Settings) -> list[HeldServer]:
    """Say them once, at start-up."""
    held = stored_but_not_configured(settings)
    for row in held:
        logger.warning("the database holds rows of a WES server the configuration does not name with that URL: %s",
                       row.describe())
    return held


def held_lines(settings: Settings) -> list[str]:
    """What ``wesbot ask servers`` says of them."""
    return [row.describe() for row in stored_but_not_configured(settings)]
