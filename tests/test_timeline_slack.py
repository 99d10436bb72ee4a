"""The run timeline wired in: ``/wes timeline`` with the real ``wesbot serve`` (an ephemeral summary, the picture
posted with --share or its button, Slack's refusals answered with the fix), the picture in the thread of an end
notification (through the outbox, exactly once, across kill -9), ``wesbot ask timeline --out``, and the table
that holds the owed files. The PNGs are read back from what reached the fake Slack's upload URL."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.botproc import BotProcess, ask_bot, clean_env, post_signed, run, slash
from tests.fakes.fake_slack import BOT_TOKEN, FakeSlack, block_actions_payload, slash_command_payload
from tests.fakes.fake_wes import FakeWes, json_reply, make_task
from tests.fakes.watching import SETTINGS, FakeClock, RecordingPoster, StubWes, cycle, make, subscribe
from tests.test_block_kit_models import block_kit_problems
from tests.test_blocks import HOSTILE, rendered_mrkdwn
from wesbot.commands import parse
from wesbot.results import TimelineResult
from wesbot.runtimeline import RunTasks
from wesbot.slack.files import refusal, upload_url_allowed
from wesbot.slack.poster import PostResult, SlackPoster
from wesbot.slack.replies import render
from wesbot.store import open_db
from wesbot.store.files import Pictures
from wesbot.store.watch import WatchStore
from wesbot.textview import render_text
from wesbot.watcher.details import Budget, Details
from wesbot.wes.models import Log, RunLog, RunStatus, parse_state

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = {"WESBOT_POLL_SECONDS": "0.3", "WESBOT_LEASE_SECONDS": "2"}


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, right after the signature."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def tasks(count: int, *, untimed: int = 0, name: str = "step") -> list[dict[str, Any]]:
    """``count`` tasks a minute apart, 5 minutes each, then ``untimed`` without a start time."""
    timed = [make_task(f"t{i}", name=f"{name}_{i}", start_time=f"2026-03-01T09:{i % 60:02d}:00Z",
                       end_time=f"2026-03-01T10:{i % 60:02d}:00Z") for i in range(count)]
    return timed + [make_task(f"u{i}", name=f"waiting_{i}", start_time=None) for i in range(untimed)]


def start(wes: FakeWes, slack: FakeSlack, workdir: str, *, log: str = "bot.log", **env: str) -> BotProcess:
    proc = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir, log_name=log,
                      extra_env={**FAST, **env})
    proc.wait_http_ready()
    return proc


def click(bot: BotProcess, slack: FakeSlack, value: str, name: str, *, action: str = "wes_share") -> None:
    payload = block_actions_payload(action, value, channel_id="C123", user_id="U123",
                                    response_url=slack.response_url(name))
    assert post_signed(bot, payload).status_code == 200


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


# -- /wes timeline --------------------------------------------------------------------------------------


def test_timeline_answers_you_then_posts_the_picture_in_the_channel(wes: FakeWes, slack: FakeSlack,
                                                                     workdir: str) -> None:
    wes.inline_task_logs = False  # the tasks come from the task endpoint, two pages of 100
    wes.add_run("r1", "COMPLETE", task_logs=tasks(148, untimed=2, name="align"), start_time="2026-03-01T09:00:00Z",
                end_time="2026-03-01T11:00:00Z")
    bot = start(wes, slack, workdir)
    try:
        reply = ask_bot(bot, slack, "timeline r1", name="ask")
        assert reply["response_type"] == "ephemeral"
        text = reply["text"]
        assert "Timeline of run `r1` (*COMPLETE (exit 0)*): 150 tasks, drawn as 1 bar (one per task name)" in text
        assert "Not drawn, no start time: `waiting_0`, `waiting_1`." in text
        [share] = buttons(reply)
        assert share["action_id"] == "wes_share" and share["value"] == "timeline r1"
        assert "Post the picture" in share["text"]["text"]
        assert slack.calls_to("files.getUploadURLExternal") == []  # nothing is posted until asked

        click(bot, slack, share["value"], "click")
        [shared] = slack.wait_for_shared_files(1, timeout=15)
        assert shared["channel_id"] == "C123" and shared["thread_ts"] is None
        assert shared["filename"] == "timeline-r1.png" and shared["title"] == "Timeline of run r1"
        width, height = png_size(shared["content"])
        assert width == 1200 and height > 200 and shared["length"] == len(shared["content"])
        assert "Timeline of run `r1`" in shared["initial_comment"] and "Shared by <@U123>" in shared["initial_comment"]
        assert slack.responses_to("click") == []  # the picture is the answer: nothing else is said

        # --share posts it at once; when Slack takes it, that is the whole answer.
        assert post_signed(bot, slash_command_payload("timeline r1 --share", channel_id="C9",
                                                      response_url=slack.response_url("share"))).status_code == 200
        [_, again] = slack.wait_for_shared_files(2, timeout=15)
        assert again["channel_id"] == "C9" and png_size(again["content"]) == (width, height)
        time.sleep(0.5)
        assert [r for r in slack.responses_to("share") if "Looking up" not in r.get("text", "")] == []
    finally:
        bot.stop()
    assert len(slack.shared_files()) == 2
    assert "Traceback" not in bot.log_text()


def test_an_unknown_run_is_one_clear_error_and_no_upload(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    bot = start(wes, slack, workdir)
    try:
        reply = ask_bot(bot, slack, "timeline nope --share", name="nope")
        assert reply["response_type"] == "ephemeral"
        assert "Run nope not found on the WES server" in reply["text"]
    finally:
        bot.stop()
    assert slack.calls_to("files.getUploadURLExternal") == [] and slack.shared_files() == []


@pytest.mark.parametrize(("method", "error", "fix"), [
    ("files.getUploadURLExternal", "not_in_channel", "`/invite @wesbot`, then ask again"),
    ("files.completeUploadExternal", "missing_scope", "lacks the `files:write` scope"),
    ("files.completeUploadExternal", "cant_upload_here", "Slack answered `cant_upload_here`. Try again"),
])
def test_slack_refusing_the_upload_is_answered_with_the_fix(wes: FakeWes, slack: FakeSlack, workdir: str,
                                                            method: str, error: str, fix: str) -> None:
    wes.add_run("r2", "EXECUTOR_ERROR", task_logs=tasks(3))
    bot = start(wes, slack, workdir)
    try:
        slack.fail_next(method, error)
        reply = ask_bot(bot, slack, "timeline r2 --share", name="refused")
        assert reply["response_type"] == "ephemeral" and reply["text"].startswith("Could not post the picture")
        assert fix in reply["text"]
    finally:
        bot.stop()
    assert slack.shared_files() == []
    assert "Traceback" not in bot.log_text()


def test_the_posters_upload_takes_three_steps_without_the_token_where_the_bytes_go(slack: FakeSlack) -> None:
    seen: list[str] = []
    with SlackPoster(BOT_TOKEN, slack.api_url) as poster:
        slack.messages["1.000001"] = {"channel": "C1", "ts": "1.000001", "text": "parent"}
        done = poster.upload_file("C1", PNG_SIGNATURE + b"rest", filename="t.png", title="T", thread_ts="1.000001",
                                  on_file_id=seen.append)
        assert done.ok and done.file_id == seen[0]
        [shared] = slack.shared_files()
        assert shared["content"] == PNG_SIGNATURE + b"rest" and shared["authorization"] is None
        assert (shared["channel_id"], shared["thread_ts"], shared["title"]) == ("C1", "1.000001", "T")
        assert poster.find_file("C1", done.file_id or "", thread_ts="1.000001") is True
        assert poster.find_file("C1", "F-other", thread_ts="1.000001") is False
        assert poster.find_file("C1", "F-other", thread_ts="9.9") is None  # Slack cannot tell: no such thread
        # An upload URL that is neither SLACK_API_URL's host nor Slack's file host is never followed.
        slack.inject("files.getUploadURLExternal", json_reply(200, {"ok": True, "file_id": "F9",
                                                                     "upload_url": "https://evil.example/up"}))
        refused = poster.upload_file("C1", b"x", filename="t.png", title="T")
        assert not refused.ok and refused.permanent and "not Slack's" in (refused.error or "")
        slack.fail_next("files.completeUploadExternal", "missing_scope")
        lacking = poster.upload_file("C1", b"x", filename="t.png", title="T")
        assert lacking.permanent and not lacking.token_error and "files:write" in (lacking.error or "")
        slack.status_next("files.getUploadURLExternal", 503)
        later = poster.upload_file("C1", b"x", filename="t.png", title="T")
        assert not later.ok and not later.permanent
    assert len(slack.shared_files()) == 1


def test_the_summary_is_valid_block_kit_and_pings_no_one_whatever_the_task_names() -> None:
    hostile = [Log(name=HOSTILE + str(i), id=str(i), start_time=None if i % 3 else "2026-01-01T00:00:00Z",
                   end_time="2026-01-01T00:05:00Z", exit_code=i % 2) for i in range(200)]
    run = RunLog(run_id="r1" + HOSTILE, state=parse_state("EXECUTOR_ERROR"), run_log=Log(exit_code=1))
    result = TimelineResult(command=parse("timeline r1"), run=run, now=0.0,
                            read=RunTasks(tasks=hostile, complete=False, pages=2, cut="pages"))
    message = render(result, host="wes.example.org")
    assert block_kit_problems(message) == []
    mrkdwn = rendered_mrkdwn(message)
    assert "<!channel>" not in mrkdwn and "<@U123>" not in mrkdwn and "<http://evil" not in mrkdwn
    assert "and 123 more." in mrkdwn and "7 groups not shown" in mrkdwn
    assert "Only the first 200 tasks were read (the limit of 2 pages)" in mrkdwn
    shared = render(dataclasses.replace(result, command=parse("timeline r1 --share")), host="h", shared_by="U9")
    assert buttons(shared) == [] and shared["text"].endswith("Shared by <@U9>")
    text = render_text(result, host="h")
    assert "\x1b" not in text and "tasks:      200+, drawn as" in text and "Only the first 200" in text


def test_the_upload_url_must_be_slacks_or_slack_api_urls() -> None:
    api = "http://127.0.0.1:5000/api/"
    assert upload_url_allowed("http://127.0.0.1:5000/upload/F1", api)
    assert upload_url_allowed("https://files.slack.com/upload/v1/CwABAAAAXAo", "https://slack.com/api/")
    for url in ("https://evil.example/upload", "http://files.slack.com/upload/v1/x", "https://files.slack.com.evil/x",
                "https://127.0.0.1:5000/upload/F1", "file:///etc/passwd", None, 7, "not a url"):
        assert not upload_url_allowed(url, api), url
    assert "`/invite @wesbot`" in refusal("not_in_channel") and "SLACK_BOT_TOKEN" in refusal("invalid_auth")


# -- the picture in the thread of an end notification ---------------------------------------------------


def notifications(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c["args"] for c in slack.calls_to("chat.postMessage")
            if c["response"] and c["response"].get("ok") and c["args"].get("thread_ts")
            and "ended" in c["args"].get("text", "")]


def card_ts(slack: FakeSlack, run_id: str) -> str:
    card = slack.wait_for(lambda: next((c for c in slack.calls_to("chat.postMessage") if not c["args"].get("thread_ts")
                                        and f"`{run_id}`" in json.dumps(c["args"].get("blocks"))), None),
                          timeout=10, what=f"the card of {run_id}")
    return str(card["response"]["ts"])


def test_the_end_notification_of_a_run_with_many_tasks_carries_its_picture(wes: FakeWes, slack: FakeSlack,
                                                                           workdir: str) -> None:
    wes.inline_task_logs = False
    wes.add_run("big", "RUNNING", task_logs=tasks(8))
    wes.add_run("small", "RUNNING", task_logs=tasks(4))
    bot = start(wes, slack, workdir)
    try:
        slash(bot, slack, "subscribe big")
        slash(bot, slack, "subscribe small", channel="C2")
        big_card, small_card = card_ts(slack, "big"), card_ts(slack, "small")
        wes.set_state("big", "COMPLETE", exit_code=0)
        wes.set_state("small", "EXECUTOR_ERROR", exit_code=1)
        [shared] = slack.wait_for_shared_files(1, timeout=20)
        # In the thread the notification is in (the card's): Slack threads only on a parent's ts.
        note = next(n for n in notifications(slack) if "`big`" in json.dumps(n["blocks"]))
        assert shared["thread_ts"] == note["thread_ts"] == big_card and shared["channel_id"] == "C1"
        assert shared["filename"] == "timeline-big.png" and png_size(shared["content"])[0] == 1200
        assert float(shared["completed"]) > float(next(ts for ts, m in slack.messages.items()
                                                       if m.get("thread_ts") == big_card and "ended" in m["text"]))
        slack.wait_for(lambda: len(notifications(slack)) >= 2 or None, timeout=10, what="both notifications")
        time.sleep(1.5)  # more cycles: nothing more
    finally:
        bot.stop()
    assert [f["thread_ts"] for f in slack.shared_files()] == [big_card]  # exactly once; none for 4 tasks
    assert small_card not in [f["thread_ts"] for f in slack.shared_files()]
    assert len(slack.calls_to("files.getUploadURLExternal")) == 1


def test_a_restart_between_the_notification_and_its_picture_uploads_it_once(wes: FakeWes, slack: FakeSlack,
                                                                            workdir: str) -> None:
    wes.add_run("k1", "RUNNING", task_logs=tasks(6))
    bot = start(wes, slack, workdir)
    slash(bot, slack, "subscribe k1")
    card = card_ts(slack, "k1")
    slack.status_next("files.getUploadURLExternal", 500, count=20)  # Slack's file service down for a while
    wes.set_state("k1", "COMPLETE", exit_code=0)
    slack.wait_for(lambda: notifications(slack) or None, timeout=15, what="the notification")
    slack.wait_for_call("files.getUploadURLExternal", timeout=10)
    bot.kill9()
    assert slack.shared_files() == []
    slack.clear_injected("files.getUploadURLExternal")  # Slack's file service is back
    again = start(wes, slack, workdir, log="bot2.log")
    try:
        [shared] = slack.wait_for_shared_files(1, timeout=20)
        assert shared["thread_ts"] == card and png_size(shared["content"])[0] == 1200
        time.sleep(1.5)
    finally:
        again.stop()
    assert len(slack.shared_files()) == 1 and len(notifications(slack)) == 1


def test_kill_9_after_slack_shared_the_picture_does_not_share_it_again(wes: FakeWes, slack: FakeSlack,
                                                                      workdir: str) -> None:
    wes.add_run("k2", "RUNNING", task_logs=tasks(6))
    bot = start(wes, slack, workdir)
    slash(bot, slack, "subscribe k2")
    card = card_ts(slack, "k2")
    # Slack shares the file, but its answer comes too late: wesbot is killed while it waits for it.
    slack.slow_next("files.completeUploadExternal", 8)
    wes.set_state("k2", "COMPLETE", exit_code=0)
    slack.wait_for_shared_files(1, timeout=20)
    bot.kill9()
    again = start(wes, slack, workdir, log="bot2.log")
    try:
        slack.wait_for(lambda: "had reached Slack before wesbot stopped" in again.log_text() or None, timeout=15,
                       what="the file found in its thread")
        time.sleep(1.5)
    finally:
        again.stop()
    assert [f["thread_ts"] for f in slack.shared_files()] == [card]
    assert len(slack.calls_to("files.getUploadURLExternal")) == 1
    with sqlite3.connect(Path(workdir) / "wesbot.db") as conn:
        assert conn.execute("SELECT status, png FROM outbox_files").fetchall() == [("uploaded", None)]


# -- delivery of owed files, in process -----------------------------------------------------------------


class FilePoster(RecordingPoster):
    """A recording poster that takes uploads too; ``upload_script`` holds their results next, ``found`` what
    find_file answers."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[dict[str, Any]] = []
        self.upload_script: list[PostResult] = []
        self.found: bool | None = False
        self.looked: list[str] = []

    def upload_file(self, channel: str, content: bytes, *, filename: str, title: str, thread_ts: str | None = None,
                    comment: str | None = None, on_file_id: Callable[[str], None] | None = None) -> PostResult:
        file_id = f"F{len(self.uploads) + 1}"
        if on_file_id is not None:
            on_file_id(file_id)
        scripted = self.upload_script.pop(0) if self.upload_script else None
        if scripted is not None and not scripted.ok:
            return scripted
        self.uploads.append({"channel": channel, "thread_ts": thread_ts, "filename": filename, "png": content})
        return PostResult(ok=True, file_id=file_id)

    def find_file(self, channel: str, file_id: str, *, thread_ts: str) -> bool | None:
        self.looked.append(file_id)
        return self.found


def timed(count: int) -> list[Log]:
    return [Log(name=f"t{i}", id=f"t{i}", start_time=f"2026-01-01T00:0{i % 10}:00Z",
                end_time=f"2026-01-01T00:{10 + i % 10}:00Z", exit_code=0) for i in range(count)]


PICTURES = dataclasses.replace(SETTINGS, timeline_min_tasks=5)


def ended(store: WatchStore, clock: FakeClock, poster: FilePoster, task_count: int, *, state: str = "COMPLETE",
          run_id: str = "r1") -> tuple[Any, StubWes]:
    wes = StubWes(states={run_id: "RUNNING"}, tasks={run_id: timed(task_count)})
    watcher = make(store, wes, poster, clock, settings=PICTURES)
    subscribe(store, clock, run_id)
    cycle(watcher, clock)  # the card
    wes.states[run_id] = state
    cycle(watcher, clock)  # the notification
    cycle(watcher, clock)  # its picture: a second later at the soonest (one post per second per channel)
    return watcher, wes


def test_the_picture_goes_in_the_notifications_thread_once(store: WatchStore, clock: FakeClock) -> None:
    poster = FilePoster()
    watcher, _ = ended(store, clock, poster, 6)
    [card, note] = [p for p in poster.posts if p.method == "post"]
    assert note.thread_ts == card.ts
    [upload] = poster.uploads
    assert upload["thread_ts"] == card.ts and upload["channel"] == "C1" and upload["filename"] == "timeline-r1.png"
    assert png_size(upload["png"])[0] == 1200
    for _ in range(3):
        cycle(watcher, clock)
    assert len(poster.uploads) == 1 and poster.looked == []
    assert store.files.owed() == 0 and len(store.pictures) == 0


def test_fewer_tasks_than_the_minimum_get_no_picture(store: WatchStore, clock: FakeClock) -> None:
    poster = FilePoster()
    ended(store, clock, poster, 4)
    assert poster.uploads == [] and len(store.pictures) == 0
    assert store.db.execute("SELECT COUNT(*) FROM outbox_files").fetchone()[0] == 0


def test_without_a_card_the_picture_goes_in_the_thread_of_the_notification_itself(store: WatchStore,
                                                                                  clock: FakeClock) -> None:
    poster = FilePoster()
    poster.script["C1"] = [PostResult(ok=False, error="invalid_blocks", permanent=True)] * 2  # the card fails
    ended(store, clock, poster, 5)
    [note] = [p for p in poster.posts if p.method == "post"]
    assert note.thread_ts is None and "ended" in note.message["text"]
    [upload] = poster.uploads
    assert upload["thread_ts"] == note.ts


def test_a_failing_upload_is_retried_then_given_up_without_holding_up_notifications(store: WatchStore,
                                                                                    clock: FakeClock) -> None:
    poster = FilePoster()
    poster.upload_script = [PostResult(ok=False, error="Slack answered 503")] * 2 + [
        PostResult(ok=False, error="not_in_channel", permanent=True, channel_error=True)]
    watcher, wes = ended(store, clock, poster, 6)
    (outbox_id,) = store.db.execute("SELECT outbox_id FROM outbox_files").fetchone()
    assert store.files.status(outbox_id) == ("pending", "Slack answered 503")
    for _ in range(10):
        cycle(watcher, clock)
    assert store.files.status(outbox_id) == ("failed", "not_in_channel")
    assert poster.uploads == []
    # The channel itself is not given up: its next run is told as usual (and its picture tried again).
    wes.states["r2"], wes.tasks["r2"] = "RUNNING", timed(6)
    subscribe(store, clock, "r2")
    cycle(watcher, clock)
    wes.states["r2"] = "EXECUTOR_ERROR"
    cycle(watcher, clock)
    cycle(watcher, clock)
    assert sum("ended" in p.message.get("text", "") for p in poster.posts if p.method == "post") == 2
    assert len(poster.uploads) == 1


@pytest.mark.parametrize(("found", "uploads"), [(True, 0), (False, 1), (None, 1)])
def test_an_upload_cut_short_is_looked_for_before_it_is_made_again(store: WatchStore, clock: FakeClock,
                                                                   found: bool | None, uploads: int) -> None:
    """A crash after Slack gave the file an id: found in the thread, it is not uploaded again; not there, or
    Slack cannot tell (no history scope), it is (at least once rather than never, as for notifications)."""
    poster = FilePoster()
    poster.upload_script = [PostResult(ok=False, error="connection error (ReadTimeout)")]
    watcher, _ = ended(store, clock, poster, 6)
    (outbox_id,) = store.db.execute("SELECT outbox_id FROM outbox_files").fetchone()
    with store.transaction() as db:  # as a kill -9 between the share and its mark leaves it
        db.execute("UPDATE outbox_files SET status = 'uploading', not_before = 0 WHERE outbox_id = ?", [outbox_id])
    poster.found = found
    cycle(watcher, clock)
    assert poster.looked == ["F1"] and len(poster.uploads) == uploads
    assert store.files.status(outbox_id) == ("uploaded", None)


def test_a_burst_of_ends_gets_pictures_within_a_budget(clock: FakeClock) -> None:
    """Reading every task and drawing costs CPU: in a burst, a few notifications a minute get a picture and the
    others go as before, at once; the budget refills with time."""
    runs = [f"b{i}" for i in range(4)]
    wes = StubWes(states=dict.fromkeys(runs, "COMPLETE"), tasks={run: timed(6) for run in runs})
    pictures = Pictures()
    details = Details(wes, pictures=pictures, min_tasks=5, budget=Budget(2, clock.monotonic))
    for run_id in runs:
        outcome, _ = details.outcome(run_id, RunStatus(run_id=run_id, state=parse_state("COMPLETE")))
        assert outcome.state == "COMPLETE"
    assert len(pictures) == 2 and pictures.take("b0", "COMPLETE") is not None
    assert pictures.take("b2", "COMPLETE") is None
    clock.advance(30)  # a token a half minute at 2 a minute
    details.outcome("b3", RunStatus(run_id="b3", state=parse_state("COMPLETE")))
    assert pictures.take("b3", "COMPLETE") is not None


def test_the_table_of_owed_files_is_created(tmp_path: Path) -> None:
    db = open_db(tmp_path / "m.db")
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox_files)").fetchall()}
    assert {"outbox_id", "filename", "title", "png", "status", "attempts", "not_before", "thread_ts", "file_id",
            "error", "uploaded_at"} <= columns
    assert "m010_create_outbox_files" in [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations")]


# -- wesbot ask timeline --------------------------------------------------------------------------------


def test_ask_timeline_writes_the_picture(tmp_path: Path, wes: FakeWes) -> None:
    wes.add_run("cli-t", "COMPLETE", task_logs=tasks(12, untimed=1))
    env = clean_env(WES_URL=wes.url)
    out = run(["ask", "timeline", "cli-t", "--out", str(tmp_path / "t.png")], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "tasks:      13, drawn as 12 bars" in out.stdout and "not drawn:  waiting_0 (no start time)" in out.stdout
    assert "wrote" in out.stderr
    assert png_size((tmp_path / "t.png").read_bytes()) == (1200, png_size((tmp_path / "t.png").read_bytes())[1])
    hint = run(["ask", "timeline", "cli-t"], env, tmp_path)
    assert hint.returncode == 0 and "--out FILE.png" in hint.stdout
    data = json.loads(run(["ask", "--json", "timeline", "cli-t"], env, tmp_path).stdout)
    assert data["kind"] == "timeline" and len(data["read"]["tasks"]) == 13 and data["read"]["complete"] is True


def test_ask_timeline_never_writes_over_a_directory_and_fails_in_one_line(tmp_path: Path, wes: FakeWes) -> None:
    wes.add_run("cli-d", "COMPLETE", task_logs=tasks(2))
    env = clean_env(WES_URL=wes.url)
    (tmp_path / "pics").mkdir()
    out = run(["ask", "timeline", "cli-d", "--out", str(tmp_path / "pics")], env, tmp_path)
    assert out.returncode == 1 and "is a directory" in out.stderr and "timeline-cli-d.png" in out.stderr
    assert list((tmp_path / "pics").iterdir()) == []
    out = run(["ask", "timeline", "cli-d", "--out", str(tmp_path / "missing" / "t.png")], env, tmp_path)
    assert out.returncode == 1 and "could not write the picture" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = run(["ask", "status", "cli-d", "--out", str(tmp_path / "s.png")], env, tmp_path)
    assert out.returncode == 1 and "--out FILE.png is for" in out.stderr
    out = run(["ask", "timeline", "nope", "--out", str(tmp_path / "n.png")], env, tmp_path)
    assert out.returncode == 1 and "not found" in out.stderr and not (tmp_path / "n.png").exists()
