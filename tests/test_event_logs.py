"""The INFO lines an operator reads, in-process: one per command, notification, cancel and WES outage start
and end, each with its facts as record attributes (what a JSON formatter ships), and never a credential."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import cancelling
from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, make, subscribe
from wesbot.cancel import Cancelers
from wesbot.commands import parse
from wesbot.metrics import Metrics, use
from wesbot.slack.app import Deps, _Listeners, answer
from wesbot.slack.poster import classify
from wesbot.store.cancels import CancelStore
from wesbot.store.watch import WatchStore
from wesbot.wes.errors import WesUnreachable

SECRETS = ("hunter2", "s3cr3t", "HOOKSECRET")
FIELDS = ("user", "channel", "command", "server", "outcome", "ms", "kind", "run", "method", "error")


@pytest.fixture(autouse=True)
def fresh_metrics() -> Any:
    """Each test counts on its own registry, and the process's is put back after."""
    previous = use(Metrics())
    yield
    use(previous)


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="wesbot.events")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[logging.LogRecord]:
    """The event lines at ``level`` or above, checked for credentials on the way."""
    found = [r for r in caplog.records if r.name == "wesbot.events" and r.levelno >= level]
    for record in found:
        shown = record.getMessage() + " " + " ".join(str(getattr(record, f, "")) for f in FIELDS)
        assert not any(secret in shown for secret in SECRETS), shown
    return found


def fields(record: logging.LogRecord, *names: str) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_a_command_is_one_line_with_who_where_what_and_how_long(events: pytest.LogCaptureFixture) -> None:
    wes = StubWes(states={"r1": "RUNNING"})
    with ThreadPoolExecutor(1) as pool:
        answer(Deps.single(wes=wes, host="wes.test", pool=pool), parse("status r1"), Recorder(),  # type: ignore[arg-type]
               user_id="U1", channel_id="C1")
        down = StubWes(errors={"r2": WesUnreachable("WES at wes.test did not answer")})
        answer(Deps.single(wes=down, host="wes.test", pool=pool),  # type: ignore[arg-type]
               parse("status r2"), Recorder(), user_id="U1", channel_id="C1")
    ok, failed = lines(events)
    assert fields(ok, "user", "channel", "command", "server", "outcome") == {
        "user": "U1", "channel": "C1", "command": "status", "server": "wes.test", "outcome": "ok"}
    assert isinstance(ok.ms, int) and ok.ms >= 0 and ok.levelno == logging.INFO
    assert failed.outcome == "wes"
    assert ok.getMessage() == "/wes status answered"


def test_a_notification_sent_or_given_up_is_one_line(events: pytest.LogCaptureFixture, store: WatchStore,
                                                      poster: RecordingPoster, clock: FakeClock) -> None:
    watcher = make(store, StubWes(states={"r1": "RUNNING", "r2": "RUNNING"}), poster, clock)
    subscribe(store, clock, "r1", channel="C1")
    subscribe(store, clock, "r2", channel="C2")
    watcher.step()  # the cards
    watcher.subscriptions.wes.states.update(r1="COMPLETE", r2="EXECUTOR_ERROR")  # type: ignore[attr-defined]
    clock.advance(30)
    poster.script["C2"] = [classify(200, {}, {"ok": False, "error": "not_in_channel"})] * 2
    watcher.tick()
    clock.advance(3)
    watcher.deliver()
    by_run = {r.run: r for r in lines(events) if r.getMessage().startswith("notification ")}
    sent, given_up = by_run["r1"], by_run["r2"]
    assert fields(sent, "kind", "channel", "run", "outcome", "ms") == {
        "kind": "notification", "channel": "C1", "run": "r1", "outcome": "sent", "ms": 3000}
    assert fields(given_up, "kind", "channel", "outcome", "error") == {
        "kind": "notification", "channel": "C2", "outcome": "given_up", "error": "not_in_channel"}
    assert given_up.levelno == logging.WARNING


def test_a_cancel_is_one_line_without_the_response_url(events: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    cancels = CancelStore(WatchStore(tmp_path / "w.db"), "http://wes.test/ga4gh/wes/v1")
    wes = cancelling.StubWes()
    with ThreadPoolExecutor(1) as pool:
        deps = Deps.single(wes=wes, host="wes.test", pool=pool, cancels=cancels, cancelers=Cancelers(()))  # type: ignore[arg-type]
        body = {"user": {"id": "U7"}, "channel": {"id": "C7"},
                "response_url": "https://hooks.slack.com/actions/T1/1/HOOKSECRET"}
        _Listeners(deps).run_cancel(body, {"value": "cancel r9"}, Recorder())  # type: ignore[arg-type]
    assert wes.cancel_calls == ["r9"]
    [line] = [r for r in lines(events) if r.getMessage() == "cancel clicked"]
    assert fields(line, "user", "channel", "run", "outcome", "server") == {
        "user": "U7", "channel": "C7", "run": "r9", "outcome": "requested", "server": "wes.test"}


def test_an_outage_is_told_once_when_it_starts_and_once_when_it_ends(events: pytest.LogCaptureFixture,
                                                                     store: WatchStore, poster: RecordingPoster,
                                                                     clock: FakeClock) -> None:
    down = WesUnreachable("could not reach https://u:hunter2@wes.test/ga4gh/wes/v1/runs/r1/status?key=s3cr3t")
    wes = StubWes(states={"r1": "RUNNING", "r2": "RUNNING"}, errors={"r1": down, "r2": down})
    watcher = make(store, wes, poster, clock)
    subscribe(store, clock, "r1")
    subscribe(store, clock, "r2")
    for _ in range(3):
        watcher.tick()
        clock.advance(700)  # past any backoff: every run is due again
    wes.errors.clear()
    watcher.tick()
    watcher.tick()
    outages = [r for r in lines(events) if r.getMessage().startswith("WES server ")]
    assert [(r.outcome, r.levelno) for r in outages] == [("unreachable", logging.WARNING),
                                                         ("reachable", logging.INFO)]
    start, end = outages
    assert start.server == "wes.test"
    assert start.error == "could not reach https://wes.test/ga4gh/wes/v1/runs/r1/status"
    assert end.ms == 2100 * 1000


def test_one_run_failing_is_no_outage(events: pytest.LogCaptureFixture, store: WatchStore,
                                      poster: RecordingPoster, clock: FakeClock) -> None:
    wes = StubWes(states={"r1": "RUNNING", "r2": "RUNNING"}, errors={"r1": WesUnreachable("timeout")})
    watcher = make(store, wes, poster, clock)
    subscribe(store, clock, "r1")
    subscribe(store, clock, "r2")
    watcher.tick()
    assert not [r for r in lines(events) if r.getMessage().startswith("WES server ")]
