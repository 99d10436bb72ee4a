"""Bounds on the watcher (issue 15): a run list that never ends cannot take the loop over (items 5), and the
schedule follows a monotonic clock, so setting the wall clock back does not stop the polling (item 17).

Against the in-process fakes of ``tests/test_watcher.py``: a fake clock, a stub WES, a recording poster."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, make, subscribe
from wesbot.slack.poster import PostResult
from wesbot.store.cancels import CancelStore
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore
from wesbot.watcher import Watcher, WatcherSettings
from wesbot.wes.models import RunListPage, RunLog, RunStatus, RunSummary, parse_state

# A 30 s poll period: the time bound is min(20 s, 30 s / 2) = 15 s.
SETTINGS = WatcherSettings(poll_seconds=30, lease_seconds=30, pace_seconds=1.0, post_concurrency=1)
BUDGET = 15.0


@dataclass
class EndlessWes(StubWes):
    """GET /runs as the hostile server of issue 15 serves it: the runs of ``states`` on the first page (unless
    not ``list_states``), then a new token and ``page`` new runs on every page, forever (unless ``endless`` is
    False: then the first page is the last). With ``clock`` set, each page request takes ``page_seconds``."""

    endless: bool = True
    list_states: bool = True
    new_state: str = "RUNNING"
    clock: FakeClock | None = None
    page_seconds: float = 0.0
    tokens: list[str | None] = field(default_factory=list)

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        self.list_calls += 1
        self.tokens.append(page_token)
        if self.clock is not None:
            self.clock.advance(self.page_seconds)
        number = int(page_token or 0)
        if number == 0 and self.list_states:
            runs = [RunSummary(run_id=i, state=parse_state(s)) for i, s in sorted(self.states.items())
                    if not i.startswith("new-")]
        else:
            runs = [RunSummary(run_id=f"new-{number}-{i}", state=parse_state(self.new_state))
                    for i in range(self.page)]
        return RunListPage(runs=runs, next_page_token=str(number + 1) if self.endless else None)

    def _known(self, run_id: str) -> None:
        if run_id.startswith("new-"):
            self.states.setdefault(run_id, self.new_state)

    def get_status(self, run_id: str) -> RunStatus:
        self._known(run_id)
        return super().get_status(run_id)

    def get_run(self, run_id: str) -> RunLog:
        self._known(run_id)
        return super().get_run(run_id)


class TimedPoster(RecordingPoster):
    """Also notes when (monotonic time) each post went out."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.times: list[float] = []

    def post(self, channel: str, message: dict[str, Any], *, thread_ts: str | None = None,
             broadcast: bool = False, key: str | None = None) -> Any:
        self.times.append(self.clock.monotonic())
        return super().post(channel, message, thread_ts=thread_ts, broadcast=broadcast, key=key)


def watching(store: WatchStore, wes: StubWes, poster: RecordingPoster, clock: FakeClock,
             settings: WatcherSettings = SETTINGS, kind: str = "failed", channel: str = "C1") -> Watcher:
    """A watcher with a channel watch (``kind`` in ``channel``) to sweep for."""
    watcher = make(store, wes, poster, clock, settings=settings, watches=WatchesStore(store))
    watcher.watches.add(channel_id=channel, kind=kind, tag_key="", tag_value="", user_id="U1", now=clock.now())
    return watcher


def announced(poster: RecordingPoster) -> list[tuple[str, str]]:
    """(channel, run id) of every single-run notification posted."""
    return [(p.channel, p.message["text"].split()[1]) for p in poster.posts
            if p.method == "post" and " ended " in p.message["text"]]


# -- item 5: one sweep is bounded in pages, runs held and time --------------------------------------------


def test_the_default_page_bound_stops_an_endless_list(store: WatchStore, clock: FakeClock) -> None:
    wes = EndlessWes({"a": "RUNNING"}, page=1)  # one run a page: the page bound comes before the runs bound
    watcher = watching(store, wes, RecordingPoster(), clock, settings=WatcherSettings(poll_seconds=30))
    stats = watcher.sweep_watches()
    assert WatcherSettings().watch_max_pages == 200
    assert wes.list_calls == stats.requests == 200 and stats.listed == 200
    assert store.values.get("sweep_complete") == "0"


def test_the_runs_bound_stops_an_endless_list(store: WatchStore, clock: FakeClock) -> None:
    wes = EndlessWes({"a": "RUNNING"}, page=100)
    settings = WatcherSettings(poll_seconds=30, watch_max_runs=5_000)
    stats = watching(store, wes, RecordingPoster(), clock, settings=settings).sweep_watches()
    assert stats.listed == 5_000 and wes.list_calls == 51  # "a", 49 pages of 100, and 99 runs of one more
    assert store.values.get("sweep_complete") == "0"


def test_one_page_bigger_than_the_runs_bound_is_cut_and_incomplete(store: WatchStore, clock: FakeClock) -> None:
    wes = EndlessWes({f"r{i:05d}": "RUNNING" for i in range(12_000)}, endless=False)  # one page, the last
    settings = WatcherSettings(poll_seconds=30, watch_max_runs=5_000)
    stats = watching(store, wes, RecordingPoster(), clock, settings=settings).sweep_watches()
    assert stats.listed == 5_000 and wes.list_calls == 1
    assert store.values.get("sweep_complete") == "0"  # the list's end was read, but not all of it was kept


@pytest.mark.parametrize(("poll", "seconds_max", "pages"), [(30, 20.0, 15), (60, 20.0, 20), (600, 5.0, 5)])
def test_the_time_bound_stops_an_endless_list(store: WatchStore, clock: FakeClock, poll: float,
                                              seconds_max: float, pages: int) -> None:
    wes = EndlessWes({"a": "RUNNING"}, clock=clock, page_seconds=1.0)
    settings = WatcherSettings(poll_seconds=poll, sweep_seconds_max=seconds_max)
    stats = watching(store, wes, RecordingPoster(), clock, settings=settings).sweep_watches()
    assert wes.list_calls == stats.requests == pages  # min(sweep_seconds_max, poll / 2) seconds of pages
    assert store.values.get("sweep_complete") == "0"


def test_the_subscription_ticks_list_read_is_bounded_in_time_too(store: WatchStore, clock: FakeClock) -> None:
    # 60 due runs (enough to read their states from the list first), in none of its endless pages.
    wes = EndlessWes({f"r{i:02d}": "RUNNING" for i in range(60)}, list_states=False, clock=clock, page_seconds=1.0)
    for run_id in wes.states:
        subscribe(store, clock, run_id)
    stats = make(store, wes, RecordingPoster(), clock, settings=SETTINGS).tick()
    assert stats.sweep_requests == BUDGET < SETTINGS.sweep_max_pages
    assert sorted(wes.status_calls) == sorted(wes.states) and stats.polled == 60  # every run still polled


def test_a_cut_sweep_announces_only_ends_of_runs_it_already_knew(store: WatchStore, clock: FakeClock) -> None:
    wes = EndlessWes({"a": "RUNNING", "b": "RUNNING"}, endless=False, clock=clock, page_seconds=1.0)
    poster = RecordingPoster()
    watcher = watching(store, wes, poster, clock)
    watcher.sweep_watches()
    watcher.sweep_watches()  # two complete sweeps: "a" and "b" are stored, the watch is active
    wes.endless, wes.new_state = True, "EXECUTOR_ERROR"  # every new run on every page looks like it just failed
    wes.states.update({"a": "EXECUTOR_ERROR", "fresh": "EXECUTOR_ERROR"})
    calls = wes.list_calls
    stats = watcher.sweep_watches()
    watcher.deliver()
    assert wes.list_calls - calls == BUDGET and store.values.get("sweep_complete") == "0"
    assert announced(poster) == [("C1", "a")] and stats.queued == 1
    assert [r for r in wes.run_calls if r != "a"] == []  # nothing new-looking was even confirmed


def test_a_watch_becomes_active_on_a_list_that_is_always_cut(store: WatchStore, clock: FakeClock) -> None:
    wes = EndlessWes({"a": "RUNNING"}, clock=clock, page_seconds=1.0)
    poster = RecordingPoster()
    watcher = watching(store, wes, poster, clock)
    watcher.sweep_watches()
    wes.states["a"] = "SYSTEM_ERROR"
    watcher.sweep_watches()
    watcher.deliver()
    assert announced(poster) == [("C1", "a")]  # the runs within the bounds are watched


def test_cut_sweeps_warn_once_and_say_so_once_when_the_list_is_whole_again(
        store: WatchStore, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    wes = EndlessWes({"a": "RUNNING"}, clock=clock, page_seconds=1.0)
    watcher = watching(store, wes, RecordingPoster(), clock)
    with caplog.at_level(logging.INFO, logger="wesbot.watcher"):
        for _ in range(4):
            watcher.sweep_watches()
        wes.endless = False
        watcher.sweep_watches()
        watcher.sweep_watches()
        wes.endless = True
        watcher.sweep_watches()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per episode, not one per sweep
    assert "time limit (15 s" in warnings[0] and "15 pages" in warnings[0]
    assert "not watched until the list gets shorter" in warnings[0]
    whole = [r for r in caplog.records if r.levelno == logging.INFO and "whole run list again" in r.getMessage()]
    assert len(whole) == 1


def test_a_subscriptions_end_is_delivered_in_the_same_step_as_a_cut_sweep(store: WatchStore,
                                                                          clock: FakeClock) -> None:
    wes = EndlessWes({"r1": "RUNNING"}, clock=clock, page_seconds=1.0)
    poster = TimedPoster(clock)
    subscribe(store, clock, "r1", "C1")
    watcher = watching(store, wes, poster, clock, channel="C2")
    watcher.step()
    wes.states["r1"] = "COMPLETE"
    clock.advance(30)
    calls, started = wes.list_calls, clock.monotonic()
    watcher.step()
    [(at, note)] = [(t, p) for t, p in zip(poster.times, poster.posts, strict=True)
                    if p.method == "post" and " ended " in p.message["text"]]
    assert note.channel == "C1" and note.thread_ts is not None
    assert wes.list_calls - calls == BUDGET  # the sweep in that step was cut short...
    assert at - started <= BUDGET  # ...and held the notification up by no more than its time bound


# -- item 17: the schedule follows a monotonic clock ----------------------------------------------------


def test_a_wall_clock_set_back_an_hour_still_polls_and_delivers(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock, settings=SETTINGS)
    watcher.step()
    clock.jump_wall(-3600)
    clock.advance(30)
    wes.states["r1"] = "COMPLETE"
    watcher.step()
    assert wes.status_calls == ["r1", "r1"]
    assert [p.message["text"] for p in poster.posts if p.thread_ts] == ["Run r1 ended COMPLETE (exit 0) <@U1>"]


@pytest.mark.parametrize("jump", [-3600.0, 3600.0])
def test_step_waits_by_the_monotonic_clock_whatever_the_wall_clock_does(store: WatchStore, clock: FakeClock,
                                                                         jump: float) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    settings = WatcherSettings(poll_seconds=30, lease_seconds=300, pace_seconds=1.0, post_concurrency=1)
    watcher = make(store, wes, poster, clock, settings=settings)
    watcher.step()  # polls, posts the card; the next tick is 30 s away
    clock.advance(10)
    clock.jump_wall(jump)
    assert watcher.step() == pytest.approx(20.0)
    assert wes.status_calls == ["r1"]


def test_channel_pacing_follows_the_monotonic_clock(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING", "r2": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1", "C1")
    subscribe(store, clock, "r2", "C1")
    watcher = make(store, wes, poster, clock, settings=SETTINGS)
    watcher.deliver()
    clock.jump_wall(-3600)
    clock.advance(1)
    watcher.deliver()
    assert [p.channel for p in poster.posts] == ["C1", "C1"]  # one a second, not one an hour and a second


def test_due_times_far_ahead_are_due_now_but_a_backoff_is_kept(store: WatchStore, clock: FakeClock) -> None:
    for run_id in ("set-back", "backing-off", "due"):
        subscribe(store, clock, run_id)
    now = clock.now()
    store.runs.record_states([("set-back", "RUNNING")], now=now, next_poll_at=now + 3600)
    store.runs.record_failure("backing-off", now=now, reason="503", next_poll_at=now + 500)
    assert {r.run_id for r in store.runs.due(now)} == {"due"}  # without a horizon: as before
    assert {r.run_id for r in store.runs.due(now, horizon=SETTINGS.longest_wait)} == {"due", "set-back"}
    assert SETTINGS.longest_wait == max(SETTINGS.poll_seconds, SETTINGS.backoff_cap) == 600


def test_a_notification_retried_before_the_wall_clock_went_back_is_still_sent(store: WatchStore,
                                                                               clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock, settings=SETTINGS)
    watcher.deliver()  # the card
    wes.states["r1"] = "COMPLETE"
    poster.script["C1"] = [PostResult(ok=False, error="Slack answered 503")]
    clock.advance(1)  # past the channel's pacing after the card
    watcher.step()  # the end is read; its notification fails once and is due again 2 s later, in wall time
    assert [p.method for p in poster.posts] == ["post", "failed"]
    clock.jump_wall(-3600)
    clock.advance(3)
    watcher.deliver()
    sent = [p.message["text"] for p in poster.posts if p.thread_ts and p.method == "post"]
    assert sent == ["Run r1 ended COMPLETE (exit 0) <@U1>"]


def test_a_cancel_follow_up_due_before_the_wall_clock_went_back_is_due_now(store: WatchStore,
                                                                          clock: FakeClock) -> None:
    cancels = CancelStore(store, wes_url="http://wes.test/")
    now = clock.now()
    assert cancels.claim(run_id="r1", user_id="U1", channel_id="C1", state_before="RUNNING", now=now,
                         deadline=now + 600, response_url=None) is None
    cancels.requested("r1", audit_id=1, now=now, message_ts=None, message_error=None)
    cancels.poll_later("r1", now + 5)
    set_back = now - 3600
    assert cancels.to_follow(set_back) == []  # without a horizon: as before
    assert [c.run_id for c in cancels.to_follow(set_back, horizon=SETTINGS.longest_wait)] == ["r1"]
