"""The report (issue 13): `/wes report [24h|7d]` on demand, and `/wes report daily HH:MM` / `weekly DAY HH:MM`
posted in the channel at that time in the setter's time zone, once per period across restarts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.botproc import BotProcess, slash
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes
from tests.fakes.watching import FakeClock, RecordingPoster, StubWes, make
from wesbot.commands import UsageError, parse
from wesbot.report import MAX_UNDATED_READS, read_report
from wesbot.schedule import Schedule, parse_schedule
from wesbot.slack.report_view import report_message
from wesbot.store.watch import WatchStore
from wesbot.watcher import WatcherSettings

PARIS = ZoneInfo("Europe/Paris")
DAY = 86400.0


def at(text: str, tz: ZoneInfo = PARIS) -> float:
    """A local wall time as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- schedules (pure) -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("words", "schedule"), [
    (["daily", "09:00"], Schedule("daily", 9, 0)),
    (["daily", "9:05"], Schedule("daily", 9, 5)),
    (["weekly", "mon", "18:30"], Schedule("weekly", 18, 30, weekday=0)),
    (["weekly", "Sunday", "07:00"], Schedule("weekly", 7, 0, weekday=6)),
    (["daily", "24:00"], None), (["daily", "9"], None), (["weekly", "someday", "09:00"], None),
    (["weekly", "monkey", "09:00"], None), (["hourly", "09:00"], None),
])
def test_schedules_are_read_as_typed(words: list[str], schedule: Schedule | None) -> None:
    assert parse_schedule(words) == schedule
    if schedule is not None:
        assert parse_schedule(schedule.text().split()) == schedule


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("daily 09:00", "2027-01-15 08:59", "2027-01-15 09:00"),
    ("daily 09:00", "2027-01-15 09:00", "2027-01-16 09:00"),
    # Across the change to summer time (28 March 2027 in Paris) and back (31 October): still 09:00 local.
    ("daily 09:00", "2027-03-27 10:00", "2027-03-28 09:00"),
    ("daily 09:00", "2027-10-30 10:00", "2027-10-31 09:00"),
    # 02:30 does not exist on 28 March: an hour later; on 31 October it comes twice: the first time.
    ("daily 02:30", "2027-03-28 00:00", "2027-03-28 03:30"),
    ("weekly mon 09:00", "2027-01-15 12:00", "2027-01-18 09:00"),  # a Friday: the next Monday
    ("weekly fri 09:00", "2027-01-15 08:00", "2027-01-15 09:00"),
    ("weekly fri 09:00", "2027-01-15 09:30", "2027-01-22 09:00"),
])
def test_the_next_time_follows_the_local_clock(schedule: str, after: str, expected: str) -> None:
    parsed = parse_schedule(schedule.split())
    assert parsed is not None
    got = parsed.next_after(at(after), PARIS)
    assert datetime.fromtimestamp(got, PARIS).strftime("%Y-%m-%d %H:%M") == expected


def test_an_autumn_hour_that_comes_twice_is_reported_once() -> None:
    schedule = Schedule("daily", 2, 30)
    first = schedule.next_after(at("2027-10-31 00:00"), PARIS)
    second = schedule.next_after(first, PARIS)
    assert schedule.period(first, PARIS) == "2027-10-31"
    assert schedule.period(second, PARIS) == "2027-11-01"


@pytest.mark.parametrize(("text", "window"), [("report", DAY), ("report 24h", DAY), ("report 7d", 7 * DAY)])
def test_a_report_reads_a_day_or_a_week(text: str, window: float) -> None:
    assert parse(text).window == window


@pytest.mark.parametrize(("text", "says"), [
    ("report 3d", "not a report window or schedule"), ("report daily 25:00", "report daily HH:MM"),
    ("report weekly 09:00", "report weekly DAY HH:MM"), ("report daily", "report daily HH:MM"),
])
def test_report_mistakes_say_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(text)
    assert says in refused.value.message


# -- reading the window ---------------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def window_wes() -> StubWes:
    wes = StubWes({"ok1": "COMPLETE", "ok2": "COMPLETE", "bad": "EXECUTOR_ERROR", "old": "COMPLETE",
                   "run1": "RUNNING", "run2": "RUNNING", "nodate": "SYSTEM_ERROR"})
    wes.start_times = {"ok1": iso(NOW - 5 * 3600), "ok2": iso(NOW - 7200), "bad": iso(NOW - 3600),
                       "old": iso(NOW - 3 * DAY), "run1": iso(NOW - 10 * 3600), "run2": iso(NOW - 600)}
    wes.end_times = {"ok1": iso(NOW - 3600), "ok2": iso(NOW - 3000), "bad": iso(NOW - 1800), "old": iso(NOW - 2 * DAY)}
    return wes


def test_the_report_counts_what_ended_in_the_window_from_the_list_alone() -> None:
    wes = window_wes()
    report = read_report(wes, None, window=DAY, now=NOW)
    assert report.ended == {"COMPLETE": 2, "EXECUTOR_ERROR": 1}
    assert [run.run_id for run in report.failures] == ["bad"]
    assert [run.run_id for run in report.longest] == ["ok1", "ok2", "bad"]
    assert [run.run_id for run in report.active] == ["run1", "run2"] and report.active_count == 2
    # One list page; only the failure (its workflow) and the undated run were read one by one.
    assert wes.list_calls == 1 and sorted(wes.run_calls) == ["bad", "nodate"]
    assert report.undated == 0  # its run log dates it (2026: outside the window)
    assert report.failures[0].workflow == "align.cwl"
    week = read_report(window_wes(), None, window=7 * DAY, now=NOW)
    assert week.ended == {"COMPLETE": 3, "EXECUTOR_ERROR": 1}


def test_a_server_that_lists_no_end_times_costs_a_bounded_number_of_reads() -> None:
    wes = StubWes({f"r{i}": "COMPLETE" for i in range(200)})
    report = read_report(wes, None, window=DAY, now=NOW)
    assert len(wes.run_calls) == MAX_UNDATED_READS
    assert report.undated == 200 - MAX_UNDATED_READS  # those read are dated (and older than the window)
    text = json.dumps(report_message(report, host="wes.test")["blocks"])
    assert f"{200 - MAX_UNDATED_READS} ended runs are listed without an end time" in text


def test_the_report_message_reads_at_a_glance() -> None:
    message = report_message(read_report(window_wes(), None, window=DAY, now=NOW), host="wes.test")
    text = json.dumps(message["blocks"], ensure_ascii=False)
    assert message["text"] == "The last day on wes.test: 3 runs ended, 1 failed; 2 active"
    assert "*3 runs ended:*" in text and "*Failures* (1)" in text and "*Active now* (2)" in text
    assert "`run1` *RUNNING* 10h 00m" in text


# -- the scheduled report: once per period -------------------------------------------------------------------

def reports(poster: RecordingPoster) -> list[str]:
    return [p.message["text"] for p in poster.posts if p.method == "post" and "report of" in p.message["text"]]


def test_a_daily_report_posts_once_at_its_time_and_again_the_next_day(store: WatchStore, clock: FakeClock) -> None:
    wes, poster = window_wes(), RecordingPoster()
    utc = ZoneInfo("UTC")
    nine = Schedule("daily", 9, 0)
    store.reports.set(channel_id="C1", schedule=nine, tz="UTC", user_id="U1", now=clock.now())
    settings = WatcherSettings(poll_seconds=30, post_concurrency=1)
    watcher = make(store, wes, poster, clock, settings=settings)
    first = nine.next_after(clock.now(), utc)
    while clock.now() < first - 60:
        clock.advance(min(3600.0, first - 60 - clock.now()))
        watcher.step()
    assert reports(poster) == []
    for _ in range(6):  # the minute of the report and the next: once
        clock.advance(20)
        watcher.step()
    assert reports(poster) == ["Daily report of wes.test: 3 runs ended, 1 failed; 2 active"]
    restarted = make(store, wes, poster, clock, settings=settings)  # a restart at that minute
    restarted.step()
    assert len(reports(poster)) == 1
    clock.advance(DAY)
    restarted.step()
    restarted.step()
    assert len(reports(poster)) == 2
    schedule = store.reports.of_channel("C1")
    assert schedule is not None and schedule.next_at == nine.next_after(clock.now(), utc)


def test_a_report_that_cannot_be_read_says_so_at_its_time(store: WatchStore, clock: FakeClock) -> None:
    from wesbot.wes.errors import WesUnreachable

    class Down(StubWes):
        def list_runs(self, *, page_size: int | None = None, page_token: str | None = None):  # type: ignore[no-untyped-def]
            raise WesUnreachable("connection refused")

    poster = RecordingPoster()
    store.reports.set(channel_id="C1", schedule=Schedule("daily", 9, 0), tz="UTC", user_id="U1",
                      now=clock.now() - 2 * DAY)  # due since yesterday: one report, not one per missed day
    watcher = make(store, Down({}), poster, clock, settings=WatcherSettings(poll_seconds=30, post_concurrency=1))
    watcher.step()
    watcher.step()
    [said] = [p.message["text"] for p in poster.posts]
    assert "the WES server could not be read" in said and "connection refused" in said


# -- end to end -----------------------------------------------------------------------------------------------

def test_end_to_end_report_on_demand_and_a_schedule_told_to_the_channel(wes: FakeWes, slack: FakeSlack,
                                                                       workdir: str) -> None:
    now = datetime.now(UTC).timestamp()
    wes.add_run("done", "COMPLETE", start_time=iso(now - 3600), end_time=iso(now - 600), exit_code=0)
    wes.add_run("boom", "EXECUTOR_ERROR", start_time=iso(now - 7200), end_time=iso(now - 60), exit_code=1)
    wes.add_run("going", "RUNNING", start_time=iso(now - 1800))
    slack.users["U1"] = {"id": "U1", "tz": "Europe/Paris", "name": "u1"}
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir)
    bot.wait_http_ready()
    try:
        report = slash(bot, slack, "report", name="report")
        assert report["response_type"] == "ephemeral"
        text = json.dumps(report["blocks"], ensure_ascii=False)
        assert "*2 runs ended:*" in text and "`boom`" in text and "*Active now* (1)" in text
        assert any(e.get("action_id") == "wes_share" for b in report["blocks"] if b["type"] == "actions"
                   for e in b["elements"])
        scheduled = slash(bot, slack, "report daily 09:00", name="schedule")
        assert scheduled["response_type"] == "in_channel"
        assert "daily 09:00 (Europe/Paris)" in scheduled["text"] and "`/wes report off`" in scheduled["text"]
        listing = json.dumps(slash(bot, slack, "subscriptions", name="list")["blocks"])
        assert "daily 09:00 (Europe/Paris)" in listing and "report off" in listing
        assert "stopped this channel's scheduled report" in slash(bot, slack, "report off", name="off")["text"]
    finally:
        assert bot.stop() == 0
