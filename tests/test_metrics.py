"""Prometheus metrics: scraped over HTTP from the real `wesbot serve --http` and `wesbot watch`, parsed with
prometheus_client's own parser, and moving as commands run and notifications go out; then each observe
function on a fresh registry, the store's figures read at scrape time, and the URL scrubbing."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.botproc import BotProcess, ask_bot, clean_env, free_port, post_signed, run
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack, slash_command_payload
from tests.fakes.fake_wes import FakeWes
from tests.fakes.watching import FakeClock, subscribe
from wesbot import observe
from wesbot.metrics import Metrics
from wesbot.observe import label, scrub_text, scrub_url, server_label
from wesbot.store.watch import WatchStore
from wesbot.store.watches import WatchesStore

FAST = {"WESBOT_POLL_SECONDS": "0.3", "WESBOT_LEASE_SECONDS": "2"}
WES_USER, WES_PASSWORD = "wesbot", "pw-7f3a-never-shown"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, Samples]:
    """GET /metrics, parsed: (the text, {(sample name, labels): value})."""
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wait_scrape(url: str, ready: Callable[[Samples], bool], timeout: float = 15.0) -> tuple[str, Samples]:
    """Scrape until ``ready`` (a figure is updated just after the answer that a test waits for is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        text, samples = scrape(url)
        if ready(samples):
            return text, samples
        if time.monotonic() > deadline:
            raise AssertionError(f"the metrics never got there:\n{text}")
        time.sleep(0.1)


def no_secrets(text: str) -> None:
    for secret in (WES_PASSWORD, BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, "xoxb-", "xapp-"):
        assert secret not in text


# -- end to end ------------------------------------------------------------------------------------

def test_serve_http_metrics_move_with_a_command_and_a_notification(wes: FakeWes, slack: FakeSlack) -> None:
    wes.auth = (WES_USER, WES_PASSWORD)
    wes.add_run("m1", "RUNNING", request={"workflow_url": "https://x/align.cwl", "workflow_type": "CWL",
                                          "workflow_type_version": "v1.0"})
    started = time.time()
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True, wes_auth=f"{WES_USER}:{WES_PASSWORD}",
                     extra_env=FAST)
    url, host = f"{bot.url}/metrics", f"127.0.0.1:{wes.port}"
    try:
        bot.wait_http_ready()
        text, before = wait_scrape(url, lambda s: value(s, "wesbot_lease_held") == 1)
        assert value(before, "wesbot_commands_total", command="status", outcome="ok") is None
        assert value(before, "wesbot_watched_runs", server=host) == 0
        assert value(before, "wesbot_outbox_pending") == 0
        assert value(before, "wesbot_info", version="0.1.0") == 1

        assert "RUNNING" in ask_bot(bot, slack, "status m1")["text"]
        assert post_signed(bot, slash_command_payload("frobnicate m1", response_url=slack.response_url("x")))\
            .status_code == 200  # a usage mistake, answered in the ack
        _, after = wait_scrape(url, lambda s: value(s, "wesbot_commands_total", command="status", outcome="ok") == 1
                               and value(s, "wesbot_commands_total", command="unknown", outcome="usage") == 1)
        assert value(after, "wesbot_command_seconds_count", command="status") == 1
        assert (value(after, "wesbot_wes_requests_total", server=host, call="status", outcome="ok") or 0) >= 1
        assert (value(after, "wesbot_wes_request_seconds_count", server=host, call="status") or 0) >= 1

        assert "Watching run `m1`" in ask_bot(bot, slack, "subscribe m1")["text"]
        slack.wait_for_call("chat.postMessage", timeout=10)  # the card
        _, watching = wait_scrape(url, lambda s: value(s, "wesbot_watched_runs", server=host) == 1)
        assert value(watching, "wesbot_notifications_sent_total", kind="notification") is None

        wes.set_state("m1", "COMPLETE", exit_code=0)
        slack.wait_for(lambda: any(c["args"].get("thread_ts") for c in slack.calls_to("chat.postMessage")) or None,
                       timeout=15, what="the notification")
        text, done = wait_scrape(url, lambda s: value(s, "wesbot_notifications_sent_total", kind="notification") == 1)
        assert value(done, "wesbot_notification_delay_seconds_count") == 1
        assert 0 <= (value(done, "wesbot_notification_delay_seconds_sum") or -1) < 15
        assert value(done, "wesbot_outbox_pending") == 0 and value(done, "wesbot_outbox_oldest_pending_seconds") == 0
        assert value(done, "wesbot_watched_runs", server=host) == 0
        assert (value(done, "wesbot_last_poll_timestamp_seconds", server=host) or 0) >= started
        assert value(done, "wesbot_wes_unreachable", server=host) is None  # never down
        no_secrets(text)
        assert "m1" not in text and "U123" not in text  # no run or user ids in labels
    finally:
        assert bot.stop() == 0


def test_watch_serves_metrics_on_its_port_and_a_taken_port_is_one_line(wes: FakeWes, slack: FakeSlack,
                                                                       workdir: str) -> None:
    port = free_port()
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=False, command="watch", workdir=workdir,
                     extra_env={**FAST, "WESBOT_METRICS_PORT": str(port)})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                text, samples = scrape(f"http://127.0.0.1:{port}/metrics")
                if value(samples, "wesbot_lease_held") == 1:
                    break
            except httpx.TransportError:
                pass
            assert bot.proc.poll() is None, bot.log_text()
            assert time.monotonic() < deadline, bot.log_text()
            time.sleep(0.1)
        assert value(samples, "wesbot_outbox_pending") == 0
        assert value(samples, "wesbot_last_poll_timestamp_seconds", server=f"127.0.0.1:{wes.port}") is not None
        no_secrets(text)
    finally:
        assert bot.stop() == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env = clean_env(WES_URL=wes.url, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=BOT_TOKEN,
                        WESBOT_DB=str(Path(workdir) / "other.db"))
        done = run(["watch", "--metrics-port", f"127.0.0.1:{busy}"], env, Path(workdir))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("wesbot: cannot serve metrics on 127.0.0.1:") and "Traceback" not in done.stderr


def test_socket_mode_serves_metrics_on_the_metrics_port(wes: FakeWes, slack: FakeSlack) -> None:
    port = free_port()
    bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=False,
                     extra_env={**FAST, "WESBOT_METRICS_PORT": f"127.0.0.1:{port}"})
    try:
        slack.wait_connected(timeout=20)
        text, samples = wait_scrape(f"http://127.0.0.1:{port}/metrics",
                                    lambda s: value(s, "wesbot_lease_held") == 1)
        assert value(samples, "wesbot_watched_runs", server=f"127.0.0.1:{wes.port}") == 0
        no_secrets(text)
    finally:
        assert bot.stop() == 0


# -- the observe functions, each on a fresh registry -----------------------------------------------

@pytest.fixture
def m() -> Metrics:
    return Metrics()


def sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_command(m: Metrics) -> None:
    observe.command("U1", "C1", "status", "wes.test", "ok", 0.25, metrics=m)
    observe.command("U1", "C1", "status", "wes.test", "wes", 2.0, metrics=m)
    assert sample(m, "wesbot_commands_total", command="status", outcome="ok") == 1
    assert sample(m, "wesbot_commands_total", command="status", outcome="wes") == 1
    assert sample(m, "wesbot_command_seconds_count", command="status") == 2
    assert sample(m, "wesbot_command_seconds_sum", command="status") == 2.25


def test_notification(m: Metrics) -> None:
    observe.notification("notification", "C1", "r1", "sent", 2.5, metrics=m)
    observe.notification("notice", "C1", "r1", "sent", 9.0, metrics=m)  # not a run's end: no delay observed
    observe.notification("notification", "C2", "r2", "given_up", None, error="not_in_channel", metrics=m)
    observe.notification("notification", "C3", "r3", "retry", None, error="rate limited (429)", metrics=m)
    assert sample(m, "wesbot_notifications_sent_total", kind="notification") == 1
    assert sample(m, "wesbot_notifications_sent_total", kind="notice") == 1
    assert sample(m, "wesbot_notification_delay_seconds_count") == 1
    assert sample(m, "wesbot_notification_delay_seconds_sum") == 2.5
    assert sample(m, "wesbot_notification_delay_seconds_bucket", le="5.0") == 1
    assert sample(m, "wesbot_notifications_given_up_total", kind="notification") == 1
    assert sample(m, "wesbot_notification_retries_total", kind="notification") == 1


def test_cancel(m: Metrics) -> None:
    observe.cancel("U1", "C1", "r1", "requested", seconds=0.1, metrics=m)
    observe.cancel("U1", "C1", "r1", "wes-error", metrics=m)
    assert sample(m, "wesbot_cancels_total", outcome="requested") == 1
    assert sample(m, "wesbot_commands_total", command="cancel_click", outcome="ok") == 1
    assert sample(m, "wesbot_commands_total", command="cancel_click", outcome="wes") == 1
    assert sample(m, "wesbot_command_seconds_count", command="cancel_click") == 1


def test_wes_request_labels_the_host_never_the_url(m: Metrics) -> None:
    observe.wes_request("https://u:secret@wes.example.org:8443/ga4gh/wes/v1?token=t", "status", "ok", 0.02,
                        metrics=m)
    observe.wes_request("wes.example.org:8443", "status", "http_5xx", 1.0, metrics=m)
    host = "wes.example.org:8443"
    assert sample(m, "wesbot_wes_requests_total", server=host, call="status", outcome="ok") == 1
    assert sample(m, "wesbot_wes_requests_total", server=host, call="status", outcome="http_5xx") == 1
    assert sample(m, "wesbot_wes_request_seconds_count", server=host, call="status") == 2
    assert b"secret" not in m.exposition() and b"token" not in m.exposition()


def test_wes_outage(m: Metrics) -> None:
    observe.wes_outage("wes.test", True, "could not connect", metrics=m)
    assert sample(m, "wesbot_wes_unreachable", server="wes.test") == 1
    observe.wes_outage("wes.test", False, seconds=30, metrics=m)
    assert sample(m, "wesbot_wes_unreachable", server="wes.test") == 0


def test_slack_error(m: Metrics) -> None:
    observe.slack_error("chat.postMessage", "not_in_channel", metrics=m)
    observe.slack_error("chat.postMessage", "http_503", metrics=m)
    assert sample(m, "wesbot_slack_api_errors_total", method="chat.postmessage", error="not_in_channel") == 1
    assert sample(m, "wesbot_slack_api_errors_total", method="chat.postmessage", error="http_503") == 1


def test_lease_and_poll_completed(m: Metrics) -> None:
    observe.lease(True, metrics=m)
    assert sample(m, "wesbot_lease_held") == 1
    observe.lease(False, metrics=m)
    assert sample(m, "wesbot_lease_held") == 0
    observe.poll_completed("wes.test", 1_800_000_000.0, metrics=m)
    assert sample(m, "wesbot_last_poll_timestamp_seconds", server="wes.test") == 1_800_000_000.0


def test_the_store_figures_are_read_at_scrape_time(m: Metrics, store: WatchStore, clock: FakeClock) -> None:
    watches = WatchesStore(store)
    m.track_store(store, watches, server="wes.test", clock=clock.now)
    assert sample(m, "wesbot_watched_runs", server="wes.test") == 0
    assert sample(m, "wesbot_outbox_oldest_pending_seconds") == 0
    subscribe(store, clock, "r1")
    subscribe(store, clock, "r1", user="U2")
    subscribe(store, clock, "r2", channel="C2")
    watches.add(channel_id="C1", kind="failed", tag_key="", tag_value="", user_id="U1", now=clock.now())
    store.outbox.notice_once("test:1", channel_id="C1", payload={"text": "hi"}, now=clock.now())
    clock.advance(42)
    assert sample(m, "wesbot_watched_runs", server="wes.test") == 2
    assert sample(m, "wesbot_channel_watches", server="wes.test") == 1
    assert sample(m, "wesbot_outbox_pending") == 1
    assert sample(m, "wesbot_outbox_oldest_pending_seconds") == 42
    [row] = store.outbox.deliverable(clock.now())
    store.outbox.mark_sent(row.id, ts="1.2", now=clock.now())
    store.subscriptions.unsubscribe(run_id="r2", channel_id="C2", user_id="U1")
    assert sample(m, "wesbot_outbox_pending") == 0 and sample(m, "wesbot_outbox_oldest_pending_seconds") == 0
    assert sample(m, "wesbot_watched_runs", server="wes.test") == 1


def test_tracking_another_store_replaces_the_first(m: Metrics, store: WatchStore, clock: FakeClock,
                                                   tmp_path: Path) -> None:
    subscribe(store, clock, "r1")
    m.track_store(store, server="wes.test")
    m.track_store(WatchStore(tmp_path / "other.db"), server="wes.test")
    assert sample(m, "wesbot_watched_runs", server="wes.test") == 0
    assert sample(m, "wesbot_channel_watches", server="wes.test") is None  # no watches repository given


# -- never a credential ----------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "scrubbed"), [
    ("https://user:pw@wes.example.org:8443/ga4gh/wes/v1/runs?token=abc#frag", "https://wes.example.org:8443/ga4gh/wes/v1/runs"),
    ("https://wes.example.org/ga4gh/wes/v1", "https://wes.example.org/ga4gh/wes/v1"),
    ("https://s3.example.org/bucket/log.txt?X-Amz-Signature=deadbeef", "https://s3.example.org/bucket/log.txt"),
    ("http://token@host/x", "http://host/x"),
    ("host.example.org/path?sig=1", "host.example.org/path"),
    ("http://[::1", "[url]"),
])
def test_scrub_url(url: str, scrubbed: str) -> None:
    assert scrub_url(url) == scrubbed


def test_scrub_text_scrubs_every_url_in_it() -> None:
    text = "could not read https://u:hunter2@logs.example.org/a?sig=s3cr3t\nthen http://h/?k=v giving up"
    assert scrub_text(text) == "could not read https://logs.example.org/a then http://h/ giving up"
    assert len(scrub_text("x" * 1000)) == 300


@pytest.mark.parametrize(("server", "shown"), [
    ("wes.example.org", "wes.example.org"),
    ("127.0.0.1:8080", "127.0.0.1:8080"),
    ("https://u:p@WES.example.org:8443/ga4gh/wes/v1?t=1", "wes.example.org:8443"),
    ("u:p@wes.example.org", "wes.example.org"),
    ("", "unknown"),
])
def test_server_label(server: str, shown: str) -> None:
    assert server_label(server) == shown


def test_labels_are_bounded() -> None:
    assert label("Rate limited (429)") == "rate_limited_429"
    assert len(label("x" * 500)) == 64
    assert label(None) == "none" and label("  ", default="unknown") == "unknown"
