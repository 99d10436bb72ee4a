"""Alerts before it is too late (issue 13): `/wes watch long DURATION`, `/wes watch queued DURATION` and
`/wes subscribe RUN_ID --deadline DURATION` tell the channel once about a run that is taking too long, from the
states the watcher already reads, exactly once per run and watch, across restarts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes
from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, make
from wesbot.commands import UsageError, parse, parse_duration
from wesbot.format import duration_text
from wesbot.store.watch import WatchStore
from wesbot.store.watches import ChannelWatch, WatchesStore
from wesbot.watcher import Watcher, WatcherSettings
from wesbot.watcher.deadlines import find_late
from wesbot.wes.models import RunState, RunSummary
from wesbot.wes.models import RunState as S

SETTINGS = WatcherSettings(poll_seconds=30, digest_after=5, post_concurrency=1)
HOUR = 3600.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- durations ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "seconds"), [
    ("90s", 90), ("45m", 2700), ("6h", 21600), ("2d", 172800), ("1h30m", 5400), ("1d2h3m4s", 93784), ("6H", 21600),
])
def test_durations_are_read_in_the_forms_people_type(word: str, seconds: float) -> None:
    assert parse_duration(word, "usage") == seconds
    assert parse_duration(duration_text(seconds), "usage") == seconds  # what buttons write reads back


@pytest.mark.parametrize(("word", "says"), [
    ("", "a duration is missing"), ("6", "not a duration"), ("6x", "not a duration"), ("h", "not a duration"),
    ("30m1h", "not a duration"), ("-5m", "not a duration"), ("1.5h", "not a duration"), ("5s", "too short"),
    ("91d", "too long"), ("9999999s", "too long"),
])
def test_anything_else_is_refused_with_the_accepted_forms(word: str, says: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_duration(word, "usage")
    assert says in refused.value.message
    if "not a duration" in says or "missing" in says:
        assert "`90s`, `45m`, `6h`, `2d` or `1h30m`" in refused.value.message


@pytest.mark.parametrize(("text", "kind", "after", "tag"), [
    ("watch long 6h", "long", 21600, None),
    ("watch long 6h tag project=rnaseq", "long", 21600, ("project", "rnaseq")),
    ("watch tag project=rnaseq queued 30m", "queued", 1800, ("project", "rnaseq")),
    ("unwatch long", "long", None, None),
    ("unwatch tag project=x queued", "queued", None, ("project", "x")),
    ("watch failed", "failed", None, None),
])
def test_deadline_watches_take_a_duration(text: str, kind: str, after: float | None,
                                         tag: tuple[str, str] | None) -> None:
    command = parse(text)
    assert (command.watch_kind, command.after, command.tag) == (kind, after, tag)
    again = parse(command.text())
    assert (again.watch_kind, again.after, again.tag) == (kind, after, tag)


@pytest.mark.parametrize(("text", "says"), [
    ("watch long", "a duration is missing"), ("watch long soon", "not a duration"),
    ("watch queued 30m extra", "unexpected"), ("status r1 --deadline 2h", "--deadline goes with subscribe"),
    ("subscribe r1 --deadline", "a duration is missing"), ("watch failed 6h", "unexpected"),
])
def test_deadline_mistakes_are_refused(text: str, says: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(text)
    assert says in refused.value.message


def test_subscribe_takes_a_deadline_that_a_button_writes_back() -> None:
    command = parse("subscribe r1 --deadline 1h30m")
    assert (command.name, command.run_id, command.after) == ("subscribe", "r1", 5400)
    assert parse(command.text()).after == 5400


# -- which runs are late (pure) -------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def a_watch(kind: str, after: float, watch_id: int = 1, tag: tuple[str, str] = ("", "")) -> ChannelWatch:
    return ChannelWatch(id=watch_id, channel_id="C1", kind=kind, tag_key=tag[0], tag_value=tag[1], created_by="U1",
                        created_at=0, active_from=0, after=after)


def listed(run_id: str, state: RunState, start: float | None = None, tags: dict[str, str] | None = None) -> RunSummary:
    return RunSummary(run_id=run_id, state=state, start_time=iso(start) if start is not None else None,
                      tags=tags or {})


@pytest.mark.parametrize(("why", "watch", "run", "first_seen", "told", "late"), [
    ("running past the deadline since its start", a_watch("long", HOUR), listed("r", S.RUNNING, NOW - 2 * HOUR),
     NOW, set(), True),
    ("not yet", a_watch("long", HOUR), listed("r", S.RUNNING, NOW - 0.5 * HOUR), NOW - 5 * HOUR, set(), False),
    ("no start time: counted from when wesbot first saw it", a_watch("long", HOUR), listed("r", S.QUEUED),
     NOW - 2 * HOUR, set(), True),
    ("ended runs are never late", a_watch("long", HOUR), listed("r", S.COMPLETE, NOW - 9 * HOUR), NOW, set(), False),
    ("told already", a_watch("long", HOUR), listed("r", S.RUNNING, NOW - 2 * HOUR), NOW, {(1, "r")}, False),
    ("told by another watch only", a_watch("long", HOUR), listed("r", S.RUNNING, NOW - 2 * HOUR), NOW, {(2, "r")},
     True),
    ("queued too long", a_watch("queued", 1800), listed("r", S.QUEUED), NOW - 3600, set(), True),
    ("initializing counts as waiting", a_watch("queued", 1800), listed("r", S.INITIALIZING), NOW - 3600, set(), True),
    ("running is not waiting", a_watch("queued", 1800), listed("r", S.RUNNING), NOW - 3600, set(), False),
    ("another tag", a_watch("long", HOUR, tag=("p", "x")), listed("r", S.RUNNING, NOW - 2 * HOUR, {"p": "y"}), NOW,
     set(), False),
    ("its tag", a_watch("long", HOUR, tag=("p", "x")), listed("r", S.RUNNING, NOW - 2 * HOUR, {"p": "x"}), NOW,
     set(), True),
])
def test_a_run_is_late_once_its_state_has_lasted_the_watchs_duration(
        why: str, watch: ChannelWatch, run: RunSummary, first_seen: float, told: set[tuple[int, str]],
        late: bool) -> None:
    found = find_late([watch], {run.run_id: run}, {run.run_id: run.state}, {run.run_id: first_seen}, told, NOW)
    assert bool(found) == late, why
    if late:
        assert found[0].age >= watch.after  # type: ignore[operator]


# -- the watcher: once per run and watch, restarts included ----------------------------------------------------

def watcher_for(store: WatchStore, wes: StubWes, poster: RecordingPoster, clock: FakeClock) -> Watcher:
    return make(store, wes, poster, clock, settings=SETTINGS, watches=WatchesStore(store))


def set_watch(store: WatchStore, clock: FakeClock, kind: str, after: float, channel: str = "C1") -> None:
    WatchesStore(store).add(channel_id=channel, kind=kind, tag_key="", tag_value="", user_id="U1", now=clock.now(),
                            after=after)


def run_for(watcher: Watcher, clock: FakeClock, seconds: float) -> None:
    for _ in range(int(seconds // 30)):
        watcher.step()
        clock.advance(30)


def alerts(poster: RecordingPoster) -> list[str]:
    return [p.message["text"] for p in poster.posts if p.method == "post" and ":alarm_clock:" in json.dumps(
        p.message["blocks"])]


def test_a_long_watch_tells_once_about_a_run_that_passes_its_duration(store: WatchStore, clock: FakeClock) -> None:
    wes = StubWes({"r1": "RUNNING", "r2": "RUNNING"}, start_times={"r1": iso(clock.now() - 50 * 60),
                                                                   "r2": iso(clock.now())},
                  tasks={"r1": []})
    poster = RecordingPoster()
    set_watch(store, clock, "long", HOUR)
    watcher = watcher_for(store, wes, poster, clock)
    run_for(watcher, clock, 9 * 60)
    assert alerts(poster) == []
    run_for(watcher, clock, 2 * 60)  # r1 passes one hour
    [alert] = alerts(poster)
    assert alert.startswith("Run r1 has been active (*RUNNING*) for 1h")
    message = next(p.message for p in poster.posts if p.message["text"] == alert)
    values = [e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert values == ["details r1", "tasks r1", "cancel r1", "subscribe r1"]
    assert "still active 1h after it started" in json.dumps(message["blocks"])
    # A restart (a new watcher on the same database), an hour more, the run ending: never told again, and a long
    # watch says nothing of ends.
    again = watcher_for(store, wes, poster, clock)
    run_for(again, clock, HOUR)
    assert [a.split()[1] for a in alerts(poster)] == ["r1", "r2"]
    wes.states.update({"r1": "EXECUTOR_ERROR", "r2": "COMPLETE"})
    run_for(again, clock, 5 * 60)
    assert len(poster.posts) == 2


def test_runs_already_late_when_the_watch_is_set_come_in_one_digest(store: WatchStore, clock: FakeClock) -> None:
    start = iso(clock.now() - 5 * HOUR)
    wes = StubWes({f"r{i}": "RUNNING" for i in range(3)} | {"q": "QUEUED"},
                  start_times={f"r{i}": start for i in range(3)})
    poster = RecordingPoster()
    set_watch(store, clock, "long", HOUR)
    run_for(watcher_for(store, wes, poster, clock), clock, 3 * 60)
    [digest] = [p.message for p in poster.posts]
    assert digest["text"] == "3 runs active longer than 1h"
    assert "already past it when this watch was set" in json.dumps(digest["blocks"])


def test_a_watch_removed_and_set_again_starts_over(store: WatchStore, clock: FakeClock) -> None:
    start = iso(clock.now() - 5 * HOUR)
    wes = StubWes({"r1": "RUNNING", "r2": "RUNNING"}, start_times={"r1": start, "r2": start})
    poster = RecordingPoster()
    set_watch(store, clock, "long", HOUR)
    watcher = watcher_for(store, wes, poster, clock)
    run_for(watcher, clock, 2 * 60)
    WatchesStore(store).remove(channel_id="C1", kind="long", tag_key="", tag_value="")
    run_for(watcher, clock, 2 * 60)
    set_watch(store, clock, "long", HOUR)
    run_for(watcher, clock, 2 * 60)
    assert [p.message["text"] for p in poster.posts] == ["2 runs active longer than 1h"] * 2


def test_a_queued_watch_tells_of_runs_waiting_too_long_only(store: WatchStore, clock: FakeClock) -> None:
    wes = StubWes({"q": "QUEUED", "r": "RUNNING"})
    poster = RecordingPoster()
    set_watch(store, clock, "queued", 1800)
    watcher = watcher_for(store, wes, poster, clock)
    run_for(watcher, clock, 31 * 60)
    assert [a.split()[1] for a in alerts(poster)] == ["q"]
    assert "has been waiting (*QUEUED*) for 30m" in alerts(poster)[0]


def test_setting_a_watch_again_with_another_duration_replaces_it(store: WatchStore, clock: FakeClock) -> None:
    watches = WatchesStore(store)
    first, created = watches.add(channel_id="C1", kind="long", tag_key="", tag_value="", user_id="U1", now=1,
                                 after=HOUR)
    same, again = watches.add(channel_id="C1", kind="long", tag_key="", tag_value="", user_id="U1", now=2, after=HOUR)
    other, changed = watches.add(channel_id="C1", kind="long", tag_key="", tag_value="", user_id="U2", now=3,
                                 after=2 * HOUR)
    assert (created, again, changed) == (True, False, True)
    assert first.id == same.id == other.id and other.after == 2 * HOUR and other.active_from is None
    assert [w.describe() for w in watches.of_channel("C1")] == ["every run still active 2h after it started"]


def test_a_subscription_deadline_is_said_once_in_the_card_thread(store: WatchStore, clock: FakeClock) -> None:
    wes = StubWes({"r1": "RUNNING", "r2": "RUNNING"})
    poster = RecordingPoster()
    for run_id, start in (("r1", clock.now() - 50 * 60), ("r2", clock.now() - 50 * 60)):
        store.subscriptions.subscribe(run_id=run_id, channel_id="C1", user_id="U1", now=clock.now(),
                                      expires_at=clock.now() + 14 * 86400, state="RUNNING", start_time=iso(start),
                                      deadline_after=HOUR)
    watcher = watcher_for(store, wes, poster, clock)
    run_for(watcher, clock, 5 * 60)
    wes.states["r2"] = "COMPLETE"  # r2 ends before its deadline: nothing but its end
    run_for(watcher, clock, 10 * 60)
    notes = [p for p in poster.posts if "has not ended" in p.message["text"]]
    assert len(notes) == 1 and "r1" in notes[0].message["text"] and "<@U1>" in notes[0].message["text"]
    card = next(p for p in poster.posts if p.method == "post" and p.thread_ts is None and p.channel == "C1")
    assert notes[0].thread_ts is not None and notes[0].thread_ts == card.ts
    run_for(watcher_for(store, wes, poster, clock), clock, HOUR)  # a restart, an hour on: not said again
    assert len([p for p in poster.posts if "has not ended" in p.message["text"]]) == 1


# -- end to end: the real bot, a fake WES and a fake Slack -----------------------------------------------------

def test_end_to_end_a_long_watch_and_a_deadline_tell_the_channel(wes: FakeWes, slack: FakeSlack,
                                                                workdir: str) -> None:
    two_hours_ago = iso(datetime.now(UTC).timestamp() - 2 * HOUR)
    wes.add_run("slow", "RUNNING", start_time=two_hours_ago)
    wes.add_run("fine", "RUNNING", start_time=iso(datetime.now(UTC).timestamp()))
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3"})
    bot.wait_http_ready()
    try:
        reply = slash(bot, slack, "watch long 1h", name="watch")
        assert "still active 1h after it started" in json.dumps(reply)
        assert "If it has not ended 1h after it started" in slash(bot, slack, "subscribe slow --deadline 1h",
                                                                    channel="C2", name="sub")["text"]

        def posted(channel: str, text: str) -> list[dict[str, object]]:
            return [c["args"] for c in slack.calls_to("chat.postMessage")
                    if c["args"].get("channel") == channel and text in str(c["args"].get("text"))]

        slack.wait_for(lambda: posted("C1", "has been active") or None, timeout=15, what="the long-run alert")
        slack.wait_for(lambda: posted("C2", "has not ended 1h after it started") or None, timeout=15,
                       what="the missed deadline")
        [alert] = posted("C1", "has been active")
        assert str(alert["text"]).startswith("Run slow has been active (*RUNNING*) for 2h")
        assert posted("C2", "has not ended")[0].get("thread_ts")  # in the card's thread
    finally:
        assert bot.stop() == 0
    assert len(posted("C1", "has been active")) == 1 and len(posted("C2", "has not ended")) == 1
