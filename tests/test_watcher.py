"""The watcher's cycle against a fake clock, a stub WES and a recording Slack poster: no sockets, no sleeps.
Delivery on its own (retries, pacing, crash recovery, with no polling) is tested in test_delivery.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.watching import (
    DAY,
    FakeClock,
    RecordingPoster,
    StubWes,
    cycle,
    make,
    subscribe,
)
from wesbot.store.watch import WatchStore
from wesbot.wes.errors import NotFound, WesAuthError, WesUnreachable
from wesbot.wes.models import Log


def test_run_that_ends_gets_exactly_one_notification_in_the_cards_thread(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "QUEUED"}), RecordingPoster()
    subscribe(store, clock, "r1", user="U1")
    subscribe(store, clock, "r1", user="U2")  # a second user: added to the mentions, not a second card
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    [card] = [p for p in poster.posts if p.method == "post"]
    assert "<@U1> <@U2>" in str(card.message)
    wes.states["r1"] = "RUNNING"
    cycle(watcher, clock)
    assert [p.method for p in poster.posts] == ["post", "update"]  # the card moved in place
    assert "*RUNNING*" in str(poster.posts[-1].message)
    wes.states["r1"] = "COMPLETE"
    for _ in range(5):
        cycle(watcher, clock)
    posts = [p for p in poster.posts if p.method == "post"]
    assert len(posts) == 2
    note = posts[1]
    assert note.thread_ts == card.ts and note.broadcast is True
    text = str(note.message)
    assert "ended *COMPLETE (exit 0)*" in text and "after 3m 2s" in text and "<@U1> <@U2>" in text
    assert "s3://bucket/out.txt" in text
    updates = [p for p in poster.posts if p.method == "update"]
    assert updates[-1].ts == card.ts and "No longer watched" in str(updates[-1].message)  # the card says it ended


def test_each_run_is_read_once_per_cycle_however_many_watch_it(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING", "r2": "RUNNING"}), RecordingPoster()
    for channel in ("C1", "C2", "C3"):
        for user in ("U1", "U2"):
            subscribe(store, clock, "r1", channel, user)
    subscribe(store, clock, "r2", "C1")
    watcher = make(store, wes, poster, clock)
    stats = watcher.tick()
    assert sorted(wes.status_calls) == ["r1", "r2"] and stats.polled == 2
    assert watcher.tick().polled == 0  # not due again until poll_seconds have passed
    clock.advance(30)
    watcher.tick()
    assert sorted(wes.status_calls) == ["r1", "r1", "r2", "r2"]


def test_failure_lists_failed_tasks_and_flags_them(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    wes.tasks["r1"] = [Log(name="align", exit_code=3, stderr="https://logs.test/align.err"),
                       Log(name="<!channel>", exit_code=0)]
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    wes.states["r1"] = "EXECUTOR_ERROR"
    cycle(watcher, clock)
    cycle(watcher, clock)
    [note_post] = [p for p in poster.posts if p.thread_ts]
    note = str(note_post.message)
    assert ":x:" in note and "EXECUTOR_ERROR (exit 1)" in note and "`align` exit 3" in note
    assert "<https://logs.test/align.err|stderr>" in note and "<!channel>" not in note


def test_restart_after_the_transition_was_recorded_sends_it_once(store: WatchStore, clock: FakeClock,
                                                                 tmp_path: Path) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    first = make(store, wes, poster, clock)
    cycle(first, clock)
    wes.states["r1"] = "COMPLETE"
    first.tick()  # the transition and its notification are stored... and then the process dies
    store.close()
    again = WatchStore(tmp_path / "w.db")
    second = make(again, wes, poster, clock, owner="second")
    clock.advance(31)  # the dead process's lease runs out
    for _ in range(4):
        cycle(second, clock)
    assert len([p for p in poster.posts if p.method == "post" and p.thread_ts]) == 1


def test_a_notification_can_never_be_queued_twice(store: WatchStore, clock: FakeClock) -> None:
    subscribe(store, clock, "r1")
    def owed() -> dict[int, dict[str, object]]:
        return {sub.id: {"text": "done"} for sub in store.subscriptions.of_run("r1")}

    first = store.runs.record_terminal("r1", state="COMPLETE", now=1, exit_code=0, start_time=None, end_time=None,
                                       owed=owed())
    subscribe(store, clock, "r1", user="U9")  # even if someone subscribes again and it "ends" again
    second = store.runs.record_terminal("r1", state="COMPLETE", now=2, exit_code=0, start_time=None, end_time=None,
                                        owed=owed())
    assert len(first) == 1 and second == []


def test_wes_outage_backs_off_keeps_the_subscription_and_reports_once(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock, 1)
    wes.errors["r1"] = WesUnreachable("WES server at wes.test did not answer within 10 s")
    calls_before = len(wes.status_calls)
    for _ in range(240):  # two hours, a step every 30 s
        cycle(watcher, clock, 30)
    polls = len(wes.status_calls) - calls_before
    assert 5 <= polls <= 30  # backed off (capped at 10 minutes), not 240 reads
    notes = [p for p in poster.posts if "has not been able to read run" in str(p.message)]
    assert len(notes) == 1 and "did not answer within 10 s" in str(notes[0].message)
    assert store.subscriptions.of_run("r1")[0].status == "active"
    del wes.errors["r1"]
    wes.states["r1"] = "COMPLETE"
    for _ in range(25):
        cycle(watcher, clock, 30)
    assert any("ended *COMPLETE" in str(p.message) for p in poster.posts)


def test_lost_access_is_reported_once_per_channel(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING", "r2": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1", "C1")
    subscribe(store, clock, "r2", "C1")
    subscribe(store, clock, "r2", "C2")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock, 1)
    for run in ("r1", "r2"):
        wes.errors[run] = WesAuthError("WES rejected the credentials (401): check WES_AUTH", status_code=401)
    for _ in range(60):
        cycle(watcher, clock, 30)
    lost = [p.channel for p in poster.posts if "lost access" in str(p.message)]
    assert sorted(lost) == ["C1", "C2"]
    assert all(s.status == "active" for s in store.subscriptions.of_run("r2"))


def test_a_run_that_is_gone_ends_the_subscription_with_a_note(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"r1": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "r1")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock, 1)
    wes.errors["r1"] = NotFound("run r1 not found on the WES server at wes.test")
    for _ in range(3):
        cycle(watcher, clock, 30)
    assert any("no longer on the WES server" in str(p.message) and "<@U1>" in str(p.message) for p in poster.posts)
    assert store.subscriptions.of_run("r1", active_only=False)[0].status == "gone"


def test_subscriptions_expire_with_a_note(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({"ghost": "RUNNING"}), RecordingPoster()
    subscribe(store, clock, "ghost")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock, 1)
    clock.advance(14 * DAY)
    cycle(watcher, clock, 1)
    cycle(watcher, clock, 1)
    assert any("stopped watching run `ghost` after 14 days" in str(p.message) for p in poster.posts)
    assert store.subscriptions.of_run("ghost", active_only=False)[0].status == "expired"
    calls = len(wes.status_calls)
    cycle(watcher, clock, 60)
    assert len(wes.status_calls) == calls  # no longer polled


def test_only_the_lease_holder_posts_and_a_second_takes_over(store: WatchStore, clock: FakeClock,
                                                             tmp_path: Path) -> None:
    wes, poster_a, poster_b = StubWes({"r1": "RUNNING"}), RecordingPoster(), RecordingPoster()
    subscribe(store, clock, "r1")
    a = make(store, wes, poster_a, clock, owner="a")
    b = make(WatchStore(tmp_path / "w.db"), wes, poster_b, clock, owner="b")
    for _ in range(3):
        a.step()
        b.step()
        clock.advance(5)
    assert poster_a.posts and not poster_b.posts
    wes.states["r1"] = "COMPLETE"
    clock.advance(31)  # a died: its lease runs out
    for _ in range(4):
        b.step()
        clock.advance(31)
    assert len([p for p in poster_b.posts if p.thread_ts]) == 1
    assert not [p for p in poster_a.posts if p.thread_ts]


def test_many_runs_are_read_from_the_run_list_and_only_ended_ones_get_a_status_call(store: WatchStore,
                                                                                   clock: FakeClock) -> None:
    wes, poster = StubWes({f"r{i:03d}": "RUNNING" for i in range(300)}), RecordingPoster()
    for run_id in wes.states:
        subscribe(store, clock, run_id, f"C{run_id[-1]}")
    watcher = make(store, wes, poster, clock)
    stats = watcher.tick()
    assert stats.swept == 300 and wes.status_calls == [] and stats.sweep_requests == 3
    for i in range(0, 300, 10):
        wes.states[f"r{i:03d}"] = "COMPLETE"
    clock.advance(30)
    stats = watcher.tick()
    # The list showed 30 ended: GET /runs/{id} confirms each and gives its details in one request.
    assert stats.swept == 270 and wes.status_calls == [] and sorted(wes.run_calls) == sorted(
        f"r{i:03d}" for i in range(0, 300, 10))
    assert stats.ended == 30 and stats.wes_requests == 3 + 30


def test_an_unstable_list_order_never_causes_a_duplicate_or_a_missed_end(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = StubWes({f"r{i:03d}": "RUNNING" for i in range(200)}), RecordingPoster()
    wes.shuffle_seed = 7  # each page request sees a differently ordered list: runs are skipped and repeated
    for run_id in wes.states:
        subscribe(store, clock, run_id, f"C{int(run_id[1:]) % 50}")
    watcher = make(store, wes, poster, clock)
    ended = {f"r{i:03d}" for i in range(0, 200, 4)}
    for _ in range(3):
        watcher.step()
        clock.advance(30)
    for run_id in ended:
        wes.states[run_id] = "EXECUTOR_ERROR"
    for _ in range(12):
        watcher.step()
        clock.advance(30)
    notes = [p for p in poster.posts if p.method == "post" and " ended " in p.message["text"]]
    assert sorted(p.message["text"].split()[1] for p in notes) == sorted(ended)


def test_a_list_without_states_falls_back_to_status_calls(store: WatchStore, clock: FakeClock,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    wes, poster = StubWes({f"r{i:03d}": "RUNNING" for i in range(60)}), RecordingPoster()
    wes.list_without_states = True
    for run_id in wes.states:
        subscribe(store, clock, run_id)
    watcher = make(store, wes, poster, clock)
    with caplog.at_level("INFO", logger="wesbot.watcher"):
        stats = watcher.tick()
        clock.advance(30)
        watcher.tick()
    assert stats.swept == 0 and len(wes.status_calls) == 120
    assert sum("without their state" in r.getMessage() for r in caplog.records) == 1  # said once


def test_a_subscription_made_while_an_end_was_being_written_is_told_on_the_next_poll(
        store: WatchStore, clock: FakeClock, poster: RecordingPoster) -> None:
    wes = StubWes({"r1": "COMPLETE"})
    subscribe(store, clock, "r1", "C1")
    owed = {sub.id: {"text": "r1 ended"} for sub in store.subscriptions.of_run("r1")}  # rendered first...
    subscribe(store, clock, "r1", "C2")  # ...someone subscribes in another channel meanwhile...
    store.runs.record_terminal("r1", state="COMPLETE", now=clock.now(), exit_code=0, start_time=None, end_time=None,
                               owed=owed)  # ...and the end is written with what was rendered
    assert [s.channel_id for s in store.subscriptions.of_run("r1")] == ["C2"]  # not ended unannounced
    watcher = make(store, wes, poster, clock)
    for _ in range(3):
        cycle(watcher, clock)
    told = sorted(p.channel for p in poster.posts if p.method == "post" and "ended" in p.message["text"])
    assert told == ["C1", "C2"] and store.subscriptions.of_run("r1") == []


def test_build_watcher_turns_the_configuration_into_a_watcher_with_every_job(store: WatchStore,
                                                                             poster: RecordingPoster) -> None:
    from wesbot.config import Settings
    from wesbot.watcher import build_watcher

    settings = Settings(wes_url="http://wes.test/ga4gh/wes/v1", poll_seconds=7, poll_concurrency=3,
                        subscription_days=2, lease_seconds=11, digest_after=4)
    watcher = build_watcher(settings, store, StubWes(), poster)  # type: ignore[arg-type]
    assert watcher.watches is not None and watcher.cancels is not None and watcher.sweeper is not None
    assert (watcher.settings.poll_seconds, watcher.settings.concurrency, watcher.settings.subscription_days,
            watcher.settings.lease_seconds, watcher.settings.digest_after) == (7, 3, 2, 11, 4)
    assert watcher.follower is not None and watcher.cancels.wes_url == settings.wes_url
