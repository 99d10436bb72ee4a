"""How a list of WES pages is read: the one walk over ``next_page_token`` that every caller uses.

Real servers end a list in several ways (``WES-NOTES.md``): no token, an empty token, an empty page, or the
same token handed out again forever. Some never end at all. :func:`walk` knows all of them, and stops at a
page limit, when time is up, or when asked to stop, recording in :class:`Walk` which it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["Page", "Step", "Walk", "walk"]


class Page(Protocol):
    @property
    def next_page_token(self) -> str | None: ...


P = TypeVar("P", bound=Page)


@dataclass(frozen=True)
class Step(Generic[P]):
    """One page, the token that fetched it (None for the first page of a list), and the token of the next page:
    None when this page is the last (no token, a token seen before, or an empty page)."""

    token: str | None
    page: P
    next: str | None


@dataclass
class Walk:
    """How a walk went: ``pages`` read; ``complete`` once the last page was read; else ``cut`` names what
    stopped it early: "pages" (the page limit), "time" or "stopped"."""

    pages: int = 0
    complete: bool = False
    cut: str | None = None


def walk(fetch: Callable[[str | None], P], *, size: Callable[[P], int], start: str | None = None,
         max_pages: int, time_up: Callable[[], bool] | None = None, stopped: Callable[[], bool] | None = None,
         progress: Walk | None = None) -> Iterator[Step[P]]:
    """Read pages from ``start`` until the list ends or a bound stops it (the first page is read unless
    ``stopped``; time is up only after it).

    ``size(page)`` is how many items a page holds (an empty page ends the list). ``time_up`` and ``stopped``
    are asked before each further page. ``progress`` (a :class:`Walk`) is updated as pages are read, so that a
    caller that stops iterating early still knows how many it read.
    """
    state = progress if progress is not None else Walk()
    token = start
    seen: set[str] = {start} if start else set()
    while True:
        cut = _bound(state.pages, max_pages, time_up, stopped)
        if cut is not None:
            state.cut = cut
            return
        page = fetch(token)
        state.pages += 1
        nxt = page.next_page_token or None
        if nxt is not None and (nxt in seen or size(page) == 0):
            nxt = None
        state.complete = nxt is None
        yield Step(token, page, nxt)
        if nxt is None:
            return
        seen.add(nxt)
        token = nxt


def _bound(pages: int, max_pages: int, time_up: Callable[[], bool] | None,
           stopped: Callable[[], bool] | None) -> str | None:
    if stopped is not None and stopped():
        return "stopped"
    if pages >= max_pages:
        return "pages"
    if pages and time_up is not None and time_up():
        return "time"
    return None
