"""Run links that unfurl: which links are runs' (a table), the half-hour rule per run, channel and server (on a
fake clock), what an unfurl shows (valid Block Kit, hostile WES text inert), and the real `wesbot serve` answering
``link_shared`` with one ``chat.unfurl`` over HTTP and over Socket Mode."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.botproc import BotProcess
from tests.fakes.fake_slack import FakeSlack, events_api_payload, signed_request_headers
from tests.fakes.fake_wes import FakeWes
from tests.test_block_kit_models import block_kit_problems
from wesbot.slack.deps import ServerDeps
from wesbot.slack.poster import PostResult
from wesbot.slack.unfurl import LinkUnfurler, parse_link, patterns, render_unfurl
from wesbot.store.unfurls import WINDOW
from wesbot.store.watch import WatchStore
from wesbot.wes.client import WesClient
from wesbot.wes.models import Log, RunLog, RunRequest, RunState, RunStatus

PROD = "https://wes.example.org/ga4gh/wes/v1"
DEV = "http://127.0.0.1:8080/ga4gh/wes/v1/"  # a trailing slash, a port
SERVERS = [("prod", PROD, "https://ui.example.org/runs/{run_id}"),
           ("dev", DEV, "https://ui.example.org/dev?run={run_id}")]
NOW = 1_800_000_000.0
LONG = "a" * 256


# -- which links are runs' ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    (f"{PROD}/runs/abc", ("prod", "abc")),
    (f"{PROD}/runs/abc/status", ("prod", "abc")),
    (f"{PROD}/runs/abc/", ("prod", "abc")),
    (f"{PROD}/runs/abc/status/", ("prod", "abc")),
    (f"{PROD}/runs/abc?page_size=1#top", ("prod", "abc")),
    ("HTTPS://WES.Example.ORG:443/ga4gh/wes/v1/runs/abc", ("prod", "abc")),
    (f"{PROD}/runs/a%2Fb", ("prod", "a/b")),
    (f"{PROD}/runs/caf%C3%A9", ("prod", "café")),
    (f"{PROD}/runs/{LONG}", ("prod", LONG)),
    ("http://127.0.0.1:8080/ga4gh/wes/v1/runs/r1", ("dev", "r1")),
    ("https://ui.example.org/runs/abc", ("prod", "abc")),
    ("https://ui.example.org/runs/abc?tab=tasks", ("prod", "abc")),
    ("https://ui.example.org/dev?run=abc", ("dev", "abc")),
    ("https://ui.example.org/dev?run=abc&tab=1", ("dev", "abc")),
    (f"{PROD}/runs/{LONG}b", None),  # too long
    (f"{PROD}/runs/", None),  # empty
    (f"{PROD}/runs//status", None),
    (f"{PROD}/runs/..", None),
    (f"{PROD}/runs/a%20b", None),  # a space: no typed id has one
    (f"{PROD}/runs/a%0Ab", None),  # a control character
    (f"{PROD}/runs/%FF", None),  # not UTF-8
    (f"{PROD}/runs/abc/tasks", None),
    (f"{PROD}/runs/abc/status/more", None),
    (PROD, None),
    ("https://wes.example.org.evil.com/ga4gh/wes/v1/runs/abc", None),  # a lookalike host
    ("https://wes.example.org@evil.com/ga4gh/wes/v1/runs/abc", None),  # the host is evil.com
    ("https://evil.com/ga4gh/wes/v1/runs/abc", None),
    ("http://wes.example.org/ga4gh/wes/v1/runs/abc", None),  # another scheme
    ("https://wes.example.org:8443/ga4gh/wes/v1/runs/abc", None),  # another port
    ("http://127.0.0.1:8081/ga4gh/wes/v1/runs/r1", None),
    ("https://wes.example.org/other/wes/v1/runs/abc", None),  # another path prefix
    ("https://wes.example.org/ga4gh/wes/v2/runs/abc", None),
    ("https://ui.example.org/runs/abc/def", None),
    ("https://ui.example.org/dev?other=abc", None),
    ("https://ui.example.org/other/abc", None),
    ("mailto:someone@wes.example.org", None),
    ("not a url", None),
    ("", None),
    ("https://[::1/runs/abc", None),  # does not parse
])
def test_which_links_are_runs(url: str, expected: tuple[str, str] | None) -> None:
    assert parse_link(url, patterns(SERVERS)) == expected


def test_a_template_with_the_id_twice_needs_the_same_id_twice() -> None:
    known = patterns([("p", None, "https://ui.example.org/{run_id}/view/{run_id}")])
    assert parse_link("https://ui.example.org/r1/view/r1", known) == ("p", "r1")
    assert parse_link("https://ui.example.org/r1/view/r2", known) is None


def test_a_server_without_a_template_matches_its_urls_only() -> None:
    known = patterns([("p", PROD, None)])
    assert parse_link(f"{PROD}/runs/abc", known) == ("p", "abc")
    assert parse_link("https://ui.example.org/runs/abc", known) is None


# -- the half-hour rule ---------------------------------------------------------------------------------------

@pytest.fixture
def prod(tmp_path: Path) -> WatchStore:
    return WatchStore(tmp_path / "u.db", server="prod", url=PROD)


def test_a_run_unfurls_once_per_channel_per_half_hour(prod: WatchStore) -> None:
    claims = prod.unfurls
    assert claims.claim("r1", "C1", now=NOW)
    assert not claims.claim("r1", "C1", now=NOW + 1)
    assert not claims.claim("r1", "C1", now=NOW + WINDOW - 1)
    assert claims.claim("r1", "C1", now=NOW + WINDOW)
    assert not claims.claim("r1", "C1", now=NOW + WINDOW + 60)  # the new claim counts from now
    # per channel, per run, per server
    assert claims.claim("r1", "C2", now=NOW + 1)
    assert claims.claim("r2", "C1", now=NOW + 1)
    dev = prod.scoped("dev", DEV)
    assert dev.unfurls.claim("r1", "C1", now=NOW + 1)
    assert not dev.unfurls.claim("r1", "C1", now=NOW + 2)


def test_a_released_claim_lets_the_next_link_unfurl(prod: WatchStore) -> None:
    claims = prod.unfurls
    assert claims.claim("r1", "C1", now=NOW)
    claims.release("r1", "C1", at=NOW - 5)  # not this claim: kept
    assert not claims.claim("r1", "C1", now=NOW + 1)
    claims.release("r1", "C1", at=NOW)
    assert claims.claim("r1", "C1", now=NOW + 2)


def test_a_claim_from_a_clock_set_back_no_longer_counts(prod: WatchStore) -> None:
    assert prod.unfurls.claim("r1", "C1", now=NOW + 10 * WINDOW)
    assert prod.unfurls.claim("r1", "C1", now=NOW)


def test_the_rule_holds_across_restarts_and_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first = WatchStore(path, server="prod", url=PROD)
    assert first.unfurls.claim("r1", "C1", now=NOW)
    first.close()
    again = WatchStore(path, server="prod", url=PROD)
    assert not again.unfurls.claim("r1", "C1", now=NOW + 60)
    # Many claimants at once, each with its own connection: exactly one wins.
    results: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        store = WatchStore(path, server="prod", url=PROD)
        won = store.unfurls.claim("r2", "C1", now=NOW)
        store.close()
        with lock:
            results.append(won)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_old_rows_are_pruned_as_claims_come(prod: WatchStore) -> None:
    for index in range(150):
        assert prod.unfurls.claim(f"old-{index}", "C1", now=NOW)
    later = NOW + WINDOW + 1
    prod.unfurls.claim("new-1", "C1", now=later)
    prod.unfurls.claim("new-2", "C1", now=later)

    def count() -> int:
        return int(prod.db.execute("SELECT COUNT(*) FROM unfurls").fetchone()[0])

    assert count() == 2
    other = prod.scoped("dev", DEV)  # another server's old rows are its own claims' to prune
    assert other.unfurls.claim("x", "C1", now=NOW)
    assert prod.unfurls.claim("new-3", "C1", now=later)
    assert count() == 4


# -- what an unfurl shows ---------------------------------------------------------------------------------------

HOSTILE = "<!channel> <@U123> <https://evil.example|click> `tick` *bold*"


def _run(state: str, **log: Any) -> RunLog:
    return RunLog(run_id="r1", state=RunState(state), request=RunRequest(workflow_url=f"https://x/{HOSTILE}.cwl"),
                  run_log=Log(**log))


def test_an_unfurl_is_compact_valid_block_kit_and_inert() -> None:
    run = _run("RUNNING", start_time="2026-01-01T10:00:00Z")
    blocks = render_unfurl(RunStatus(run_id=HOSTILE, state=RunState.RUNNING), run, server=f"prod ({HOSTILE})")
    assert block_kit_problems({"text": "unfurl", "blocks": blocks}) == []
    text = json.dumps(blocks)
    assert "<!channel>" not in text and "<@U123>" not in text and "<https://evil" not in text
    assert ":hourglass_flowing_sand:" in text and "*RUNNING*" in text and "*Workflow:*" in text
    assert "<!date^1767261600^" in text and "so far" in text
    assert blocks[-1]["type"] == "context" and "WES server: prod" in text


def test_an_ended_run_shows_how_long_it_took_and_its_exit_code() -> None:
    run = _run("COMPLETE", start_time="2026-01-01T10:00:00Z", end_time="2026-01-01T10:07:15Z", exit_code=3)
    blocks = render_unfurl(RunStatus(run_id="r1", state=RunState.COMPLETE), run)
    text = json.dumps(blocks)
    assert ":warning:" in text and "COMPLETE (exit 3)" in text and "7m 15s" in text and "so far" not in text
    assert len(blocks) == 1  # one server: no server line
    assert block_kit_problems({"text": "unfurl", "blocks": blocks}) == []


def test_without_the_run_log_the_state_alone() -> None:
    blocks = render_unfurl(RunStatus(run_id="r1", state=RunState.CANCELED), None)
    assert blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": ":no_entry_sign: Run `r1` is *CANCELED*"}}]


# -- one event, in process ---------------------------------------------------------------------------------------

class Recorder:
    def __init__(self, answer: PostResult | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.answer = answer or PostResult(ok=True)

    def __call__(self, channel: str, ts: str, unfurls: dict[str, dict[str, Any]]) -> PostResult:
        self.calls.append((channel, ts, unfurls))
        return self.answer


def link_shared(*urls: str, channel: str = "C1", ts: str = "1700000000.000100", **extra: Any) -> dict[str, Any]:
    return {"type": "link_shared", "channel": channel, "user": "U1", "message_ts": ts,
            "unfurl_id": f"{channel}.{ts}.x", "source": "conversations_history", "event_ts": ts,
            "links": [{"domain": httpx.URL(url).host, "url": url} for url in urls], **extra}


@pytest.fixture
def two_servers(tmp_path: Path, wes: FakeWes) -> Iterator[tuple[list[ServerDeps], FakeWes]]:
    with FakeWes(base_path="/other/v1") as other:
        store = WatchStore(tmp_path / "e.db", server="one", url=wes.url)
        with WesClient(wes.url, deadline=3) as one_client, WesClient(other.url, deadline=3) as two_client:
            servers = [ServerDeps(name="one", wes=one_client, host=one_client.host, store=store),
                       ServerDeps(name="two", wes=two_client, host=two_client.host,
                                  store=store.scoped("two", other.url), run_url="https://ui.example.org/two/{run_id}")]
            yield servers, other


def test_several_servers_each_named_in_their_unfurls(two_servers: tuple[list[ServerDeps], FakeWes],
                                                       wes: FakeWes) -> None:
    servers, other = two_servers
    wes.add_run("same-id", "RUNNING")
    other.add_run("same-id", "EXECUTOR_ERROR")
    post = Recorder()
    unfurler = LinkUnfurler(servers, unfurl=post, label=lambda s: f"{s.name} ({s.host})", several=True)
    first, second = f"{wes.url}/runs/same-id", "https://ui.example.org/two/same-id"
    assert unfurler.handle(link_shared(first, second, "https://example.org/unrelated")) == 2
    [(channel, ts, unfurls)] = post.calls
    assert (channel, ts) == ("C1", "1700000000.000100") and list(unfurls) == [first, second]
    assert "RUNNING" in json.dumps(unfurls[first]) and f"one (127.0.0.1:{wes.port})" in json.dumps(unfurls[first])
    assert ":x:" in json.dumps(unfurls[second]) and "two (" in json.dumps(unfurls[second])


def test_composer_links_and_unknown_links_cost_nothing(two_servers: tuple[list[ServerDeps], FakeWes],
                                                        wes: FakeWes) -> None:
    servers, _ = two_servers
    wes.add_run("r1", "RUNNING")
    post = Recorder()
    unfurler = LinkUnfurler(servers, unfurl=post)
    before = len(wes.requests)
    assert unfurler.handle(link_shared(f"{wes.url}/runs/r1", channel="COMPOSER", source="composer")) == 0
    assert unfurler.handle(link_shared("https://example.org/runs/r1")) == 0
    assert unfurler.handle({"type": "link_shared", "links": "nonsense"}) == 0
    assert post.calls == [] and len(wes.requests) == before


def test_slack_refusing_gives_the_claims_back(two_servers: tuple[list[ServerDeps], FakeWes], wes: FakeWes) -> None:
    servers, _ = two_servers
    wes.add_run("r1", "QUEUED")
    refused = Recorder(PostResult(ok=False, error="cannot_unfurl_url", permanent=True))
    assert LinkUnfurler(servers, unfurl=refused).handle(link_shared(f"{wes.url}/runs/r1")) == 0
    post = Recorder()
    assert LinkUnfurler(servers, unfurl=post).handle(link_shared(f"{wes.url}/runs/r1")) == 1
    assert LinkUnfurler(servers, unfurl=post).handle(link_shared(f"{wes.url}/runs/r1")) == 0  # now it holds
    assert len(post.calls) == 1


def test_a_ghost_unfurls_to_nothing(two_servers: tuple[list[ServerDeps], FakeWes], wes: FakeWes) -> None:
    """The reference server answers RUNNING for any id: the core's ghost rule leaves such a link out."""
    servers, _ = two_servers
    wes.ghost_running = True
    wes.add_run("real", "RUNNING")
    post = Recorder()
    unfurler = LinkUnfurler(servers, unfurl=post)
    assert unfurler.handle(link_shared(f"{wes.url}/runs/real", f"{wes.url}/runs/never-ran/status")) == 1
    [(_, _, unfurls)] = post.calls
    assert list(unfurls) == [f"{wes.url}/runs/real"]
    statuses = [p for p in wes.request_paths("GET") if p.endswith("/status")]
    assert sorted(statuses) == ["/runs/never-ran/status", "/runs/real/status"]  # one status call per run
    assert wes.request_paths("GET").count("/runs/real") == 1  # its run log read once: ghost check and unfurl


# -- the manifest ----------------------------------------------------------------------------------------------

def test_every_subscribed_event_has_a_listener_and_unfurl_domains_are_there() -> None:
    from slack_bolt import BoltRequest, BoltResponse

    from tests.test_manifest import _listeners, manifest

    listed = manifest()
    assert listed["features"]["unfurl_domains"]
    events = listed["settings"]["event_subscriptions"]["bot_events"]
    assert "link_shared" in events
    for name in events:
        body = json.dumps(events_api_payload({"type": name, "channel": "C1", "message_ts": "1.2", "links": []}))
        request = BoltRequest(body=body, headers={"content-type": ["application/json"]})
        assert any(listener.matches(req=request, resp=BoltResponse(status=200)) for listener in _listeners()), name


# -- end to end ------------------------------------------------------------------------------------------------

def send_event(bot: BotProcess, event: dict[str, Any]) -> httpx.Response:
    """POST an Events API callback to the bot, JSON and signed, as Slack sends it in HTTP mode."""
    body = json.dumps(events_api_payload(event)).encode()
    headers = signed_request_headers(body, content_type="application/json")
    return httpx.post(bot.url + "/slack/events", content=body, headers=headers, timeout=10)


def unfurled(slack: FakeSlack, count: int = 1) -> dict[str, Any]:
    call = slack.wait_for_call("chat.unfurl", count=count, timeout=10)
    assert call["response"] == {"ok": True}
    unfurls: dict[str, Any] = call["args"]["unfurls"]
    return {"channel": call["args"]["channel"], "ts": call["args"]["ts"], "unfurls": unfurls}


def test_end_to_end_over_http(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("e2e-1", "RUNNING", start_time="2026-01-01T10:00:00Z")
    wes.add_run("e2e-2", "COMPLETE", start_time="2026-01-01T10:00:00Z", end_time="2026-01-01T10:07:15Z")
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, workdir=workdir)
    try:
        bot.wait_http_ready()
        links = [f"{wes.url}/runs/e2e-1", f"{wes.url}/runs/e2e-2/status", f"{wes.url}/runs/no-such-run"]
        started = time.monotonic()
        assert send_event(bot, link_shared(*links)).status_code == 200
        assert time.monotonic() - started < 2.5  # acked at once, the lookups come after
        got = unfurled(slack)
        assert (got["channel"], got["ts"]) == ("C1", "1700000000.000100")
        assert list(got["unfurls"]) == links[:2]
        first, second = (json.dumps(got["unfurls"][url]) for url in links[:2])
        assert "e2e-1" in first and "*RUNNING*" in first and "echo.cwl" in first
        assert "e2e-2" in second and "*COMPLETE (exit 0)*" in second and "7m 15s" in second
        for url in links[:2]:
            assert block_kit_problems({"text": "u", "blocks": got["unfurls"][url]["blocks"]}) == []
        # The same links again, in another message of the same channel: nothing; a new run still unfurls.
        assert send_event(bot, link_shared(*links, ts="1700000001.000100")).status_code == 200
        wes.add_run("e2e-3", "QUEUED")
        assert send_event(bot, link_shared(f"{wes.url}/runs/e2e-3", ts="1700000002.000100")).status_code == 200
        assert list(unfurled(slack, count=2)["unfurls"]) == [f"{wes.url}/runs/e2e-3"]
        # Another channel is another channel.
        assert send_event(bot, link_shared(links[0], channel="C2")).status_code == 200
        assert list(unfurled(slack, count=3)["unfurls"]) == [links[0]]
        time.sleep(0.5)
        assert len(slack.calls_to("chat.unfurl")) == 3
    finally:
        assert bot.stop() == 0
    assert "Traceback" not in bot.log_text()


def test_end_to_end_over_socket_mode(wes: FakeWes, slack: FakeSlack, workdir: str) -> None:
    wes.add_run("sock-1", "SYSTEM_ERROR")
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=False, workdir=workdir)
    try:
        slack.wait_connected(timeout=20)
        link = f"{wes.url}/runs/sock-1"
        envelope = slack.send_envelope("events_api", events_api_payload(link_shared(link, f"{wes.url}/runs/nope")))
        assert not slack.wait_for_ack(envelope, timeout=5).get("payload")
        got = unfurled(slack)
        assert list(got["unfurls"]) == [link] and ":x:" in json.dumps(got["unfurls"][link])
    finally:
        assert bot.stop() == 0
    assert "Traceback" not in bot.log_text()


def test_wes_down_unfurls_nothing_and_the_bot_goes_on(slack: FakeSlack, workdir: str) -> None:
    down = "http://127.0.0.1:9/ga4gh/wes/v1"
    bot = BotProcess(wes_url=down, slack_api_url=slack.api_url, http=True, workdir=workdir)
    try:
        bot.wait_http_ready()
        assert send_event(bot, link_shared(f"{down}/runs/r1", f"{down}/runs/r2/status")).status_code == 200
        deadline = time.monotonic() + 10
        while bot.log_text().count("unfurls to nothing") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bot.log_text().count("unfurls to nothing") == 2, bot.log_text()
        assert slack.calls_to("chat.unfurl") == []
        assert httpx.get(bot.url + "/healthz", timeout=2).status_code == 200
    finally:
        assert bot.stop() == 0
    assert "Traceback" not in bot.log_text()
