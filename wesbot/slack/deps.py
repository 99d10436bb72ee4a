"""What the Slack listeners need, per WES server, and which server a command goes to.

:class:`ServerDeps` is one configured server as the listeners use it: its client, its scoped store, its log
reader, its cancel rules. :class:`Deps` holds them all, with what is shared (the lookup pool, the poster), and
answers the routing questions with :mod:`wesbot.routing`'s rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cancel import DEFAULT_CANCEL_TIMEOUT, Cancelers
from ..commands import Command
from ..core import Context, LogReader, ServerEntry, Wes
from ..results import Result, UseResult
from ..routing import ACROSS_SERVERS, ask_which, choose, locate, server_label
from ..store.cancels import CancelStore
from ..store.servers import ChannelServers
from ..store.watch import WatchStore
from ..store.watches import WatchesStore
from .gate import response_origins
from .poster import SlackPoster

if TYPE_CHECKING:
    from .home import HomePublisher


@dataclass
class ServerDeps:
    """One WES server: its name, its client and what is stored about it (None: Slack-only subcommands answer
    that they are unavailable)."""

    name: str
    wes: Wes
    host: str
    store: WatchStore | None = None
    # Reads the end of logs for /wes logs and failed runs' details (with this server's credentials only).
    logs: LogReader | None = None
    # Cancelling: the audit trail and in-flight cancels, and who may.
    cancels: CancelStore | None = None
    cancelers: Cancelers | None = None
    watches: WatchesStore | None = None
    # Wakes this server's watcher (a new subscription's card is posted at once).
    wake: Callable[[], None] | None = None
    # The template of a run's page (run_url, WESBOT_RUN_URL): the Open button of status and details replies.
    run_url: str | None = None
    # The run tag naming who started a run (owner_tag, WESBOT_OWNER_TAG).
    owner_tag: str | None = None


@dataclass
class Deps:
    """What the listeners need. ``pool`` runs the WES lookups; it is sized well above Bolt's default 5."""

    servers: Sequence[ServerDeps]
    pool: ThreadPoolExecutor
    # After this many seconds without an answer, show "Looking up run X…" first.
    slow_notice_after: float = 1.5
    subscription_days: float = 14.0
    cancel_timeout: float = DEFAULT_CANCEL_TIMEOUT
    poster: SlackPoster | None = None
    # Where a payload's response_url may point (see slack.gate); anything else is refused before any listener.
    response_origins: frozenset[str] = response_origins("https://slack.com/api/")
    # WESBOT_DB, named in the sentence that replaces the apology when the error is a storage fault.
    db_path: str | None = None
    # Each channel's default server: chosen with /wes use (stored), else from the configuration's ``channels``.
    channel_servers: ChannelServers | None = None
    config_channels: Mapping[str, str] = field(default_factory=dict)
    # What /wes servers says about stored servers the configuration no longer names (one line each).
    held: Sequence[str] = ()
    # The Home tab's publisher, shared with the watchers' delivery (None: the listeners make their own).
    home: HomePublisher | None = None
    # Email address -> Slack user id (users.lookupByEmail, cached): the owner mentions of a report; None: off.
    owners: Callable[[str], str | None] | None = None

    @classmethod
    def single(cls, *, wes: Wes, host: str, pool: ThreadPoolExecutor, name: str = "default",
               store: WatchStore | None = None, logs: LogReader | None = None, cancels: CancelStore | None = None,
               cancelers: Cancelers | None = None, watches: WatchesStore | None = None,
               wake: Callable[[], None] | None = None, run_url: str | None = None, **shared: Any) -> Deps:
        """The listeners' needs with one WES server."""
        one = ServerDeps(name=name, wes=wes, host=host, store=store, logs=logs, cancels=cancels,
                         cancelers=cancelers, watches=watches, wake=wake, run_url=run_url)
        return cls(servers=[one], pool=pool, **shared)

    # -- the servers -----------------------------------------------------------------------------------

    @property
    def several(self) -> bool:
        return len(self.servers) > 1

    @property
    def names(self) -> list[str]:
        return [server.name for server in self.servers]

    @property
    def first(self) -> ServerDeps:
        return self.servers[0]

    def server(self, name: str | None) -> ServerDeps | None:
        return next((server for server in self.servers if server.name == name), None)

    def label(self, server: ServerDeps) -> str:
        """How messages name ``server``: its host, and its name too when there are several."""
        return server_label(server.name, server.host, several=self.several)

    def channel_default(self, channel_id: str | None) -> tuple[str | None, str | None]:
        """This channel's default server and who chose it (None: the configuration file, or no default)."""
        if not channel_id:
            return None, None
        stored = self.channel_servers.chosen(channel_id) if self.channel_servers is not None else None
        if stored is not None and stored[0] in self.names:
            return stored
        return self.config_channels.get(channel_id), None

    def context(self, server: ServerDeps, channel_id: str | None, user_id: str | None) -> Context | None:
        if server.store is None or not channel_id or not user_id:
            return None
        return Context(store=server.store, channel_id=channel_id, user_id=user_id, now=time.time(),
                       subscription_days=self.subscription_days, wake=server.wake, cancels=server.cancels,
                       cancelers=server.cancelers, watches=server.watches,
                       can_post=self._ask(SlackPoster.can_post, channel_id),
                       user_tz=self._ask(SlackPoster.user_tz, user_id), owner_tag=server.owner_tag,
                       user_email=self._ask(SlackPoster.user_email, user_id))

    def _ask(self, question: Callable[[SlackPoster, str], str | None], about: str) -> Callable[[], str | None] | None:
        """What the core may ask Slack about this channel or user, when it needs it (None: no Slack here)."""
        poster = self.poster
        if poster is None:
            return None
        return lambda: question(poster, about)

    def entries(self, channel_id: str | None) -> list[ServerEntry]:
        """The servers as /wes servers lists them, with this channel's default marked."""
        default = self.channel_default(channel_id)[0] or (self.first.name if not self.several else None)
        return [ServerEntry(name=s.name, wes=s.wes, is_default=s.name == default) for s in self.servers]

    # -- routing ---------------------------------------------------------------------------------------

    def route(self, command: Command, channel_id: str | None) -> tuple[ServerDeps | None, Result | None]:
        """The server ``command`` goes to, with the command bound to it; or, when that cannot be told, the
        question to answer instead. Raises UnknownServer for a server name that is not configured."""
        if command.name in ACROSS_SERVERS and command.server is None and self.several:
            return None, None  # the channel's subscriptions, the audit trail: of every server, each named
        name = choose(command, self.names, channel_default=self.channel_default(channel_id)[0])
        if name is None and command.run_id:
            located = locate(command.run_id, {s.name: s.wes for s in self.servers})
            if len(located.found) == 1:
                name = located.found[0]
            else:
                return None, ask_which(command, self.names, located)
        if name is None:
            return None, ask_which(command, self.names)
        return self.server(name), None

    def use(self, command: Command, channel_id: str | None, user_id: str | None) -> UseResult:
        """``/wes use [NAME]``: show or set this channel's default (a name that is not configured raises
        UnknownServer, like --server)."""
        if command.server is not None and channel_id and user_id and self.channel_servers is not None:
            chosen = self.server(choose(command, self.names))
            assert chosen is not None
            self.channel_servers.set(channel_id, chosen.name, user_id, time.time())
            return UseResult(command=command, server=chosen.name, host=chosen.host, changed=True, set_by=user_id,
                             servers=self.names)
        name, set_by = self.channel_default(channel_id)
        server = self.server(name) if name else (self.first if not self.several else None)
        return UseResult(command=command, server=server.name if server else None,
                         host=server.host if server else None, set_by=set_by, servers=self.names)
