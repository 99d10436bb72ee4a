"""The Slack poster: what Slack answers, sorted into done, retry (and when), or give up."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from wesbot.slack.poster import METADATA_EVENT, SlackPoster

Handler = Callable[[httpx.Request], httpx.Response]


def poster(handler: Handler) -> SlackPoster:
    return SlackPoster("xoxb-secret", "http://slack.test/api", transport=httpx.MockTransport(handler))


def test_a_post_sends_json_with_the_token_and_the_metadata_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True, "ts": "1.000100"})

    result = poster(handler).post("C1", {"text": "hi", "blocks": [{"type": "section"}]}, thread_ts="1.0",
                                  broadcast=True, key="end:r1:COMPLETE:C1")
    assert result.ok and result.ts == "1.000100"
    [request] = seen
    assert request.url.path == "/api/chat.postMessage" and request.headers["authorization"] == "Bearer xoxb-secret"
    body = json.loads(request.content)
    assert body["thread_ts"] == "1.0" and body["reply_broadcast"] is True and body["blocks"]
    assert body["metadata"] == {"event_type": METADATA_EVENT, "event_payload": {"key": "end:r1:COMPLETE:C1"}}


@pytest.mark.parametrize(("response", "expected"), [
    (httpx.Response(429, headers={"Retry-After": "7"}), {"retry_after": 7.0, "permanent": False}),
    (httpx.Response(503, text="down"), {"retry_after": None, "permanent": False, "error": "Slack answered 503"}),
    (httpx.Response(200, json={"ok": False, "error": "not_in_channel"}), {"permanent": True, "channel_error": True}),
    (httpx.Response(200, json={"ok": False, "error": "is_archived"}), {"permanent": True, "channel_error": True}),
    (httpx.Response(200, json={"ok": False, "error": "invalid_blocks"}), {"permanent": True, "channel_error": False}),
    (httpx.Response(200, json={"ok": False, "error": "internal_error"}), {"permanent": False}),
    (httpx.Response(200, text="<html>proxy</html>"), {"permanent": False, "ok": False}),
])
def test_failures_are_sorted(response: httpx.Response, expected: dict[str, object]) -> None:
    result = poster(lambda request: response).post("C1", {"text": "x"})
    assert not result.ok
    for name, value in expected.items():
        assert getattr(result, name) == value, name


def test_connection_errors_are_retried_and_name_no_secret() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    result = poster(handler).update("C1", "1.0", {"text": "x"})
    assert not result.ok and not result.permanent and "ConnectError" in (result.error or "")
    assert "xoxb" not in (result.error or "")


def test_find_posted() -> None:
    messages = [{"ts": "1.1", "metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": "k1"}}},
                {"ts": "1.2", "text": "other"}]

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        assert form["include_all_metadata"] == "true"
        if request.url.path.endswith("conversations.replies"):
            return httpx.Response(200, json={"ok": True, "messages": messages})
        return httpx.Response(200, json={"ok": False, "error": "missing_scope"})

    slack = poster(handler)
    assert slack.find_posted("C1", "k1", thread_ts="1.0", oldest=0) == "1.1"
    assert slack.find_posted("C1", "k2", thread_ts="1.0", oldest=0) is False
    assert slack.find_posted("C1", "k1", thread_ts=None, oldest=0) is None  # cannot tell: post again
