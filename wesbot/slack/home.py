"""The App Home tab: the runs a person watches, the channel watches they set, the WES servers' health, and how
to use wesbot.

:class:`HomePublisher` gathers what the tab shows from the stores (:class:`~wesbot.slack.home_view.HomeData`)
and publishes the view of :func:`~wesbot.slack.home_view.home_view` with ``views.publish``:

- when the person opens the tab (``app_home_opened``): at once from the store, with the last reading of the
  servers' health; then, when that reading is older than :data:`HEALTH_MAX_AGE`, after asking every server for
  ``GET /service-info`` again (the same probe as ``/wes servers``);
- after they click one of its buttons;
- when one of their runs ends: delivery's ``on_ended`` (:meth:`HomePublisher.runs_ended`) only queues the
  refresh, which a thread of its own publishes, at most once per person per :data:`REFRESH_SECONDS`. Delivery
  never calls WES, so neither does this refresh: it shows the servers' health as last read in this process
  ("as of …"), or asks the person to open the tab again when it has none.

:class:`HomeListeners` are the tab's Bolt listeners. The tab's buttons come without a ``response_url`` or a
channel, so they have their own action ids (:data:`ACTION_HOME`): Unsubscribe and Unwatch carry the server and
the channel (or the watch) in their value, which is not trusted: only the clicking person is ever removed, and
only a watch they set; Details answers in the person's direct messages with wesbot.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import observe
from ..commands import MAX_ID, Command, UsageError, parse
from ..core import ServerEntry, execute, list_servers
from ..outcome import run_failed
from ..results import ServerRow, WatchResult
from ..store.subscriptions import EndedRun
from ..store.watch import WatchStore
from ..store.watches import ChannelWatch, WatchesStore
from ..wes.models import parse_state
from .blocks import pin_server
from .home_view import (
    ACTION_HOME,
    CHANNEL_ID,
    ENDED_DAYS,
    ENDED_SCAN,
    MAX_FAILURES,
    MAX_HOME_ENDED,
    HomeData,
    Mine,
    ServerHome,
    home_view,
)
from .replies import render

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from ..assemble import ServerParts
    from .deps import Deps, ServerDeps


logger = logging.getLogger("wesbot.slack.home")

HOME_EVENT = "app_home_opened"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{1,40}$")
_SERVER_NAME_MAX = 64
Publish = Callable[[str, dict[str, Any]], None]
HOME_ACTIONS = re.compile(rf"^{ACTION_HOME}:(unsubscribe|unwatch|details)$")

# A refresh after a run ended goes at most this often per person; a burst of ends is one refresh.
REFRESH_SECONDS = 10.0
# Opening the tab asks the servers again only when their last reading is older than this.
HEALTH_MAX_AGE = 30.0
# How many people's refreshes may wait at once (more are dropped: they see it when they open the tab).
MAX_PENDING = 10_000


# -- publishing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HomeSource:
    """One configured server as the tab reads it: its name, its host, and its scoped stores."""

    name: str
    host: str
    store: WatchStore | None = None
    watches: WatchesStore | None = None


@dataclass(frozen=True)
class _Health:
    rows: tuple[ServerRow, ...]
    read_at: float  # wall time, shown
    read_mono: float  # monotonic, for its age


def web_publisher(client: WebClient) -> Publish:
    """``views.publish`` through ``client`` (it raises SlackApiError when Slack refuses)."""

    def publish(user_id: str, view: dict[str, Any]) -> None:
        client.views_publish(user_id=user_id, view=view)

    return publish


@dataclass
class _Schedule:
    """The refreshes owed after runs ended: when each person's may go, and when each person's last one went
    (monotonic). Guarded by the publisher's condition."""

    due: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)


class HomePublisher:
    """Builds each person's tab from ``sources`` (and the servers' health from ``entries``; None: never asked,
    as in ``wesbot watch``) and publishes it with ``publish(user_id, view)``. ``background``: refreshes after a
    run ended are published by a daemon thread of its own (tests call :meth:`refresh_due` instead)."""

    def __init__(self, publish: Publish, sources: Sequence[HomeSource], *,
                 entries: Sequence[ServerEntry] | None = None, several: bool | None = None,
                 refresh_seconds: float = REFRESH_SECONDS, health_max_age: float = HEALTH_MAX_AGE,
                 background: bool = True, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._publish = publish
        self.sources = list(sources)
        self.entries = list(entries) if entries is not None else None
        self.several = len(self.sources) > 1 if several is None else several
        self.refresh_seconds = refresh_seconds
        self.health_max_age = health_max_age
        self.background = background
        self._clock = clock
        self._wall = wall
        self._health: _Health | None = None
        self._probing = threading.Lock()
        self._cond = threading.Condition()
        self._schedule = _Schedule()
        self._worker: threading.Thread | None = None

    @classmethod
    def for_deps(cls, deps: Deps, client: WebClient) -> HomePublisher:
        """The publisher of ``wesbot serve``: every server's stores, and their health."""
        sources = [HomeSource(name=s.name, host=s.host, store=s.store, watches=s.watches) for s in deps.servers]
        return cls(web_publisher(client), sources, entries=deps.entries(None), several=deps.several)

    @classmethod
    def for_parts(cls, parts: Sequence[ServerParts], client: WebClient) -> HomePublisher:
        """The publisher of ``wesbot watch``: every server's stores, never their health (it never calls WES)."""
        sources = [HomeSource(name=p.config.name, host=p.wes.host, store=p.store, watches=p.watches) for p in parts]
        return cls(web_publisher(client), sources)

    # -- what the tab shows --------------------------------------------------------------------------------

    def data(self, user_id: str, *, checking: bool = False) -> HomeData:
        """``user_id``'s tab, from the stores and the last reading of the servers' health (no WES call)."""
        health = self._health
        rows = {row.name: row for row in health.rows} if health is not None else {}
        since = self._wall() - ENDED_DAYS * 86400
        runs: list[Mine] = []
        ended: list[Mine] = []
        watches: list[tuple[str, ChannelWatch]] = []
        servers: list[ServerHome] = []
        for source in self.sources:
            failures: tuple[EndedRun, ...] = ()
            if source.store is not None:
                subs = source.store.subscriptions
                runs += [(source.name, sub) for sub in subs.of_user(user_id)]
                ended += [(source.name, sub) for sub in subs.ended_of_user(user_id, since=since, limit=MAX_HOME_ENDED)]
                failures = tuple(run for run in subs.recently_ended(ENDED_SCAN)
                                 if run_failed(parse_state(run.state), run.exit_code))[:MAX_FAILURES]
            if source.watches is not None:
                watches += [(source.name, watch) for watch in source.watches.of_creator(user_id)]
            servers.append(ServerHome(name=source.name, host=source.host, row=rows.get(source.name),
                                      failures=failures))
        runs.sort(key=lambda mine: mine[1].created_at, reverse=True)
        ended.sort(key=lambda mine: mine[1].state_since or 0.0, reverse=True)
        return HomeData(user_id=user_id, runs=runs, ended=ended[:MAX_HOME_ENDED], watches=watches, servers=servers,
                        health_at=health.read_at if health is not None else None, checking=checking,
                        several=self.several)

    def publish(self, user_id: str, *, checking: bool = False) -> bool:
        """Build ``user_id``'s tab and publish it. Never raises: a failure is logged, and False."""
        try:
            self._publish(user_id, home_view(self.data(user_id, checking=checking), now=self._wall()))
        except Exception as error:
            logger.warning("could not publish the Home tab of %s: %s", user_id, _why(error))
            return False
        return True

    # -- the servers' health ---------------------------------------------------------------------------------

    def health_fresh(self) -> bool:
        health = self._health
        return health is not None and self._clock() - health.read_mono < self.health_max_age

    def check_servers(self) -> bool:
        """Ask every server for GET /service-info (at once, each within its client's deadline), unless another
        thread just did. False when there is nothing to ask or the probe failed."""
        if self.entries is None:
            return False
        with self._probing:
            if self.health_fresh():
                return True
            try:
                rows = list_servers(Command(name="servers"), self.entries).servers
            except Exception:
                logger.warning("could not check the WES servers for the Home tab", exc_info=True)
                return False
            self._health = _Health(rows=tuple(rows), read_at=self._wall(), read_mono=self._clock())
        return True

    # -- when it is published ------------------------------------------------------------------------------

    def opened(self, user_id: str) -> None:
        """``user_id`` opened the tab: publish it at once from the store; when the servers' health is old, read it
        again and publish once more."""
        stale = self.entries is not None and not self.health_fresh()
        self.publish(user_id, checking=stale)
        if stale and self.check_servers():
            self.publish(user_id)

    def runs_ended(self, user_ids: Iterable[str]) -> None:
        """Delivery's ``on_ended``: refresh these people's tabs soon, from the store only, each at most once per
        ``refresh_seconds``. Only queues: never blocks, never raises."""
        try:
            now = self._clock()
            with self._cond:
                schedule = self._schedule
                for user in user_ids:
                    if user in schedule.due or not _USER_ID.match(user) or len(schedule.due) >= MAX_PENDING:
                        continue
                    schedule.due[user] = max(now, schedule.last.get(user, -math.inf) + self.refresh_seconds)
                if self.background and self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="wesbot-home", daemon=True)
                    self._worker.start()
                self._cond.notify_all()
        except Exception:
            logger.warning("could not queue a Home tab refresh", exc_info=True)

    def take_due(self) -> list[str]:
        """The people whose refresh may go now (taken off the schedule, and counted as refreshed now)."""
        now = self._clock()
        with self._cond:
            schedule = self._schedule
            due = [user for user, when in schedule.due.items() if when <= now]
            for user in due:
                del schedule.due[user]
                schedule.last[user] = now
            if len(schedule.last) > MAX_PENDING:
                schedule.last = {u: t for u, t in schedule.last.items() if now - t < self.refresh_seconds}
            return due

    def refresh_due(self) -> int:
        """Publish the refreshes that are due; how many went."""
        return sum(self.publish(user) for user in self.take_due())

    def _wait(self) -> None:
        """Until a refresh is due (or one is queued)."""
        with self._cond:
            due = self._schedule.due
            wait = min(due.values()) - self._clock() if due else None
            if wait is None or wait > 0:
                self._cond.wait(wait)

    def _work(self) -> None:
        while True:
            try:
                self._wait()
                self.refresh_due()
            except Exception:  # a bug here must not end the refreshes for good
                logger.exception("the Home tab refresher failed; going on")
                time.sleep(1.0)


def _why(error: BaseException) -> str:
    response = getattr(error, "response", None)
    slack_error = response.get("error") if response is not None and hasattr(response, "get") else None
    return str(slack_error or type(error).__name__)


class EndedRuns:
    """Delivery's ``on_ended`` before there is a publisher: the watchers are built before the Slack listeners'
    parts, so ``home`` is set once they are."""

    def __init__(self) -> None:
        self.home: HomePublisher | None = None

    def __call__(self, user_ids: list[str]) -> None:
        if self.home is not None:
            self.home.runs_ended(user_ids)


# -- the listeners --------------------------------------------------------------------------------------------


class InvalidButton(ValueError):
    """A Home button's value that wesbot did not make (or that no longer fits the configuration)."""


def _field(fields: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None, limit: int = MAX_ID) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value or len(value) > limit or (pattern and not pattern.match(value)):
        raise InvalidButton(f"no valid {key}")
    return value


def _fields(value: str) -> dict[str, Any]:
    try:
        fields = json.loads(value)
    except ValueError:
        raise InvalidButton("not JSON") from None
    if not isinstance(fields, dict):
        raise InvalidButton("not an object")
    return fields


class HomeListeners:
    """The tab's listeners (Bolt injects the arguments each ``run_*`` names; both run on the lookup pool)."""

    def __init__(self, deps: Deps, home: HomePublisher) -> None:
        self.deps = deps
        self.home = home

    @classmethod
    def for_deps(cls, deps: Deps, client: WebClient) -> HomeListeners:
        """With the publisher ``wesbot serve`` shares with its watchers, else one of their own on ``client``."""
        return cls(deps, deps.home or HomePublisher.for_deps(deps, client))

    def run_home_opened(self, event: dict[str, Any]) -> None:
        """``app_home_opened``: the Home tab only (the Messages tab sends it too)."""
        user_id = str(event.get("user") or "")
        if event.get("tab") == "home" and _USER_ID.match(user_id):
            self.home.opened(user_id)

    def run_home_action(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A click on the tab: who clicked is Slack's word (the body's user), what to act on is the value's."""
        user_id = str((body.get("user") or {}).get("id") or "")
        verb = str(action.get("action_id") or "").partition(":")[2]
        if not _USER_ID.match(user_id):
            return
        try:
            if verb == "unsubscribe":
                self._unsubscribe(user_id, _fields(str(action.get("value") or "")))
            elif verb == "unwatch":
                self._unwatch(user_id, _fields(str(action.get("value") or "")))
            elif verb == "details":
                self._details(user_id, str(action.get("value") or ""))
                return
        except InvalidButton as error:
            logger.warning("ignored a Home tab button of %s: %s", user_id, error)
        self.home.publish(user_id)

    def _server(self, fields: dict[str, Any]) -> ServerDeps:
        server = self.deps.server(_field(fields, "server", limit=_SERVER_NAME_MAX))
        if server is None:
            raise InvalidButton("not a configured server")
        return server

    def _unsubscribe(self, user_id: str, fields: dict[str, Any]) -> None:
        """Removes the clicking person from the run's subscription in that channel, and no one else."""
        server = self._server(fields)
        run_id, channel_id = _field(fields, "run"), _field(fields, "channel", CHANNEL_ID)
        if server.store is None:
            raise InvalidButton("no store")
        outcome = server.store.subscriptions.unsubscribe(run_id=run_id, channel_id=channel_id, user_id=user_id)
        logger.info("Home tab: %s unsubscribed from %s in %s: %s", user_id, run_id, channel_id, outcome)

    def _unwatch(self, user_id: str, fields: dict[str, Any]) -> None:
        """Removes the watch if the clicking person set it, and tells its channel, as ``/wes unwatch`` does."""
        server = self._server(fields)
        watch_id = fields.get("watch")
        if not isinstance(watch_id, int) or isinstance(watch_id, bool) or server.watches is None:
            raise InvalidButton("no valid watch")
        removed = server.watches.remove_own(watch_id, user_id)
        if removed is None or self.deps.poster is None:
            return
        where = f" on {server.name}" if self.deps.several else ""
        result = WatchResult(command=Command(name="unwatch", watch_kind=removed.kind,
                                             tag=(removed.tag_key, removed.tag_value) if removed.tag_key else None),
                             action="unwatch", changed=True, description=removed.describe() + where, by_user=user_id)
        posted = self.deps.poster.post(removed.channel_id, render(result, host=self.deps.label(server)))
        if not posted.ok:
            logger.warning("could not tell %s its watch was removed: %s", removed.channel_id, posted.error)

    def _details(self, user_id: str, value: str) -> None:
        """The run's details, in the person's direct messages with wesbot (a Home tab has no reply of its own)."""
        started = time.monotonic()
        try:
            command = parse(value)
        except UsageError as error:
            raise InvalidButton(error.message) from None
        server = self.deps.server(command.server) if command.server else None
        if command.name != "details" or server is None or self.deps.poster is None:
            raise InvalidButton("not a details button of a configured server")
        result = execute(command, server.wes, None, server.logs)
        message = render(result, host=self.deps.label(server), run_url=server.run_url)
        posted = self.deps.poster.post(user_id, pin_server(message, server.name) if self.deps.several else message)
        if not posted.ok:
            logger.warning("could not send %s the details of a run: %s", user_id, posted.error)
        outcome = "ok" if result.ok else str(getattr(result, "kind", "error"))
        observe.command(user_id, None, "details", server.host, outcome, time.monotonic() - started)
