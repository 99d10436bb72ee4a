"""Where the server gives tasks, the card of a running run shows their progress: done / total, running, failed
(issue 11). Read from the task list every few minutes per run, a bounded number of runs a cycle, and the card is
updated only when the counts change."""

from __future__ import annotations

import json

import pytest

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes
from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, cycle, make, subscribe
from wesbot.outcome import TaskProgress, task_progress
from wesbot.slack.cards import progress_text
from wesbot.store.watch import WatchStore
from wesbot.wes.errors import WesUnreachable
from wesbot.wes.models import Log

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:10:00Z"


def done(name: str) -> Log:
    return Log(name=name, start_time=T0, end_time=T1, exit_code=0)


def failed(name: str) -> Log:
    return Log(name=name, start_time=T0, end_time=T1, exit_code=1)


def running(name: str) -> Log:
    return Log(name=name, start_time=T0, exit_code=-1)


def waiting(name: str) -> Log:
    return Log(name=name)


@pytest.mark.parametrize(("tasks", "more", "expected"), [
    ([], False, TaskProgress(total=0, done=0, running=0, failed=0)),
    ([done("a"), done("b")], False, TaskProgress(total=2, done=2, running=0, failed=0)),
    ([done("a"), running("b"), waiting("c")], False, TaskProgress(total=3, done=1, running=1, failed=0)),
    ([failed("a"), done("b"), running("c")], True, TaskProgress(total=3, done=1, running=1, failed=1, more=True)),
    # A real exit code without an end time: the process exited, it failed (outcome's one rule).
    ([Log(name="x", start_time=T0, exit_code=137)], False, TaskProgress(total=1, done=0, running=0, failed=1)),
])
def test_progress_counts_follow_the_one_definition_of_each_outcome(tasks: list[Log], more: bool,
                                                                   expected: TaskProgress) -> None:
    assert task_progress(tasks, more=more) == expected
    assert TaskProgress.from_json(expected.as_json()) == expected


@pytest.mark.parametrize(("progress", "text"), [
    (TaskProgress(total=40, done=12, running=3, failed=1), "12 of 40 done · 3 running · *1 failed*"),
    (TaskProgress(total=5, done=5, running=0, failed=0), "5 of 5 done"),
    (TaskProgress(total=500, done=0, running=100, failed=0, more=True), "0 of 500+ done · 100 running"),
    (TaskProgress(total=2000, done=1500, running=0, failed=0), "1,500 of 2,000 done"),
])
def test_progress_reads_at_a_glance(progress: TaskProgress, text: str) -> None:
    assert progress_text(progress) == text


@pytest.mark.parametrize("stored", [None, "", "not json", "[1, 2]", '{"total": 1}', "[1, 2, 3, 4, \"x\"]"])
def test_anything_stored_that_is_not_progress_reads_as_none(stored: str | None) -> None:
    assert TaskProgress.from_json(stored) is None


def card_text(poster: RecordingPoster) -> str:
    cards = [p for p in poster.posts if p.method == "update" or (p.method == "post" and p.thread_ts is None)]
    return str(cards[-1].message["blocks"][0]["text"]["text"])


def card_posts(poster: RecordingPoster) -> int:
    return sum(p.method == "update" or (p.method == "post" and p.thread_ts is None) for p in poster.posts)


def test_the_card_of_a_running_run_shows_its_tasks_and_follows_them(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}, tasks={"r1": [done("a"), running("b"), waiting("c")]}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    cycle(watcher, clock)
    assert "*Tasks:* 1 of 3 done · 1 running" in card_text(poster)
    # Read again only every five minutes, and the card moves only when the counts do.
    assert len(wes.task_calls) == 1
    for _ in range(8):  # up to 4m 30s after the first read
        cycle(watcher, clock)
    assert len(wes.task_calls) == 1
    wes.tasks["r1"] = [done("a"), failed("b"), running("c")]
    cycle(watcher, clock)  # five minutes on: read, and the card updated in the same step
    assert len(wes.task_calls) == 2
    assert "*Tasks:* 1 of 3 done · 1 running · *1 failed*" in card_text(poster)
    posts = card_posts(poster)
    for _ in range(20):  # ten minutes more, the same tasks: read twice, the card left alone
        cycle(watcher, clock)
    assert card_posts(poster) == posts and len(wes.task_calls) == 4


def test_a_queued_run_costs_no_task_read_and_a_server_without_tasks_shows_none(store: WatchStore,
                                                                                clock: FakeClock) -> None:
    wes, poster = StubWes({"q": "QUEUED", "r": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "q", state="QUEUED")
    subscribe(store, clock, "r", channel="C2")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    cycle(watcher, clock)
    assert wes.task_calls == ["r"]
    assert all("Tasks:" not in p.message["blocks"][0]["text"]["text"] for p in poster.posts)


def test_a_failing_task_read_keeps_the_last_counts_and_nothing_breaks(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}, tasks={"r1": [done("a"), running("b")]}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    cycle(watcher, clock)
    wes.errors["r1"] = WesUnreachable("no answer")
    wes.states["r1"] = "RUNNING"
    clock.advance(600)
    cycle(watcher, clock)
    # The status read failed too: the card says the server cannot be reached, not the stale counts as current.
    assert "Cannot reach the WES server" in card_text(poster) and "Tasks:" not in card_text(poster)
    del wes.errors["r1"]
    for _ in range(2):
        cycle(watcher, clock)
    assert "*Tasks:* 1 of 2 done · 1 running" in card_text(poster)


def test_many_running_runs_are_read_a_bounded_number_a_cycle(store: WatchStore, clock: FakeClock) -> None:
    wes = StubWes({f"r{i}": "RUNNING" for i in range(50)}, tasks={f"r{i}": [running("a")] for i in range(50)})
    for i in range(50):
        subscribe(store, clock, f"r{i}", channel=f"C{i}")
    watcher = make(store, wes, RecordingPoster(), clock)
    cycle(watcher, clock)
    assert len(wes.task_calls) == 20
    cycle(watcher, clock)
    cycle(watcher, clock)
    assert sorted(set(wes.task_calls)) == sorted(wes.states)  # every run read once, none twice
    assert len(wes.task_calls) == 50


def test_a_long_task_list_is_read_a_few_pages_and_shown_as_at_least(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}, tasks={"r1": [done(f"t{i}") for i in range(1200)]}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    cycle(watcher, clock)
    assert "*Tasks:* 500 of 500+ done" in card_text(poster)
    assert len(wes.task_calls) == 5


def test_end_to_end_the_card_shows_the_tasks_the_wes_server_lists(wes: FakeWes, slack: FakeSlack,
                                                                  workdir: str) -> None:
    wes.add_run("w1", "RUNNING", task_logs=[
        {"id": "t1", "name": "fetch", "start_time": T0, "end_time": T1, "exit_code": 0},
        {"id": "t2", "name": "align", "start_time": T1, "exit_code": -1},
        {"id": "t3", "name": "call"}])
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3"})
    bot.wait_http_ready()
    try:
        assert "Watching run `w1`" in slash(bot, slack, "subscribe w1")["text"]
        def shown() -> bool:
            return any("*Tasks:* 1 of 3 done · 1 running" in json.dumps(c["args"].get("blocks"), ensure_ascii=False)
                       for c in slack.calls_to("chat.postMessage") + slack.calls_to("chat.update"))

        slack.wait_for(lambda: shown() or None, timeout=10, what="the card with the task progress")
    finally:
        assert bot.stop() == 0
