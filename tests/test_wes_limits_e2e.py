"""What wesbot reads from a WES server is bounded, end to end over real HTTP: a total deadline per call (a
server that drips its answer one byte at a time), a size cap per answer (with and without Content-Length),
and redirects only on the configured origin (the other host is never asked, its text never shown)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.botproc import BotProcess, ask_bot, clean_env, run
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes, HttpRequest, LoopbackHTTPServer, Reply, plain_text
from wesbot.wes.client import MAX_BODY, MAX_LARGE_BODY, WesClient
from wesbot.wes.errors import WesProtocolError, WesUnreachable

MiB = 1024 * 1024
SLOW = Reply(200, json.dumps({"run_id": "slow", "state": "RUNNING"}).encode(), "application/json",
             drip_seconds=0.5)


def padded(value: dict[str, object], size: int) -> bytes:
    """A JSON object of about ``size`` bytes: ``value`` with a long string field the client ignores."""
    return json.dumps({**value, "padding": "x" * size}).encode()


def test_a_dripping_answer_fails_at_the_deadline_with_the_real_time(wes: FakeWes) -> None:
    wes.add_run("slow", "RUNNING")
    wes.overrides["/runs/slow/status"] = SLOW
    started = time.monotonic()
    with WesClient(wes.url, timeout=1, connect_timeout=1, deadline=2) as client, \
            pytest.raises(WesUnreachable) as info:
        client.get_status("slow")
    took = time.monotonic() - started
    assert 1.9 <= took < 4, took  # each byte came within the read timeout: only the deadline stops it
    message = str(info.value)
    assert "was still sending its answer" in message and "wesbot waits at most 2 s for one answer" in message


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_status_answer_over_the_cap_is_refused(wes: FakeWes, chunked: bool) -> None:
    wes.add_run("big", "RUNNING")
    wes.overrides["/runs/big/status"] = Reply(200, padded({"run_id": "big", "state": "RUNNING"}, 5 * MiB),
                                              "application/json", chunked=chunked)
    with WesClient(wes.url, retries=0) as client, pytest.raises(WesProtocolError) as info:
        client.get_status("big")
    assert "sent more than 4 MiB" in str(info.value) and "GET /runs/big/status" in str(info.value)
    assert MAX_BODY == 4 * MiB


def test_a_run_list_may_be_larger_but_not_unbounded(wes: FakeWes) -> None:
    page = {"runs": [{"run_id": f"r{i}", "state": "COMPLETE"} for i in range(1000)], "next_page_token": ""}
    wes.overrides["/runs"] = Reply(200, padded(page, 5 * MiB), "application/json", chunked=True)
    with WesClient(wes.url, retries=0) as client:
        assert len(client.list_runs().runs) == 1000
        wes.overrides["/runs"] = Reply(200, padded(page, 17 * MiB), "application/json", chunked=True)
        with pytest.raises(WesProtocolError, match="sent more than 16 MiB"):
            client.list_runs()
    assert MAX_LARGE_BODY == 16 * MiB


def test_a_redirect_to_another_host_is_never_followed_nor_shown() -> None:
    asked: list[HttpRequest] = []

    def internal(request: HttpRequest) -> Reply:
        asked.append(request)
        return plain_text(500, "INTERNAL-ONLY: db password hunter2")

    other = LoopbackHTTPServer(internal)
    other.start()
    try:
        with FakeWes(auth=("alice", "pw-very-secret")) as wes:
            wes.add_run("r1", "RUNNING")
            wes.overrides["/runs/r1/status"] = Reply(302, headers={"Location": f"{other.root_url}/db"})
            with WesClient(wes.url, auth=("alice", "pw-very-secret"), retries=0) as client, \
                    pytest.raises(WesProtocolError) as info:
                client.get_status("r1")
    finally:
        other.stop()
    assert asked == []
    assert "redirected GET /runs/r1/status to another host" in str(info.value)
    assert "hunter2" not in str(info.value) and "INTERNAL-ONLY" not in str(info.value)


def test_ask_status_on_a_dripping_server_answers_within_wesbot_wes_timeout(tmp_path: Path, wes: FakeWes) -> None:
    wes.add_run("slow", "RUNNING")
    wes.overrides["/runs/slow/status"] = SLOW
    started = time.monotonic()
    out = run(["ask", "status", "slow"], clean_env(WES_URL=wes.url, WESBOT_WES_TIMEOUT="2"), tmp_path)
    took = time.monotonic() - started
    assert out.returncode == 1 and took < 10, (took, out.stderr)
    assert "was still sending its answer" in out.stderr and "Traceback" not in out.stderr


def test_one_dripping_run_holds_back_another_runs_notification_at_most_one_deadline(
        wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("slow", "RUNNING")
    wes.add_run("quick", "RUNNING")
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir,
                     extra_env={"WESBOT_POLL_SECONDS": "0.3", "WESBOT_WES_TIMEOUT": "3"})
    bot.wait_http_ready()
    try:
        for run_id in ("slow", "quick"):
            assert "Watching run" in ask_bot(bot, slack, f"subscribe {run_id}", name=run_id)["text"]
        wes.overrides["/runs/slow/status"] = SLOW  # from now on every poll of "slow" drips
        time.sleep(1)  # the watcher is now inside a dripping poll
        wes.set_state("quick", "COMPLETE", exit_code=0)
        started = time.monotonic()
        slack.wait_for(lambda: any("quick" in c["args"].get("text", "") and "ended" in c["args"].get("text", "")
                                   for c in slack.calls_to("chat.postMessage")) or None,
                       timeout=20, what="the quick run's notification")
        # Polls run in parallel, and the cycle that waits for the dripping poll ends at its deadline (3 s):
        # without one, the quick run's end waited for the whole dripping answer (about 20 s here).
        assert time.monotonic() - started < 3 + 1.5
    finally:
        wes.overrides.clear()
        assert bot.stop() == 0
