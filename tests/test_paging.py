"""How a list of WES pages is read (wesbot.wes.paging.walk), against a tiny in-test server: a table of the ways
real servers end a list, and of the bounds that cut a walk short."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from wesbot.wes.paging import Step, Walk, walk


@dataclass(frozen=True)
class Page:
    items: tuple[str, ...]
    next_page_token: str | None


Server = Callable[[str | None], Page]


def listing(pages: dict[str | None, tuple[tuple[str, ...], str | None]]) -> Server:
    """A server that answers each token with its page; a token it never handed out is a test failure."""
    return lambda token: Page(*pages[token])


def endless(token: str | None) -> Page:
    """A server that hands out a new token and a new run on every page, forever."""
    n = 0 if token is None else int(token.removeprefix("t"))
    return Page((f"run{n}",), f"t{n + 1}")


def read(server: Server, **bounds: Any) -> tuple[list[Step[Page]], Walk, list[str | None]]:
    """Walk the whole list; the steps, how the walk went, and the tokens the server was asked for."""
    asked: list[str | None] = []

    def fetch(token: str | None) -> Page:
        asked.append(token)
        return server(token)

    progress = Walk()
    steps = list(walk(fetch, size=lambda page: len(page.items), progress=progress, **{"max_pages": 50, **bounds}))
    return steps, progress, asked


# -- the list ends: every page read, the last step points nowhere, the walk is complete --------------------

ENDINGS = [
    pytest.param({None: (("a", "b"), "t1"), "t1": (("c",), None)}, [None, "t1"], id="no token"),
    pytest.param({None: (("a", "b"), "t1"), "t1": (("c",), "")}, [None, "t1"], id="empty-string token"),
    pytest.param({None: (("a",), "")}, [None], id="one page, empty-string token"),
    pytest.param({None: (("a",), "t1"), "t1": ((), "t2")}, [None, "t1"], id="empty page with a token"),
    pytest.param({None: ((), "t1")}, [None], id="empty first page with a token"),
    pytest.param({None: (("a",), "t1"), "t1": (("b",), "t1")}, [None, "t1"], id="same token forever"),
    pytest.param({None: (("a",), "t1"), "t1": (("b",), "t2"), "t2": (("c",), "t1")}, [None, "t1", "t2"],
                 id="token seen two pages back"),
]


@pytest.mark.parametrize(("pages", "asked"), ENDINGS)
def test_a_list_ends_the_way_real_servers_end_it(pages: dict[str | None, tuple[tuple[str, ...], str | None]],
                                                  asked: list[str | None]) -> None:
    steps, progress, fetched = read(listing(pages))
    assert fetched == asked
    assert [step.token for step in steps] == asked
    assert [step.page.items for step in steps] == [pages[token][0] for token in asked]
    assert [step.next for step in steps] == asked[1:] + [None]
    assert (progress.pages, progress.complete, progress.cut) == (len(asked), True, None)


def test_a_list_exactly_as_long_as_the_page_limit_is_complete() -> None:
    steps, progress, _ = read(listing({None: (("a",), "t1"), "t1": (("b",), "")}), max_pages=2)
    assert (len(steps), steps[-1].next, progress.complete, progress.cut) == (2, None, True, None)


# -- bounds: the walk is cut short, and says which bound cut it -------------------------------------------


def later(after: int) -> Callable[[], bool]:
    """A bound that holds once it has been asked ``after`` times."""
    calls = itertools.count()
    return lambda: next(calls) >= after


def always() -> bool:
    return True


# Each row builds its bounds afresh (``later`` counts its calls).
CUTS = [
    pytest.param(lambda: {"max_pages": 3}, 3, "pages", id="page limit"),
    pytest.param(lambda: {"max_pages": 1}, 1, "pages", id="page limit of one"),
    pytest.param(lambda: {"time_up": always}, 1, "time", id="time up from the start: the first page is still read"),
    pytest.param(lambda: {"time_up": later(2)}, 3, "time", id="time up after the third page"),
    pytest.param(lambda: {"stopped": always}, 0, "stopped", id="stopped before any page"),
    pytest.param(lambda: {"stopped": later(2)}, 2, "stopped", id="stopped after two pages"),
    pytest.param(lambda: {"stopped": always, "time_up": always, "max_pages": 0}, 0, "stopped",
                 id="stopped wins over every other bound"),
]


@pytest.mark.parametrize(("bounds", "pages", "cut"), CUTS)
def test_a_walk_cut_short_says_which_bound_cut_it(bounds: Callable[[], dict[str, Any]], pages: int,
                                                  cut: str) -> None:
    steps, progress, fetched = read(endless, **bounds())
    assert fetched == [None, *(f"t{n}" for n in range(1, pages))][:pages]
    assert (progress.pages, progress.complete, progress.cut) == (pages, False, cut)
    if steps:
        assert steps[-1].next == f"t{pages}"  # the token of the page not read is kept, to resume from


def test_time_up_is_asked_only_between_pages() -> None:
    fetched: list[str | None] = []
    pages_read_when_asked: list[int] = []

    def fetch(token: str | None) -> Page:
        fetched.append(token)
        return endless(token)

    def time_up() -> bool:
        pages_read_when_asked.append(len(fetched))
        return len(fetched) >= 2

    steps = list(walk(fetch, size=lambda page: len(page.items), max_pages=50, time_up=time_up))
    assert len(steps) == 2
    assert pages_read_when_asked == [1, 2]  # never before the first page


# -- where a walk starts -----------------------------------------------------------------------------------


def test_a_walk_starts_at_the_start_token() -> None:
    steps, progress, fetched = read(listing({"t5": (("e",), "t6"), "t6": (("f",), "")}), start="t5")
    assert fetched == ["t5", "t6"]
    assert [(step.token, step.next) for step in steps] == [("t5", "t6"), ("t6", None)]
    assert progress.complete


@pytest.mark.parametrize("handed_back", ["on the first page", "two pages on"])
def test_a_server_that_hands_back_the_start_token_ends_the_walk(handed_back: str) -> None:
    pages: dict[str | None, tuple[tuple[str, ...], str | None]] = {"t5": (("e",), "t5")}
    if handed_back == "two pages on":
        pages = {"t5": (("e",), "t6"), "t6": (("f",), "t5")}
    steps, progress, fetched = read(listing(pages), start="t5")
    assert fetched == list(pages)
    assert steps[-1].next is None
    assert (progress.pages, progress.complete, progress.cut) == (len(pages), True, None)


def test_a_caller_that_stops_iterating_early_still_knows_how_many_pages_were_read() -> None:
    progress = Walk()
    for step in walk(endless, size=lambda page: len(page.items), max_pages=50, progress=progress):
        if step.token == "t2":
            break
    assert (progress.pages, progress.complete, progress.cut) == (3, False, None)
