"""Which WES server a command goes to, when several are configured.

In order: the server the command names (``--server NAME``, which every button carries), the channel's default
(``/wes use NAME``, else the server whose ``channels`` list it), the only server there is. Past that, a command
about one run looks for it on every server, reading only GET /runs: a per-run URL is not a safe probe (the
reference server creates a ghost run for any id asked about, and answers RUNNING). A run found on exactly one
server goes there; otherwise, and for any other command, the answer asks which server, one button each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from .commands import Command
from .results import ChooseServerResult
from .servers import UnknownServer
from .wes.errors import WesError
from .wes.models import RunListPage
from .wes.paging import walk

# Commands that are not about one server: they answer for every server, or for none.
ACROSS_SERVERS = frozenset({"help", "servers", "use", "subscriptions", "audit", "report"})
# How much of each server's run list a lookup reads to find a run (the most recent runs come first on most).
LOCATE_PAGES = 5
LOCATE_PAGE_SIZE = 200
LOCATE_THREADS = 8


class RunLister(Protocol):
    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage: ...


def choose(command: Command, names: Sequence[str], *, channel_default: str | None = None) -> str | None:
    """The server ``command`` goes to, or None when that takes a look (:func:`locate`) or a question.
    Raises :class:`~wesbot.servers.UnknownServer` for a name that is not configured."""
    if command.server is not None:
        if command.server not in names:
            raise UnknownServer(command.server, list(names))
        return command.server
    if len(names) == 1:
        return names[0]
    if channel_default in names:
        return channel_default
    return None


@dataclass(frozen=True, kw_only=True)
class Located:
    """Where a run was found: the servers that list it, and those whose list could not be read."""

    found: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()


def locate(run_id: str, servers: Mapping[str, RunLister], *, max_pages: int = LOCATE_PAGES) -> Located:
    """The servers whose recent runs (at most ``max_pages`` pages of GET /runs) include ``run_id``, all
    asked at once. Never a per-run call: asking a server about a run it does not have may create it."""
    names = list(servers)
    with ThreadPoolExecutor(max_workers=min(LOCATE_THREADS, max(1, len(names))),
                            thread_name_prefix="wesbot-locate") as pool:
        answers = list(pool.map(lambda name: _lists(servers[name], run_id, max_pages), names))
    return Located(found=tuple(n for n, a in zip(names, answers, strict=True) if a is True),
                   unreadable=tuple(n for n, a in zip(names, answers, strict=True) if a is None))


def _lists(wes: RunLister, run_id: str, max_pages: int) -> bool | None:
    """Whether ``wes`` lists ``run_id``; None when its list cannot be read."""
    try:
        for step in walk(lambda token: wes.list_runs(page_size=LOCATE_PAGE_SIZE, page_token=token),
                         size=lambda page: len(page.runs), max_pages=max_pages):
            if any(run.run_id == run_id for run in step.page.runs):
                return True
    except WesError:
        return None
    return False


def ask_which(command: Command, names: Sequence[str], located: Located | None = None) -> ChooseServerResult:
    """The question: which server, one button per server (each runs ``command`` there)."""
    return ChooseServerResult(command=command, servers=list(names),
                              found_on=list(located.found) if located else [],
                              unreadable=list(located.unreadable) if located else [])


def server_label(name: str, host: str, *, several: bool) -> str:
    """How a message names its server: the host alone when there is one server, else the name and the host."""
    return f"{name} ({host})" if several else host
