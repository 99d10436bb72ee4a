"""Messages a team can scan at a glance: every time in Slack is a Slack date token (each reader's own time zone),
every time on the terminal is local with its offset, every duration has one format, and the run's card shows
the run's real start, a running time that stays current (updated only when what it shows changes), says when
WES cannot be read, and shows no running time for a run that is gone."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.fakes.watching import DAY, FakeClock, RecordingPoster, StubWes, cycle, make
from wesbot import format as fmt
from wesbot.cancel import CancelView
from wesbot.commands import parse
from wesbot.format import duration, epoch_iso, human_duration, local_epoch, local_time
from wesbot.outcome import RunOutcome
from wesbot.results import AuditResult, DetailsResult, RunsResult, SubscriptionsResult, TaskResult
from wesbot.slack.blocks import slack_time, slack_wes_time
from wesbot.slack.cards import card, card_running_time, digest, notification, unreadable_text
from wesbot.slack.replies import cancel_message, render
from wesbot.store.cancels import AuditRow
from wesbot.store.subscriptions import Subscription
from wesbot.store.watch import WatchStore
from wesbot.textview import render_text
from wesbot.wes.errors import NotFound, WesUnreachable
from wesbot.wes.models import Log, RunListPage, RunLog, RunRequest, RunState, RunSummary

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC, the fake clock's start
HOUR = 3600.0
TOKEN = re.compile(r"<!date\^(-?\d+)\^([^|]+)\|([^>]+)>")


def iso(epoch: float) -> str:
    return epoch_iso(epoch).replace("+00:00", "Z")


def shown(message: dict[str, object]) -> str:
    return json.dumps(message, ensure_ascii=False)


def tokens(text: str) -> list[tuple[int, str, str]]:
    """The Slack date tokens in ``text``: (epoch, format, fallback)."""
    return [(int(e), f, fb) for e, f, fb in TOKEN.findall(text)]


# -- one duration format ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"),
    (45, "45s"),
    (59.9, "59s"),
    (60, "1m 0s"),
    (7 * 60 + 5, "7m 5s"),
    (7 * 60 + 15, "7m 15s"),
    (HOUR, "1h 00m"),
    (2 * HOUR + 5 * 60 + 59, "2h 05m"),
    (23 * HOUR + 59 * 60, "23h 59m"),
    (DAY, "1d 0h"),
    (3 * DAY + 4 * HOUR + 59 * 60, "3d 4h"),
    (-5, "0s"),
    (float("nan"), "—"),
    (float("inf"), "—"),
    (float("-inf"), "—"),
])
def test_every_duration_has_one_format(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


AT = datetime.fromtimestamp(NOW, UTC)


@pytest.mark.parametrize(("start", "end", "ended", "text"), [
    (iso(NOW - 435), iso(NOW), False, "7m 15s"),  # took
    (iso(NOW - 2 * HOUR - 300), None, False, "2h 05m so far"),  # still going
    (iso(NOW - 45), "", False, "45s so far"),
    (iso(NOW - 435), None, True, None),  # ended, but the server gave no end: unknown, never "so far"
    (None, iso(NOW), False, None),
    ("soon", iso(NOW), False, None),
    (iso(NOW), "later", False, None),  # an end that is not a time: unknown, not "still running"
])
def test_a_duration_is_what_it_took_or_how_long_so_far(start: str | None, end: str | None, ended: bool,
                                                       text: str | None) -> None:
    assert duration(start, end, now=AT, ended=ended) == text


# -- Slack: every time is a date token, each reader sees their own time zone -------------------------------

@pytest.mark.parametrize(("epoch", "ago", "text"), [
    (NOW, False, "<!date^1800000000^{date_short_pretty} {time}|2027-01-15 08:00:00 UTC>"),
    (NOW + 0.9, False, "<!date^1800000000^{date_short_pretty} {time}|2027-01-15 08:00:00 UTC>"),
    (NOW, True, "<!date^1800000000^{date_short_pretty} {time} ({ago})|2027-01-15 08:00:00 UTC>"),
    (None, False, "—"),
    (float("nan"), False, "—"),
    (1e300, False, "—"),
])
def test_slack_time_is_a_date_token_with_the_utc_text_as_fallback(epoch: float | None, ago: bool, text: str) -> None:
    assert slack_time(epoch, ago=ago) == text


@pytest.mark.parametrize(("value", "text"), [
    ("2027-01-15T08:00:00Z", "<!date^1800000000^{date_short_pretty} {time}|2027-01-15 08:00:00 UTC>"),
    ("2027-01-15T09:00:00+01:00", "<!date^1800000000^{date_short_pretty} {time}|2027-01-15 08:00:00 UTC>"),
    ("2027-01-15T08:00:00", "<!date^1800000000^{date_short_pretty} {time}|2027-01-15 08:00:00 UTC>"),  # no zone: UTC
    (None, "—"),
    ("", "—"),
    ("yesterday <!channel>", "yesterday &lt;!channel&gt;"),  # not a time: as written, escaped, no token
    ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59-01:00"),  # out of range: as written
    ("soon\x1b[31m|>", "soon|&gt;"),  # cleaned of terminal escapes
])
def test_a_wes_time_is_a_date_token_only_when_it_parses(value: str | None, text: str) -> None:
    assert slack_wes_time(value) == text


def test_lookups_show_every_time_as_a_date_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "_now", lambda: AT)
    log = Log(start_time=iso(NOW - 435), end_time=iso(NOW), exit_code=0, name="align", id="t1")
    run = RunLog(run_id="r1", state=RunState.COMPLETE, request=RunRequest(), run_log=log, task_logs=[log])
    watched = Subscription(id=1, run_id="r1", channel_id="C1", status="active", created_at=NOW - 60,
                           expires_at=NOW + DAY, workflow=None, card_ts=None, card_version=1, card_synced=0,
                           card_failed=None, reason=None, users=("U1",), failing_since=NOW - 30)
    answers = {
        "details": render(DetailsResult(command=parse("details r1"), run=run, task_count=1), host="h"),
        "task": render(TaskResult(command=parse("task r1 t1"), run_id="r1", task=log, run_terminal=True), host="h"),
        "audit": render(AuditResult(command=parse("audit"), run_id=None, rows=[AuditRow(
            id=1, server="default", at=NOW, user_id="U1", channel_id="C1", run_id="r1", wes_url="u",
            state_before="RUNNING", outcome="requested", wes_status=None, detail=None)]), host="h"),
        "subscriptions": render(SubscriptionsResult(command=parse("subscriptions"), channel_id="C1",
                                                    subscriptions=[watched]), host="h"),
        "cancel": cancel_message(CancelView(stage="already-requested", run_id="r1", by_user="U2", at=NOW)),
    }
    for name, message in answers.items():
        text = shown(message)
        assert tokens(text), name
        assert "UTC" not in TOKEN.sub("", text), name  # no time outside a token
    assert "7m 15s" in shown(answers["details"]) and "7m 15s" in shown(answers["task"])
    assert "cannot reach the WES server since <!date^1799999970^" in shown(answers["subscriptions"])


# -- /wes runs: each run's duration, or its running time so far --------------------------------------------

def runs_result() -> RunsResult:
    return RunsResult(command=parse("runs"), runs=[
        RunSummary(run_id="going", state=RunState.RUNNING, start_time=iso(NOW - 2 * HOUR - 330)),
        RunSummary(run_id="done", state=RunState.COMPLETE, start_time=iso(NOW - 3600), end_time=iso(NOW - 3165)),
        RunSummary(run_id="no-end", state=RunState.EXECUTOR_ERROR, start_time=iso(NOW - 3600)),
        RunSummary(run_id="odd", state=RunState.RUNNING, start_time="<!here> soon"),
        RunSummary(run_id="queued", state=RunState.QUEUED),
    ])


def test_runs_in_slack_show_times_as_tokens_and_each_runs_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "_now", lambda: AT)
    lines = render(runs_result(), host="h")["blocks"][1]["text"]["text"].splitlines()
    assert lines == [
        "`going`  *RUNNING*  started <!date^1799992470^{date_short_pretty} {time}|2027-01-15 05:54:30 UTC>"
        " (2h 05m so far)",
        "`done`  *COMPLETE*  started <!date^1799996400^{date_short_pretty} {time}|2027-01-15 07:00:00 UTC>, "
        "ended <!date^1799996835^{date_short_pretty} {time}|2027-01-15 07:07:15 UTC> (7m 15s)",
        "`no-end`  *EXECUTOR_ERROR*  started <!date^1799996400^{date_short_pretty} {time}|2027-01-15 07:00:00 UTC>",
        "`odd`  *RUNNING*  started &lt;!here&gt; soon",
        "`queued`  *QUEUED*",
    ]


@pytest.fixture
def paris() -> Iterator[None]:
    """The terminal's local time zone is Paris (UTC+1 in January) for the test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Europe/Paris")
        time.tzset()
        yield
    time.tzset()


def test_runs_on_the_terminal_show_local_times_with_their_offset_and_each_runs_duration(
        monkeypatch: pytest.MonkeyPatch, paris: None) -> None:
    monkeypatch.setattr(fmt, "_now", lambda: AT)
    assert render_text(runs_result(), host="h").splitlines() == [
        "RUN     STATE           STARTED                     ENDED                       TOOK           TAGS",
        "going   RUNNING         2027-01-15 06:54:30 +01:00  -                           2h 05m so far",
        "done    COMPLETE        2027-01-15 08:00:00 +01:00  2027-01-15 08:07:15 +01:00  7m 15s",
        "no-end  EXECUTOR_ERROR  2027-01-15 08:00:00 +01:00  -                           -",
        "odd     RUNNING         <!here> soon                -                           -",
        "queued  QUEUED          -                           -                           -",
    ]


@pytest.mark.parametrize(("value", "tz", "text"), [
    ("2026-12-04T09:41:07Z", timezone(timedelta(hours=1)), "2026-12-04 10:41:07 +01:00"),
    ("2026-12-04T09:41:07Z", timezone(timedelta(hours=-5, minutes=-30)), "2026-12-04 04:11:07 -05:30"),
    ("2026-12-04T09:41:07+02:00", UTC, "2026-12-04 07:41:07 +00:00"),
    (None, UTC, "—"),
    ("tomorrow\x1b[2J", UTC, "tomorrow"),
    ("0001-01-01T00:00:00Z", timezone(timedelta(hours=-1)), "1-01-01 00:00:00 UTC"),  # cannot shift: UTC
])
def test_the_terminal_shows_local_time_with_its_offset(value: str | None, tz: timezone, text: str) -> None:
    assert local_time(value, tz).lstrip("0") == text.lstrip("0")


def test_wesbots_own_times_on_the_terminal_are_local_too() -> None:
    assert local_epoch(NOW, timezone(timedelta(hours=9))) == "2027-01-15 17:00:00 +09:00"
    assert local_epoch(float("nan")) == "—"


def test_the_terminal_details_use_local_times(paris: None) -> None:
    log = Log(start_time=iso(NOW - 435), end_time=iso(NOW), exit_code=0)
    run = RunLog(run_id="r1", state=RunState.COMPLETE, request=RunRequest(), run_log=log)
    text = render_text(DetailsResult(command=parse("details r1"), run=run, task_count=0), host="h")
    assert "started:    2027-01-15 08:52:45 +01:00" in text and "duration:   7m 15s" in text and "UTC" not in text


# -- the card --------------------------------------------------------------------------------------------

def sub(**changes: object) -> Subscription:
    base = Subscription(id=1, run_id="r1", channel_id="C1", status="active", created_at=NOW, expires_at=NOW + DAY,
                        workflow="align.cwl", card_ts=None, card_version=1, card_synced=0, card_failed=None,
                        reason=None, users=("U1",), state="RUNNING", state_since=NOW,
                        start_time=iso(NOW - 3 * HOUR), read_at=NOW + 2 * HOUR + 600)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("start", "as_of", "text"), [
    (iso(NOW), None, None),  # never read
    (None, NOW, None),  # no start from WES
    ("soon", NOW, None),
    (iso(NOW), NOW - 60, "under 1h"),  # a clock a little behind the server's
    (iso(NOW), NOW + 59 * 60, "under 1h"),
    (iso(NOW), NOW + HOUR, "over 1h 00m"),
    (iso(NOW), NOW + HOUR + 19 * 60 + 59, "over 1h 10m"),  # steps of 10 minutes...
    (iso(NOW), NOW + DAY - 1, "over 23h 50m"),
    (iso(NOW), NOW + DAY + 59 * 60, "over 1d 0h"),  # ...then of an hour, after a day
    (iso(NOW), NOW + 3 * DAY + 4 * HOUR + 59 * 60, "over 3d 4h"),
])
def test_the_cards_running_time_is_coarse(start: str | None, as_of: float | None, text: str | None) -> None:
    assert card_running_time(start, as_of) == text


def test_the_card_shows_the_runs_real_start_the_workflow_the_state_and_its_running_time() -> None:
    text = card(sub(), host="wes.test")["blocks"][0]["text"]["text"]
    assert text.splitlines() == [
        ":hourglass_flowing_sand: Run `r1` is *RUNNING*",
        "*Workflow:* `align.cwl`",
        "*Started:* <!date^1799989200^{date_short_pretty} {time} ({ago})|2027-01-15 05:00:00 UTC>"
        " · *Running for:* over 5h 10m",
        "*Watching:* <@U1>",
    ]


def test_the_card_is_the_same_whenever_it_is_rendered() -> None:
    assert card(sub(), host="h") == card(sub(), host="h")  # a function of what is stored, not of the clock


def test_while_wes_cannot_be_read_the_card_says_so_instead_of_the_last_state_as_if_current() -> None:
    message = card(sub(failing_since=NOW + HOUR, failing_reason="WES server at wes.test did not answer"), host="h")
    text = message["blocks"][0]["text"]["text"]
    assert text.startswith(":grey_question: Run `r1` was *RUNNING* when last read\n_Cannot reach the WES server "
                           "since <!date^1800003600^{date_short_pretty} {time}|2027-01-15 09:00:00 UTC>: "
                           "WES server at wes.test did not answer.")
    assert "is *RUNNING*" not in text and "Running for" not in text
    assert "cannot reach the WES server" in message["text"]


@pytest.mark.parametrize("status", ["gone", "expired", "removed", "failed"])
def test_a_run_no_longer_followed_shows_no_running_time(status: str) -> None:
    text = shown(card(sub(status=status), host="h"))
    assert "Running for" not in text and "so far" not in text and "Took" not in text and "({ago})" not in text
    assert "*Started:* <!date^1799989200^" in text


def test_an_ended_run_shows_what_it_took() -> None:
    text = shown(card(sub(status="ended", state="COMPLETE", exit_code=0, end_time=iso(NOW - 3 * HOUR + 182)),
                      host="h"))
    assert "*Took:* 3m 2s" in text and "Running for" not in text and "_No longer watched: the run ended._" in text


def test_the_notification_digest_and_notices_use_the_one_duration_format() -> None:
    outcome = RunOutcome(run_id="r1", state="COMPLETE", exit_code=0, start_time=iso(NOW - 2 * HOUR - 300),
                         end_time=iso(NOW))
    assert "ended *COMPLETE (exit 0)* after 2h 05m" in shown(notification(None, outcome, host="h"))
    assert "after 2h 05m" in shown(digest([outcome] * 6, what="ended", host="h"))
    note = unreadable_text("r1", NOW - 615, NOW, "HTTP 503")
    assert "since <!date^1799999385^{date_short_pretty} {time}|2027-01-15 07:49:45 UTC> (10m 15s)" in note


# -- the watcher keeps the card current, and updates it only when what it shows changes -------------------

def watch(store: WatchStore, clock: FakeClock, run_id: str = "r1", *, start: float | None, state: str = "RUNNING",
          channel: str = "C1") -> None:
    """Someone subscribes to ``run_id`` in ``channel``; WES said it started at ``start``."""
    store.subscriptions.subscribe(run_id=run_id, channel_id=channel, user_id="U1", now=clock.now(),
                                  expires_at=clock.now() + 14 * DAY, state=state, workflow="align.cwl",
                                  start_time=None if start is None else iso(start))


def card_texts(poster: RecordingPoster) -> list[str]:
    """The card as posted, then as each update left it."""
    return [p.message["blocks"][0]["text"]["text"] for p in poster.posts
            if p.method == "update" or (p.method == "post" and p.thread_ts is None)]


def test_the_card_shows_when_the_run_started_on_wes_not_when_someone_subscribed(store: WatchStore,
                                                                              clock: FakeClock) -> None:
    poster = RecordingPoster()
    watch(store, clock, start=clock.now() - 2 * HOUR)
    cycle(make(store, StubWes({"r1": "RUNNING"}), poster, clock), clock)
    [posted] = card_texts(poster)
    assert tokens(posted)[0][0] == int(NOW - 2 * HOUR) and "*Running for:* over 2h 00m" in posted
    assert str(int(NOW)) not in posted  # the subscription's time is in the footer only


def test_a_card_is_never_updated_while_nothing_it_shows_changes(store: WatchStore, clock: FakeClock) -> None:
    poster = RecordingPoster()
    watch(store, clock, start=clock.now() - 60)
    watcher = make(store, StubWes({"r1": "RUNNING"}), poster, clock)
    for _ in range(110):  # 55 minutes of polls: the run stays "under 1h"
        cycle(watcher, clock)
    assert [p.method for p in poster.posts] == ["post"]


def test_the_running_time_moves_on_every_ten_minutes_then_hourly_after_a_day(store: WatchStore,
                                                                             clock: FakeClock) -> None:
    poster = RecordingPoster()
    watch(store, clock, start=clock.now() - 50 * 60)
    watcher = make(store, StubWes({"r1": "RUNNING"}), poster, clock)
    for _ in range(2 * 60 * 2):  # two hours of polls, every 30 s
        cycle(watcher, clock)
    texts = card_texts(poster)
    running = [re.search(r"Running for:\* (.*)$", text, re.M).group(1) for text in texts]  # type: ignore[union-attr]
    assert running == ["under 1h", "over 1h 00m", "over 1h 10m", "over 1h 20m", "over 1h 30m", "over 1h 40m",
                       "over 1h 50m", "over 2h 00m", "over 2h 10m", "over 2h 20m", "over 2h 30m", "over 2h 40m"]
    assert all(a != b for a, b in zip(texts, texts[1:], strict=False))  # every update shows something new
    clock.advance(DAY + 600)
    cycle(watcher, clock)  # the run has been going for 1d 3h 00m
    before = len(poster.posts)
    for _ in range(119):  # the hour after (59m 30s): no update, the card moves on by the hour now
        cycle(watcher, clock)
    assert len(poster.posts) == before and "over 1d 3h" in card_texts(poster)[-1]
    cycle(watcher, clock)
    assert len(poster.posts) == before + 1 and "over 1d 4h" in card_texts(poster)[-1]


def test_while_wes_cannot_be_read_the_card_says_so_once_and_recovers(store: WatchStore, clock: FakeClock) -> None:
    poster, wes = RecordingPoster(), StubWes({"r1": "RUNNING"})
    watch(store, clock, start=clock.now() - 60)
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    wes.errors["r1"] = WesUnreachable("WES server at wes.test did not answer within 10 s")
    failed_at = clock.now()
    for _ in range(40):  # 20 minutes of failing reads
        cycle(watcher, clock)
    del wes.errors["r1"]
    for _ in range(20):
        cycle(watcher, clock)
    posted, unreadable, recovered = card_texts(poster)
    assert "Cannot reach the WES server since <!date^" + str(int(failed_at)) in unreadable
    assert "did not answer within 10 s" in unreadable and "Running for" not in unreadable
    assert "Cannot reach" not in recovered and "is *RUNNING*" in recovered and "*Running for:* under 1h" in recovered


def test_a_run_gone_from_the_server_shows_no_running_time(store: WatchStore, clock: FakeClock) -> None:
    poster, wes = RecordingPoster(), StubWes({"r1": "RUNNING"})
    watch(store, clock, start=clock.now() - 3 * HOUR)
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    wes.errors["r1"] = NotFound("run r1 not found", status_code=404)
    for _ in range(3):
        cycle(watcher, clock)
    last = card_texts(poster)[-1]
    assert "is gone from the WES server" in last
    assert "Running for" not in last and "Took" not in last and "so far" not in last


def test_a_run_that_starts_while_watched_has_its_start_read_once(store: WatchStore, clock: FakeClock) -> None:
    poster, wes = RecordingPoster(), StubWes({"r1": "QUEUED"})
    watch(store, clock, start=None, state="QUEUED")
    watcher = make(store, wes, poster, clock)
    cycle(watcher, clock)
    assert "Started" not in card_texts(poster)[-1]
    wes.states["r1"] = "RUNNING"
    for _ in range(10):
        cycle(watcher, clock)
    assert wes.run_calls == ["r1"]  # one GET /runs/{id} when it moved, none on the cycles after
    assert "*Started:* <!date^" + str(int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())) in card_texts(poster)[-1]


@dataclass
class ListedStarts(StubWes):
    """A WES 1.1 server whose run list gives each run's start time."""

    starts: dict[str, str] = field(default_factory=dict)

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        page = super().list_runs(page_size=page_size, page_token=page_token)
        return replace(page, runs=[replace(item, start_time=self.starts.get(item.run_id)) for item in page.runs])


def test_cards_of_runs_read_from_the_run_list_are_kept_current_the_same_way(store: WatchStore,
                                                                            clock: FakeClock) -> None:
    runs = [f"r{i:02d}" for i in range(60)]  # enough to read their states from GET /runs pages
    wes, poster = ListedStarts(dict.fromkeys(runs, "RUNNING")), RecordingPoster()
    wes.starts = {run: iso(clock.now() - 59 * 60) for run in runs}
    for run in runs:
        watch(store, clock, run, start=None, channel=f"C{run}")
    watcher = make(store, wes, poster, clock)
    for _ in range(4):  # two minutes: from "under 1h" to "over 1h 00m"
        cycle(watcher, clock)
    assert wes.status_calls == [] and wes.run_calls == []  # no request but the list pages
    for run in runs:
        texts = [p.message["blocks"][0]["text"]["text"] for p in poster.posts if p.channel == f"C{run}"]
        [posted, updated] = texts  # the start, learned from the list before the card was posted; then one step
        assert "*Started:* <!date^" in posted and "*Running for:* under 1h" in posted
        assert "*Running for:* over 1h 00m" in updated
