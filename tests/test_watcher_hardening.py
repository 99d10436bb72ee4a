"""Hardening of the watcher's loop: one step's failure never stops the others."""

from __future__ import annotations

import pytest

from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, cycle, make, subscribe
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore
from wesbot.wes.models import RunListPage


class HostileListWes(StubWes):
    """GET /runs answers with something that blows up the parser (as a deeply nested body would)."""

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        raise RecursionError("maximum recursion depth exceeded")


def test_a_sweep_that_raises_does_not_stop_subscriptions(store: WatchStore, clock: FakeClock,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    wes, poster = HostileListWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock, watches=WatchesStore(store))
    watcher.watches.add(channel_id="C2", kind="failed", tag_key="", tag_value="", user_id="U1", now=clock.now())
    cycle(watcher, clock)
    wes.states["r1"] = "COMPLETE"
    for _ in range(4):
        cycle(watcher, clock)
    assert any("ended" in str(p.message) for p in poster.posts if p.method == "post")
    tracebacks = [r for r in caplog.records if "sweeping channel watches failed" in r.getMessage()]
    assert len(tracebacks) == 1 and tracebacks[0].exc_info is not None


def test_a_refused_token_keeps_everything_and_delivers_once_slack_accepts_it(store: WatchStore,
                                                                             clock: FakeClock) -> None:
    from wesbot.slack.poster import classify
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)  # the card
    poster.script["C1"] = [classify(200, {}, {"ok": False, "error": "invalid_auth"}) for _ in range(3)]
    wes.states["r1"] = "COMPLETE"
    for _ in range(60):
        cycle(watcher, clock, 60)
    assert store.subscriptions.get(1).status != "failed"
    ended = [p for p in poster.posts if p.method == "post" and "ended" in str(p.message)]
    assert len(ended) == 1


def test_a_refused_token_on_a_card_backs_off_instead_of_retrying_every_second(store: WatchStore,
                                                                             clock: FakeClock) -> None:
    from wesbot.slack.poster import classify
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    poster.script["C1"] = [classify(200, {}, {"ok": False, "error": "token_revoked"}) for _ in range(100)]
    for _ in range(30):  # a minute of delivery rounds, two seconds apart
        watcher.deliver()
        clock.advance(2)
    assert len(poster.script["C1"]) == 99  # one try, then the token backoff
    poster.script["C1"] = []
    clock.advance(300)
    watcher.deliver()
    assert [p.method for p in poster.posts] == ["failed", "post"] and store.subscriptions.get(1).card_ts is not None
