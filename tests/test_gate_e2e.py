"""End to end in HTTP mode: what reaches wesbot unsigned, oversized, malformed or with a foreign response_url.

The real `wesbot serve --http` process on loopback; the fake Slack records every POST to its response_urls, so
"nothing was sent" is something the tests can see fail.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.botproc import BotProcess, post_signed
from tests.fakes.fake_slack import (
    SIGNING_SECRET,
    FakeSlack,
    block_actions_payload,
    form_body,
    signed_request_headers,
    slash_command_payload,
)
from tests.fakes.fake_wes import FakeWes
from wesbot.slack.blocks import ACTION_RUN


@pytest.fixture(scope="module")
def fake_wes() -> Iterator[FakeWes]:
    with FakeWes() as wes:
        yield wes


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[FakeSlack]:
    """Another host ("localhost" is not SLACK_API_URL's 127.0.0.1): a response_url there is never answered."""
    with FakeSlack() as slack:
        yield slack


@pytest.fixture(scope="module")
def bot(fake_wes: FakeWes, fake_slack: FakeSlack) -> Iterator[BotProcess]:
    proc = BotProcess(wes_url=fake_wes.url, slack_api_url=fake_slack.api_url, http=True)
    try:
        proc.wait_http_ready()
        yield proc
    finally:
        proc.stop()


def post_raw(bot: BotProcess, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(bot.url + "/slack/events", content=body, headers=headers, timeout=10)


def payloads(slack: FakeSlack, name: str, host: str = "127.0.0.1") -> list[dict[str, Any]]:
    url = slack.response_url(name).replace("127.0.0.1", host)
    return [slash_command_payload("status r1", response_url=url),
            block_actions_payload(f"{ACTION_RUN}:details", "details r1", response_url=url)]


@pytest.mark.parametrize("timestamp", ["abc", "1e9", "", "1.5", "+1700000000", "-5", "9" * 30])
def test_an_unsigned_request_with_a_malformed_timestamp_gets_401_and_nothing_is_sent(
        bot: BotProcess, fake_slack: FakeSlack, timestamp: str) -> None:
    name = f"unsigned-{timestamp.strip() or 'empty'}"[:40]
    for payload in payloads(fake_slack, name):
        response = post_raw(bot, form_body(payload), {"X-Slack-Request-Timestamp": timestamp,
                                                      "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 401
    time.sleep(1.0)  # the error handler answered within milliseconds before the fix
    assert fake_slack.responses_to(name) == []


@pytest.mark.parametrize("signature", [None, "", "v0=" + "0" * 64, "v0=zz", "v1=" + "a" * 64])
def test_a_request_with_a_missing_or_wrong_signature_gets_401_and_nothing_is_sent(
        bot: BotProcess, fake_slack: FakeSlack, signature: str | None) -> None:
    name = f"badsig-{signature}"[:40]
    for payload in payloads(fake_slack, name):
        headers = {"X-Slack-Request-Timestamp": str(int(time.time())),
                   "Content-Type": "application/x-www-form-urlencoded"}
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        assert post_raw(bot, form_body(payload), headers).status_code == 401
    time.sleep(0.5)
    assert fake_slack.responses_to(name) == []


def test_a_replayed_request_gets_401(bot: BotProcess, fake_slack: FakeSlack) -> None:
    payload = slash_command_payload("status r1", response_url=fake_slack.response_url("replayed"))
    assert post_signed(bot, payload, timestamp=int(time.time()) - 301).status_code == 401
    time.sleep(0.5)
    assert fake_slack.responses_to("replayed") == []


def test_a_signed_request_whose_response_url_is_not_slacks_is_refused(
        bot: BotProcess, fake_slack: FakeSlack, elsewhere: FakeSlack) -> None:
    for payload in payloads(elsewhere, "foreign", host="localhost"):
        assert post_signed(bot, payload).status_code == 400
    time.sleep(1.0)
    assert elsewhere.responses_to("foreign") == []
    # the same request with Slack's response_url is answered as usual
    assert post_signed(bot, payloads(fake_slack, "ours")[0]).status_code == 200
    fake_slack.wait_for(lambda: fake_slack.responses_to("ours") or None, timeout=10, what="an answer")


def _signed_raw(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest, "Content-Type": content_type}


@pytest.mark.parametrize("body, content_type", [
    (b"payload=not-json", "application/x-www-form-urlencoded"),
    (b"payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),  # a JSON list
    (b"payload=\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
    (b"[1, 2]", "application/json"),
    (b"{not json", "application/json"),
    (b"payload=" + b"%5B" * 100_000, "application/x-www-form-urlencoded"),  # nested 100,000 deep
])
def test_a_malformed_signed_payload_gets_400_and_one_log_line(bot: BotProcess, body: bytes, content_type: str) -> None:
    before = bot.log_text()
    assert post_raw(bot, body, _signed_raw(body, content_type)).status_code == 400
    added = bot.log_text()[len(before):]
    assert "Traceback" not in added
    assert "refused a signed request" in added


def _post_huge(bot: BotProcess, declared: int, send: int) -> bytes:
    """Declare ``declared`` bytes, send up to ``send`` of them, return what the server answered."""
    with socket.create_connection(("127.0.0.1", bot.port), timeout=10) as sock:
        head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nX-Slack-Request-Timestamp: 1\r\n\r\n")
        sock.sendall(head.encode())
        chunk = b"x" * 65536
        try:
            for _ in range(send // len(chunk)):
                sock.sendall(chunk)
        except OSError:
            pass  # the server stopped reading: that is the point
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except OSError:
            pass
        return answer


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_an_oversized_body_is_refused_without_being_read(bot: BotProcess) -> None:
    before = _peak_rss_mb(bot.proc.pid)
    for _ in range(4):
        answer = _post_huge(bot, declared=100 * 1024 * 1024, send=32 * 1024 * 1024)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert _peak_rss_mb(bot.proc.pid) - before < 40
    assert httpx.get(bot.url + "/healthz", timeout=5).status_code == 200


def test_a_body_over_the_limit_without_content_length_is_refused(bot: BotProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(80):
            yield b"x" * 65536  # 5 MiB, chunked

    try:
        response = httpx.post(bot.url + "/slack/events", content=chunks(), headers=signed_request_headers(b""),
                              timeout=10)
        assert response.status_code == 413
    except httpx.TransportError:
        pass  # the server closed the connection while the client was still sending: also a refusal
    assert httpx.get(bot.url + "/healthz", timeout=5).status_code == 200


def test_refusals_never_log_the_response_url(bot: BotProcess, fake_slack: FakeSlack) -> None:
    marker = "secret-hook-0123456789"
    payload = slash_command_payload("status r1", response_url=fake_slack.response_url(marker))
    post_raw(bot, form_body(payload), {"X-Slack-Request-Timestamp": "abc"})
    post_signed(bot, payload, timestamp=int(time.time()) - 3600)
    time.sleep(0.3)
    assert marker not in bot.log_text()
