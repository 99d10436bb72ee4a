"""The watcher's rules end to end (issue 9): the real WES client against the loopback fake WES, an in-process
watcher on a fake clock, a store on a file and a recording poster. Each case is one the watcher got wrong
before it was split into jobs on one domain rule ("failed", in wesbot.outcome)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.fake_wes import FakeWes, make_task
from tests.fakes.watching import SETTINGS, FakeClock, Post, RecordingPoster, subscribe
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore
from wesbot.watcher import Watcher
from wesbot.watcher.details import Details
from wesbot.wes.client import WesClient

ENDED_AT = "2024-01-01T00:05:00Z"


@pytest.fixture
def client(wes: FakeWes) -> Iterator[WesClient]:
    with WesClient(wes.url, retries=0) as real:
        yield real


def watcher_on(client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock) -> Watcher:
    return Watcher(store, client, poster, host=client.host, settings=SETTINGS, clock=clock,
                   watches=WatchesStore(store))


def watch(store: WatchStore, clock: FakeClock, kind: str = "failed", channel: str = "C9") -> None:
    WatchesStore(store).add(channel_id=channel, kind=kind, tag_key="", tag_value="", user_id="U1", now=clock.now())


def steps(watcher: Watcher, clock: FakeClock, n: int = 1, seconds: float = 30.0) -> None:
    """``n`` turns of the loop, ``seconds`` apart."""
    for _ in range(n):
        watcher.step()
        clock.advance(seconds)


def ends(poster: RecordingPoster, channel: str | None = None) -> list[Post]:
    """The end notifications posted ("Run X ended STATE"), in ``channel`` if given."""
    return [p for p in poster.posts if p.method == "post" and re.match(r"Run \S+ ended ", p.message.get("text", ""))
            and channel in (None, p.channel)]


def announced(poster: RecordingPoster) -> list[tuple[str, str]]:
    """(channel, run id) of each end notification."""
    return [(p.channel, p.message["text"].split()[1]) for p in ends(poster)]


def failed_tasks_section(post: Post) -> str:
    """The text of the notification's "Failed tasks" section ("" when it has none)."""
    return "\n".join(block["text"]["text"] for block in post.message["blocks"]
                     if block.get("type") == "section" and "*Failed tasks:*" in block["text"]["text"])


def task_names(section: str) -> list[str]:
    """The tasks a "Failed tasks" section lists, in order ("• `align` exit 1 — …")."""
    return re.findall(r"^• `([^`]+)` exit ", section, flags=re.MULTILINE)


def test_a_watch_on_a_server_with_no_runs_announces_the_first_run_that_appears_already_ended(
        wes: FakeWes, client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock) -> None:
    watch(store, clock)
    watcher = watcher_on(client, store, poster, clock)
    steps(watcher, clock, 2)  # two whole reads of an empty list: the watch is active
    assert poster.posts == []
    wes.add_run("first", "EXECUTOR_ERROR", end_time=ENDED_AT)
    steps(watcher, clock)
    assert announced(poster) == [("C9", "first")]
    steps(watcher, clock, 4)
    assert announced(poster) == [("C9", "first")]  # and never again


def test_a_watch_started_on_an_empty_server_announces_a_run_added_between_its_first_two_sweeps(
        wes: FakeWes, client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock) -> None:
    watch(store, clock)
    watcher = watcher_on(client, store, poster, clock)
    steps(watcher, clock)  # the first sweep: an empty list, read to its end
    wes.add_run("first", "EXECUTOR_ERROR", end_time=ENDED_AT)
    steps(watcher, clock, 4)
    assert announced(poster) == [("C9", "first")]


@pytest.mark.parametrize("tasks_from", ["inline task_logs", "the tasks endpoint"])
def test_a_preempted_run_whose_task_failed_names_the_task(
        wes: FakeWes, client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock,
        tasks_from: str) -> None:
    wes.inline_task_logs = tasks_from == "inline task_logs"
    wes.add_run("pre", "RUNNING", task_logs=[make_task("t1", name="align", exit_code=1, end_time=ENDED_AT),
                                              make_task("t2", name="index", exit_code=0, end_time=ENDED_AT)])
    subscribe(store, clock, "pre", channel="C1")
    watcher = watcher_on(client, store, poster, clock)
    steps(watcher, clock, 2)
    assert ends(poster) == []
    wes.set_state("pre", "PREEMPTED", end_time=ENDED_AT)
    steps(watcher, clock, 2)
    (post,) = ends(poster)
    assert post.message["text"].startswith("Run pre ended PREEMPTED")
    assert task_names(failed_tasks_section(post)) == ["align"]


@pytest.mark.parametrize(("exit_code", "heard"), [(1, True), (3, True), (0, False)],
                         ids=["COMPLETE exit 1", "COMPLETE exit 3", "COMPLETE exit 0"])
def test_a_complete_run_with_a_nonzero_exit_code_reaches_a_watch_failed_channel(
        wes: FakeWes, client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock,
        exit_code: int, heard: bool) -> None:
    wes.add_run("arv", "RUNNING")
    watch(store, clock, "failed", "C9")
    watch(store, clock, "finished", "C8")
    watcher = watcher_on(client, store, poster, clock)
    steps(watcher, clock, 2)
    wes.set_state("arv", "COMPLETE", exit_code=exit_code, end_time=ENDED_AT)
    steps(watcher, clock, 3)
    assert sorted(announced(poster)) == ([("C8", "arv"), ("C9", "arv")] if heard else [("C8", "arv")])
    for post in ends(poster):
        assert post.message["text"].startswith(f"Run arv ended COMPLETE (exit {exit_code})")


def test_a_bug_while_polling_a_run_is_logged_never_told_as_unreadable_and_the_end_still_notified(
        wes: FakeWes, client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    wes.add_run("buggy", "EXECUTOR_ERROR", end_time=ENDED_AT)
    wes.add_run("fine", "RUNNING")
    subscribe(store, clock, "buggy", channel="C1")
    subscribe(store, clock, "fine", channel="C1")
    outcome = Details.outcome
    bitten: list[float] = []

    def broken(self: Details, run_id: str, *args: Any, **kwargs: Any) -> Any:
        if run_id == "buggy":
            bitten.append(clock.now())
            raise RuntimeError("a bug in wesbot")
        return outcome(self, run_id, *args, **kwargs)

    monkeypatch.setattr(Details, "outcome", broken)
    watcher = watcher_on(client, store, poster, clock)
    with caplog.at_level(logging.INFO, logger="wesbot"):
        steps(watcher, clock, 2)
        wes.set_state("fine", "COMPLETE", exit_code=0, end_time=ENDED_AT)
        steps(watcher, clock, 60)  # 30 minutes of the bug: well over unreadable_after
    assert bitten[-1] - bitten[0] > SETTINGS.unreadable_after  # polled again and again, failing all along
    bugs = [r for r in caplog.records if r.levelno == logging.ERROR and "buggy" in r.getMessage()]
    assert len(bugs) == len(bitten)  # each one logged at ERROR
    assert all(re.match(r"error [0-9a-f]{8}\b", r.getMessage()) for r in bugs)
    assert all(r.exc_info is not None and r.exc_info[0] is RuntimeError for r in bugs)  # with its traceback
    assert "has not been able to read run" not in json.dumps([p.message for p in poster.posts])
    assert announced(poster) == [("C1", "fine")]  # the other run is polled and told as usual

    monkeypatch.setattr(Details, "outcome", outcome)
    steps(watcher, clock, 25)  # the bug's backoff reaches its cap (600 s): it is polled again within that
    assert announced(poster) == [("C1", "fine"), ("C1", "buggy")]
    (end,) = ends(poster, "C1")[1:]
    assert end.message["text"].startswith("Run buggy ended EXECUTOR_ERROR")
    assert "has not been able to read run" not in json.dumps([p.message for p in poster.posts])


def test_a_bug_while_reading_the_details_of_a_watched_end_still_announces_it_once(
        wes: FakeWes, client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    wes.add_run("buggy", "RUNNING")
    watch(store, clock, "failed", "C9")
    watcher = watcher_on(client, store, poster, clock)
    steps(watcher, clock, 2)
    outcome = Details.outcome

    def broken(self: Details, run_id: str, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in wesbot")

    monkeypatch.setattr(Details, "outcome", broken)
    wes.set_state("buggy", "EXECUTOR_ERROR", exit_code=1, end_time=ENDED_AT)
    steps(watcher, clock, 3)
    assert announced(poster) == [("C9", "buggy")]  # told without the details it could not read
    monkeypatch.setattr(Details, "outcome", outcome)
    steps(watcher, clock, 3)
    assert announced(poster) == [("C9", "buggy")]  # and only once


def test_tasks_that_said_exit_minus_one_while_running_are_not_listed_as_failed(
        wes: FakeWes, client: WesClient, store: WatchStore, poster: RecordingPoster, clock: FakeClock) -> None:
    run = wes.add_run("r", "RUNNING", task_logs=[make_task("t1", name="align", exit_code=-1),
                                                 make_task("t2", name="index", exit_code=-1),
                                                 make_task("t3", name="report", exit_code=None, start_time=None)])
    subscribe(store, clock, "r", channel="C1")
    watch(store, clock, "failed", "C9")
    watcher = watcher_on(client, store, poster, clock)
    steps(watcher, clock, 3)
    assert ends(poster) == []  # -1 while running is no failure, and no end
    run["task_logs"] = [make_task("t1", name="align", exit_code=0, end_time=ENDED_AT),
                        make_task("t2", name="index", exit_code=2, end_time=ENDED_AT),
                        make_task("t3", name="report", exit_code=None, start_time=None)]
    wes.set_state("r", "EXECUTOR_ERROR", exit_code=2, end_time=ENDED_AT)
    steps(watcher, clock, 3)
    assert sorted(announced(poster)) == [("C1", "r"), ("C9", "r")]
    for post in ends(poster):
        assert task_names(failed_tasks_section(post)) == ["index"], post.channel
        assert "exit 2" in failed_tasks_section(post)
