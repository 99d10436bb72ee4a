"""Run links that unfurl: a WES run's URL pasted in a channel shows the run's status under the message.

Slack sends a ``link_shared`` event for every message with a link on a domain listed in the manifest's
``unfurl_domains``; wesbot answers with one ``chat.unfurl`` call holding every link of the message it knows:

- a link is a run's when it is ``<server url>/runs/RUN_ID`` (or ``.../RUN_ID/status``) of a configured server,
  or a page made from the server's run-link template (``run_url``, e.g. ``https://ui.example.org/runs/{run_id}``):
  :func:`parse_link`, pure;
- a run unfurls at most once per channel per half hour (:mod:`wesbot.store.unfurls`), so the WES server is
  asked only about runs that will be shown, one ``GET /runs/{id}/status`` each (through the command core, which
  tells a ghost or an unknown run from a real one), a few at once;
- a link to an unknown run, or to a server that cannot be read, unfurls to nothing: it is left out of the call,
  and there is no call when nothing is left. Nothing of it reaches the channel, and the log has one line.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from slack_bolt import Ack

from ..commands import MAX_ID, Command
from ..config import RUN_ID_FIELD
from ..core import Wes, execute
from ..format import duration, state_with_exit
from ..results import StatusResult
from ..store.health import describe_storage_error
from ..store.unfurls import WINDOW
from ..wes.errors import WesError
from ..wes.models import (
    RunListPage,
    RunLog,
    RunStatus,
    ServiceInfo,
    TaskLog,
    TaskPage,
    is_terminal,
)
from .blocks import Block, code, context, escape, section, slack_wes_time
from .cards import state_icon
from .deps import Deps, ServerDeps
from .poster import PostResult

logger = logging.getLogger("wesbot.slack.unfurl")

# What one event may cost: the links read from it, and the runs looked up (Slack sends a handful at most).
MAX_LINKS = 20
MAX_RUNS = 10
# How many WES lookups run at once for one message; each is bounded by its client's deadline.
LOOKUPS_AT_ONCE = 4
# A longer link is no run's: a 256-character id of 4-byte characters, percent-encoded, is 3072 characters.
MAX_URL = 8000
_DEFAULT_PORTS = {"http": 80, "https": 443}

# chat.unfurl(channel, ts, {url: {"blocks": [...]}}).
Unfurl = Callable[[str, str, dict[str, dict[str, Any]]], PostResult]


# -- which links are runs' (pure) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Where:
    """A URL in three parts: ``scheme://host[:port]`` (the scheme and host in lower case, the default port left
    out), its path, and what follows the path (``?query#fragment``, or empty)."""

    origin: str
    path: str
    rest: str


def _where(url: str) -> _Where | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    origin = f"{scheme}://{host}" + ("" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}")
    rest = (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return _Where(origin=origin, path=parts.path, rest=rest)


@dataclass(frozen=True)
class LinkPattern:
    """The links of one server's runs of one form: the server's URL with ``/runs/{run_id}`` (or
    ``/runs/{run_id}/status``) after it, or its run-link template. Built by :func:`patterns`."""

    server: str
    regex: re.Pattern[str]
    # The query and fragment are part of the match only when the template puts the run id there.
    whole: bool

    def run_id(self, link: _Where) -> str | None:
        found = self.regex.fullmatch(link.origin + link.path + (link.rest if self.whole else ""))
        return None if found is None else _run_id(found.group("id"))


def _pattern(server: str, template: str) -> LinkPattern | None:
    """The pattern of a template with ``{run_id}`` in its path or its query (each ``{run_id}`` the same id)."""
    where = _where(template)
    if where is None or RUN_ID_FIELD in where.origin or RUN_ID_FIELD not in template:
        return None
    whole = RUN_ID_FIELD not in where.path
    parts = (where.path + (where.rest if whole else "")).split(RUN_ID_FIELD)
    if not whole:
        parts[-1] = parts[-1].rstrip("/")
    regex = re.escape(where.origin + parts[0]) + (r"(?P<id>[^/?#&]+)" if whole else r"(?P<id>[^/?#]+)")
    for index, part in enumerate(parts[1:], start=1):
        regex += re.escape(part) + ("(?P=id)" if index < len(parts) - 1 else "")
    regex += r"(?:[&#].*)?" if whole else "/?"
    return LinkPattern(server=server, regex=re.compile(regex, re.DOTALL), whole=whole)


def patterns(servers: Iterable[tuple[str, str | None, str | None]]) -> list[LinkPattern]:
    """The patterns of ``(name, WES URL, run-link template)`` of each server, in the servers' order."""
    found: list[LinkPattern] = []
    for name, url, template in servers:
        base = _where(url) if url else None
        if base is not None:
            root = base.origin + base.path.rstrip("/")
            for suffix in (f"/runs/{RUN_ID_FIELD}", f"/runs/{RUN_ID_FIELD}/status"):
                found += [p for p in [_pattern(name, root + suffix)] if p]
        if template:
            found += [p for p in [_pattern(name, template)] if p]
    return found


def _run_id(raw: str) -> str | None:
    """The run id of a link's path segment, URL-unquoted, when it is one a user could type (as the parser
    checks them: 1 to 256 printable characters, no spaces)."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return None
    if not 0 < len(value) <= MAX_ID or not value.isprintable() or any(ch.isspace() for ch in value):
        return None
    return None if value in (".", "..") else value


def parse_link(url: str, known: Sequence[LinkPattern]) -> tuple[str, str] | None:
    """``(server name, run id)`` of a link to a run of a configured server, else None. The first server whose
    pattern matches wins; a query or fragment after the run's path is ignored."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        return None
    where = _where(url)
    if where is None:
        return None
    for pattern in known:
        run_id = pattern.run_id(where)
        if run_id is not None:
            return pattern.server, run_id
    return None


# -- what a run unfurls to (pure) ---------------------------------------------------------------------------

def _workflow(run: RunLog) -> str | None:
    """The workflow's name as the cards show it: the last part of its URL, else the run log's name."""
    url = run.request.workflow_url
    if url:
        return url.rstrip("/").rsplit("/", 1)[-1] or url
    return run.run_log.name


def render_unfurl(status: RunStatus, run: RunLog | None, *, server: str | None = None) -> list[Block]:
    """The unfurl of a run: its id and state (with the exit code and icon the cards show), its workflow, when
    it started and how long it ran; ``server``: the server's label, when there are several. ``run``: None when
    the run log could not be read (the state alone then)."""
    exit_code = run.run_log.exit_code if run is not None else None
    icon = state_icon(status.state, exit_code)
    lines = [f"{icon} Run {code(status.run_id, 120)} is *{escape(state_with_exit(status.state, exit_code))}*"]
    facts: list[str] = []
    if run is not None:
        workflow = _workflow(run)
        if workflow:
            facts.append(f"*Workflow:* {code(workflow, 120)}")
        log = run.run_log
        if log.start_time:
            facts.append(f"*Started:* {slack_wes_time(log.start_time, ago=not is_terminal(status.state))}")
        took = duration(log.start_time, log.end_time, ended=is_terminal(status.state))
        if took:
            facts.append(f"*Duration:* {escape(took)}")
    if facts:
        lines.append(" · ".join(facts))
    blocks = [section("\n".join(lines))]
    if server:
        blocks.append(context(f"WES server: {escape(server)}"))
    return blocks


# -- one link_shared event ----------------------------------------------------------------------------------

class _RememberedRuns:
    """A server's client that reads each run log once: the core's ghost check reads it, and the unfurl shows
    its workflow and times, with one ``GET /runs/{id}`` between them."""

    def __init__(self, wes: Wes) -> None:
        self._wes = wes
        self._runs: dict[str, RunLog | WesError] = {}

    @property
    def host(self) -> str:
        return self._wes.host

    def get_run(self, run_id: str) -> RunLog:
        if run_id not in self._runs:
            try:
                self._runs[run_id] = self._wes.get_run(run_id)
            except WesError as error:
                self._runs[run_id] = error
        got = self._runs[run_id]
        if isinstance(got, WesError):
            raise got
        return got

    def run_or_none(self, run_id: str) -> RunLog | None:
        try:
            return self.get_run(run_id)
        except WesError:
            return None

    def get_status(self, run_id: str) -> RunStatus:
        return self._wes.get_status(run_id)

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        return self._wes.list_runs(page_size=page_size, page_token=page_token)

    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage:
        return self._wes.list_tasks(run_id, page_size=page_size, page_token=page_token, run=run)

    def get_task(self, run_id: str, task_id: str) -> TaskLog:
        return self._wes.get_task(run_id, task_id)

    def cancel_run(self, run_id: str) -> str | None:
        return self._wes.cancel_run(run_id)

    def service_info(self) -> ServiceInfo:
        return self._wes.service_info()


@dataclass(frozen=True)
class _Run:
    """One run a message links to, and every link of the message that points to it."""

    server: ServerDeps
    run_id: str
    urls: tuple[str, ...]


class LinkUnfurler:
    """Handles ``link_shared`` events: ``servers`` are the configured servers (each unfurls through its own
    store, which holds the half-hour rule, and its own client); ``unfurl`` calls chat.unfurl (None: nothing is
    ever unfurled); ``label`` names a server in the unfurl when there are ``several``."""

    def __init__(self, servers: Sequence[ServerDeps], *, unfurl: Unfurl | None,
                 label: Callable[[ServerDeps], str] | None = None, several: bool = False,
                 clock: Callable[[], float] = time.time, window: float = WINDOW) -> None:
        self.servers = {server.name: server for server in servers if server.store is not None}
        self.patterns = patterns((s.name, s.store.url if s.store else None, s.run_url) for s in self.servers.values())
        self.unfurl = unfurl
        self.label = label
        self.several = several
        self.clock = clock
        self.window = window

    @classmethod
    def for_deps(cls, deps: Deps) -> LinkUnfurler:
        poster = deps.poster
        return cls(deps.servers, unfurl=poster.unfurl if poster is not None else None, label=deps.label,
                   several=deps.several)

    def run_link_shared(self, event: dict[str, Any]) -> None:
        """Bolt's lazy listener of ``link_shared``. Never raises: whatever goes wrong is one log line."""
        try:
            self.handle(event)
        except Exception:  # a bug or a storage fault: the message simply stays without unfurls
            logger.exception("could not unfurl the links of a message")

    def handle(self, event: dict[str, Any]) -> int:
        """Unfurl the run links of one message; how many links were unfurled."""
        where = _message_of(event)
        if where is None or self.unfurl is None or not self.patterns:
            return 0
        channel, ts = where
        runs = self._runs(event.get("links"))
        now = self.clock()
        claimed = [run for run in runs if self._claim(run, channel, now)]
        if not claimed:
            return 0
        with ThreadPoolExecutor(max_workers=min(LOOKUPS_AT_ONCE, len(claimed)),
                                thread_name_prefix="wesbot-unfurl") as pool:
            shown = list(pool.map(self._look_up, claimed))
        unfurls = {url: {"blocks": blocks} for run, blocks in zip(claimed, shown, strict=True) if blocks
                   for url in run.urls}
        left_out = [run for run, blocks in zip(claimed, shown, strict=True) if not blocks]
        result = self.unfurl(channel, ts, unfurls) if unfurls else None
        if result is not None and not result.ok:
            logger.warning("Slack refused to unfurl %d link(s) in %s: %s", len(unfurls), channel, result.error)
            left_out = claimed
        for run in left_out:
            self._release(run, channel, now)
        return len(unfurls) if result is not None and result.ok else 0

    def _runs(self, links: object) -> list[_Run]:
        """The distinct runs the links point to, each with its links, in the order of the message."""
        found: dict[tuple[str, str], list[str]] = {}
        for link in (links if isinstance(links, list) else [])[:MAX_LINKS]:
            url = link.get("url") if isinstance(link, dict) else None
            if not isinstance(url, str):
                continue
            parsed = parse_link(url, self.patterns)
            if parsed is not None and url not in found.get(parsed, []):
                found.setdefault(parsed, []).append(url)
        return [_Run(server=self.servers[name], run_id=run_id, urls=tuple(urls))
                for (name, run_id), urls in list(found.items())[:MAX_RUNS]]

    def _claim(self, run: _Run, channel: str, now: float) -> bool:
        """Whether the run may unfurl in the channel now (see :meth:`Unfurls.claim`); a storage fault leaves it
        out, in one log line."""
        assert run.server.store is not None
        try:
            return run.server.store.unfurls.claim(run.run_id, channel, now=now, window=self.window)
        except Exception as error:
            logger.warning("could not record the unfurl of a run on %s, so it is not unfurled: %s", run.server.host,
                           describe_storage_error(error, None) or type(error).__name__)
            return False

    def _release(self, run: _Run, channel: str, now: float) -> None:
        assert run.server.store is not None
        try:
            run.server.store.unfurls.release(run.run_id, channel, at=now)
        except Exception as error:  # the claim then simply runs out after the half hour
            logger.warning("could not release the unfurl claim of a run: %s", type(error).__name__)

    def _look_up(self, run: _Run) -> list[Block] | None:
        """The run's unfurl, or None when it unfurls to nothing (unknown, a ghost, a server that cannot be read)."""
        server = run.server
        try:
            wes = _RememberedRuns(server.wes)
            command = Command(name="status", run_id=run.run_id, server=server.name if self.several else None)
            result = execute(command, wes)
            if not isinstance(result, StatusResult):
                logger.info("a link to a run on %s unfurls to nothing: %s", server.host,
                            getattr(result, "kind", "error"))
                return None
            label = self.label(server) if self.several and self.label is not None else None
            return render_unfurl(result.status, wes.run_or_none(run.run_id), server=label)
        except Exception:
            logger.exception("could not look up a linked run on %s", server.host)
            return None


def _message_of(event: dict[str, Any]) -> tuple[str, str] | None:
    """The channel and ts of the message the links are in; None for links still in someone's message composer
    (``source: composer``): they unfurl once posted, so the half-hour rule counts the channel's messages only."""
    channel, ts = event.get("channel"), event.get("message_ts")
    if event.get("source") == "composer" or channel == "COMPOSER":
        return None
    if not isinstance(channel, str) or not channel or not isinstance(ts, str) or not ts:
        return None
    return channel, ts


def ack_link_shared(ack: Ack) -> None:
    """A ``link_shared`` event is acknowledged at once; the lookups run on the pool (:meth:`run_link_shared`)."""
    ack()


def listeners(deps: Deps) -> dict[str, Any]:
    """The ``link_shared`` listener's parts, for ``app.event("link_shared")(**listeners(deps))``."""
    return {"ack": ack_link_shared, "lazy": [LinkUnfurler.for_deps(deps).run_link_shared]}
