"""LogFetcher and sanitize_log_text: range reads, the 200 fallback, UTF-8 cuts, the host allow-list,
credentials only for the WES origin, manual redirects, paths that are never read, error messages."""

from __future__ import annotations

import base64
import re
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fakes.fake_wes import FakeWes, Reply
from wesbot.slack.blocks import code_block
from wesbot.wes.errors import WesError
from wesbot.wes.logs import (
    LogFetcher,
    LogTail,
    LogUnavailable,
    parse_allowed_hosts,
    sanitize_log_text,
    shown_url,
)

BASE = "http://wes.test/ga4gh/wes/v1"
USER = "alice"
PASSWORD = "s3cret-Pa55word"
TOKEN = "tok-0123456789abcdef"
WHAT = "stderr of task T"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records every request and answers from ``routes`` (URL -> answer)."""

    def __init__(self, routes: dict[str, httpx.Response | Handler | Exception] | None = None) -> None:
        self.routes = routes or {}
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        answer = self.routes.get(str(request.url.copy_with(query=None)))
        if answer is None:
            return httpx.Response(404, text="no route")
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]


def ranged(data: bytes, *, honour: bool = True, content_range: bool = True) -> Handler:
    """Serve ``data``; answer ``Range: bytes=-N`` with 206 (or ignore it with ``honour=False``)."""

    def handle(request: httpx.Request) -> httpx.Response:
        match = re.fullmatch(r"bytes=-(\d+)", request.headers.get("range", ""))
        if not honour or match is None:
            return httpx.Response(200, content=data)
        if not data:
            return httpx.Response(416, headers={"Content-Range": "bytes */0"})
        n = min(int(match.group(1)), len(data))
        start = len(data) - n
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if content_range else {}
        return httpx.Response(206, content=data[start:], headers=headers)

    return handle


def make(recorder: Recorder, **kwargs: object) -> LogFetcher:
    return LogFetcher(BASE, transport=httpx.MockTransport(recorder), **kwargs)  # type: ignore[arg-type]


def numbered(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, n + 1))


# --------------------------------------------------------------------------------------------------
# sanitize_log_text
# --------------------------------------------------------------------------------------------------

def test_sanitize_strips_ansi_and_control_characters() -> None:
    raw = ("\x1b[1;31mERROR\x1b[0m failed\r\n"
           "\x1b]0;window title\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\n"
           "nul\x00bel\x07del\x7fc1\x85\x9b31mend\tTab\n"
           "10%\r50%\r100%\n"
           "\u202eevil\u2066 bidi\n")
    text, cut = sanitize_log_text(raw, lines=30, max_chars=1000)
    assert text == "ERROR failed\nclick\nnulbeldelc1end\tTab\n100%\nevil bidi"
    assert not cut
    assert all(ch in "\n\t" or ch.isprintable() for ch in text)


def test_sanitize_line_cap_keeps_the_last_lines() -> None:
    text, cut = sanitize_log_text(numbered(100), lines=3, max_chars=1000)
    assert text == "line 98\nline 99\nline 100"
    assert cut
    text, cut = sanitize_log_text(numbered(3) + "\n\n", lines=3, max_chars=1000)
    assert (text, cut) == ("line 1\nline 2\nline 3", False)


def test_sanitize_char_cap_keeps_the_end_and_marks_the_cut() -> None:
    text, cut = sanitize_log_text("x" * 5000 + "\nlast line", lines=30, max_chars=100)
    assert cut and len(text) == 100
    assert text.endswith("\nlast line") and text.startswith("…")
    # Cut at a line boundary: no marker needed.
    text, cut = sanitize_log_text("aaaa\nbbbb", lines=30, max_chars=4)
    assert (text, cut) == ("bbbb", True)


def test_sanitize_char_cap_counts_characters_not_bytes() -> None:
    text, cut = sanitize_log_text("é" * 50 + "\n" + "日本語" * 10, lines=30, max_chars=30)
    assert text == "日本語" * 10 and cut
    text, cut = sanitize_log_text("😀" * 40, lines=30, max_chars=10)
    assert text == "…" + "😀" * 9 and cut
    text.encode("utf-8")  # whole code points: encodes cleanly


def test_sanitize_edge_cases() -> None:
    assert sanitize_log_text("", lines=5, max_chars=10) == ("", False)
    assert sanitize_log_text("\x1b[0m\n\n", lines=5, max_chars=10) == ("", False)
    assert sanitize_log_text("abc", lines=0, max_chars=10) == ("", True)
    assert sanitize_log_text("lone \ud800 surrogate", lines=5, max_chars=100) == ("lone  surrogate", False)


def test_hostile_log_cannot_break_out_of_a_slack_code_block() -> None:
    hostile = ("```\n<!channel> <!here|here> @everyone <@U123> <https://evil.example|click>\n"
               "\x1b[31m```evil```\x1b[0m\n````\n`` `\n&lt;!channel&gt;\x1b]8;;http://x\x07y\x1b]8;;\x07\n```")
    text, _ = sanitize_log_text(hostile, lines=30, max_chars=2800)
    block = code_block(text, 3000)
    assert block.startswith("```") and block.endswith("```")
    assert block.count("```") == 2
    assert "<!channel>" not in block
    assert "<!" not in block and "<@" not in block and "<http" not in block
    assert "\x1b" not in block


# --------------------------------------------------------------------------------------------------
# parse_allowed_hosts, shown_url
# --------------------------------------------------------------------------------------------------

def test_parse_allowed_hosts() -> None:
    assert parse_allowed_hosts(None) == frozenset()
    assert parse_allowed_hosts(" , ") == frozenset()
    assert parse_allowed_hosts(" Logs.Example.org , cdn.example:8443,https://x.example/path,[::1]:9000") == {
        "logs.example.org", "cdn.example:8443", "x.example", "[::1]:9000",
    }
    for bad in ("*.example.org", "user@host", "host:port", "a b"):
        with pytest.raises(ValueError, match="WESBOT_LOG_HOSTS"):
            parse_allowed_hosts(bad)


def test_shown_url_strips_credentials_and_masks_signatures() -> None:
    shown = shown_url("https://user:pw@bucket.example/k?X-Amz-Signature=abc123&part=2&token=t0k#frag")
    assert shown == "https://bucket.example/k?X-Amz-Signature=***&part=2&token=***"


# --------------------------------------------------------------------------------------------------
# Inline text and paths: nothing fetched
# --------------------------------------------------------------------------------------------------

def test_missing_ref_is_not_available_yet() -> None:
    recorder = Recorder()
    with make(recorder) as fetcher, pytest.raises(LogUnavailable) as info:
        fetcher.tail(None, what=WHAT)
    assert str(info.value) == "stderr of task T is not available yet"
    assert isinstance(info.value, WesError)
    assert recorder.requests == []


@pytest.mark.parametrize("ref", ["", "   ", "\n"])
def test_an_empty_ref_is_an_empty_log_not_a_missing_one(ref: str) -> None:
    recorder = Recorder()
    with make(recorder) as fetcher:
        assert fetcher.tail(ref, what=WHAT) == LogTail(text="", truncated=False, source="inline")
    assert recorder.requests == []


def test_inline_text_is_used_as_is() -> None:
    recorder = Recorder()
    inline = "\x1b[32mINFO\x1b[0m [job echo] starting\n" + numbered(50) + "Final process status is permanentFail\n"
    with make(recorder) as fetcher:
        tail = fetcher.tail(inline, what="stderr of run R", lines=5)
        assert tail == LogTail(text="line 47\nline 48\nline 49\nline 50\nFinal process status is permanentFail",
                               truncated=True, source="inline", location=None, note=None,
                               reasons=("Final process status is permanentFail",))
        # One line with spaces is log content too; a single word cannot be told from a one-word log.
        assert fetcher.tail("Killed by signal 9", what=WHAT).text == "Killed by signal 9"
        assert fetcher.tail("Killed", what=WHAT) == LogTail("Killed", False, "inline", reasons=("Killed",))
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("ref", "location"),
    [
        ("file:///data/runs/r1/stderr.txt", "/data/runs/r1/stderr.txt"),
        ("file://localhost/data/x%20y.log", "/data/x y.log"),
        ("/data/runs/r1/stderr.txt", "/data/runs/r1/stderr.txt"),
        ("C:\\runs\\r1\\stderr.txt", "C:\\runs\\r1\\stderr.txt"),
    ],
)
def test_file_paths_are_shown_not_read(ref: str, location: str) -> None:
    recorder = Recorder()
    with make(recorder, token=TOKEN) as fetcher:
        tail = fetcher.tail(ref, what=WHAT)
    assert tail == LogTail(text="", truncated=False, source="path", location=location,
                           note="stderr of task T is a path on the WES server; wesbot does not read it")
    assert recorder.requests == []


def test_other_schemes_are_shown_not_read() -> None:
    recorder = Recorder()
    with make(recorder) as fetcher:
        tail = fetcher.tail("s3://key:secret@bucket/logs/stderr", what=WHAT)
        assert tail.source == "path" and tail.location == "s3://bucket/logs/stderr"
        assert tail.note == "stderr of task T is a s3: URL; wesbot only reads http and https logs"
        assert fetcher.tail("ftp://wes.test/x", what=WHAT).source == "path"
    assert recorder.requests == []


# --------------------------------------------------------------------------------------------------
# Reading the end
# --------------------------------------------------------------------------------------------------

def test_range_read_keeps_the_end() -> None:
    data = numbered(20000).encode()  # ~200 KB
    url = "http://wes.test/logs/r1/stderr"
    recorder = Recorder({url: ranged(data)})
    with make(recorder) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=3)
    assert tail == LogTail(text="line 19998\nline 19999\nline 20000", truncated=True, source="url", location=url)
    [request] = recorder.requests
    assert request.headers["range"] == "bytes=-65536"
    assert request.headers["accept-encoding"] == "identity"


def test_range_read_drops_the_partial_first_line() -> None:
    data = ("a" * 100 + "\n" + "second\nthird\n").encode()
    url = "http://wes.test/logs/x"
    with make(Recorder({url: ranged(data)}), max_bytes=60) as fetcher:
        tail = fetcher.tail(url, what=WHAT)
    assert tail.text == "second\nthird" and tail.truncated


def test_small_log_read_whole_by_range_is_not_truncated() -> None:
    url = "http://wes.test/logs/x"
    with make(Recorder({url: ranged(b"only line\n")})) as fetcher:
        assert fetcher.tail(url, what=WHAT) == LogTail("only line", False, "url", url)


def test_range_without_content_range_header() -> None:
    url = "http://wes.test/logs/x"
    data = numbered(10000).encode()
    with make(Recorder({url: ranged(data, content_range=False)}), max_bytes=1024) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=2)
    assert tail.text == "line 9999\nline 10000" and tail.truncated


def test_200_fallback_streams_and_keeps_the_last_bytes() -> None:
    consumed: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(1, 3001):
            consumed.append(i)
            yield f"chunk line {i}\n".encode()

    url = "http://wes.test/logs/big"
    recorder = Recorder({url: lambda request: httpx.Response(200, content=chunks())})
    with make(recorder, max_bytes=1000) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=1000, max_chars=100000)
    assert tail.text.endswith("chunk line 2999\nchunk line 3000")
    assert tail.truncated and tail.note is None
    assert len(tail.text.encode()) <= 1000
    # The partial first line was dropped: every line is whole.
    assert all(re.fullmatch(r"chunk line \d+", line) for line in tail.text.split("\n"))
    assert len(consumed) == 3000


def test_200_fallback_stops_at_the_stream_limit() -> None:
    consumed: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(1, 100001):
            consumed.append(i)
            yield f"{i:07d}\n".encode()  # 8 bytes a line

    url = "http://wes.test/logs/huge"
    recorder = Recorder({url: lambda request: httpx.Response(200, content=chunks())})
    with make(recorder, max_bytes=1024, stream_limit=64 * 1024) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=2)
    assert tail.text == "0008191\n0008192"  # the end of the first 64 KiB
    assert tail.truncated
    assert tail.note == "stderr of task T is larger than 64 KiB; showing the end of its first 64 KiB"
    assert len(consumed) < 8200


def test_default_stream_limit_note() -> None:
    url = "http://wes.test/logs/huge"
    body = b"x" * (16 * 1024 * 1024 + 10)
    with make(Recorder({url: lambda request: httpx.Response(200, content=body)})) as fetcher:
        tail = fetcher.tail(url, what=WHAT)
    assert tail.note == "stderr of task T is larger than 16 MiB; showing the end of its first 16 MiB"


def test_416_is_an_empty_log() -> None:
    url = "http://wes.test/logs/empty"
    with make(Recorder({url: ranged(b"")})) as fetcher:
        assert fetcher.tail(url, what=WHAT) == LogTail("", False, "url", url)


def refuses_range(data: bytes, status: int) -> Handler:
    """A log server that answers any ranged request with ``status`` but serves a plain GET whole."""

    def handle(request: httpx.Request) -> httpx.Response:
        if "range" in request.headers:
            return httpx.Response(status, text="Range not supported")
        return httpx.Response(200, content=data)

    return handle


@pytest.mark.parametrize("status", [500, 416])
def test_a_refused_range_is_asked_again_without_range(status: int) -> None:
    url = "http://wes.test/logs/r1/stderr"
    recorder = Recorder({url: refuses_range(numbered(20000).encode(), status)})
    with make(recorder, token=TOKEN, max_bytes=1024) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=2)
    assert tail == LogTail(text="line 19999\nline 20000", truncated=True, source="url", location=url)
    first, second = recorder.requests
    assert first.headers["range"] == "bytes=-1024" and "range" not in second.headers
    assert second.url == first.url and second.headers["authorization"] == f"Bearer {TOKEN}"


def test_the_retry_without_range_is_capped_like_any_full_read() -> None:
    url = "http://wes.test/logs/huge"
    recorder = Recorder({url: refuses_range(b"".join(f"{i:07d}\n".encode() for i in range(1, 100001)), 500)})
    with make(recorder, max_bytes=1024, stream_limit=64 * 1024) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=2)
    assert tail.text == "0008191\n0008192" and tail.truncated
    assert tail.note == "stderr of task T is larger than 64 KiB; showing the end of its first 64 KiB"


def test_a_range_refused_after_a_redirect_is_retried_at_the_target() -> None:
    recorder = Recorder({
        "http://wes.test/logs/x": redirect("/files/x.txt"),
        "http://wes.test/files/x.txt": refuses_range(b"at the target\n", 500),
    })
    with make(recorder) as fetcher:
        assert fetcher.tail("http://wes.test/logs/x", what=WHAT).text == "at the target"
    assert recorder.urls() == ["http://wes.test/logs/x", "http://wes.test/files/x.txt", "http://wes.test/files/x.txt"]


@pytest.mark.parametrize(("status", "message"), [
    (500, "log host wes.test answered 500 for stderr of task T"),
    (416, "log host wes.test answered 416 for stderr of task T"),  # 416 to a GET without Range makes no sense
])
def test_a_url_that_fails_without_range_too_is_given_up_after_one_retry(status: int, message: str) -> None:
    url = "http://wes.test/logs/x"
    recorder = Recorder({url: lambda request: httpx.Response(status, text="broken")})
    with make(recorder) as fetcher, pytest.raises(LogUnavailable) as info:
        fetcher.tail(url, what=WHAT)
    assert (str(info.value), info.value.status_code) == (message, status)
    assert len(recorder.requests) == 2


@pytest.mark.parametrize("status", [404, 403, 502, 503])
def test_other_errors_are_not_retried(status: int) -> None:
    url = "http://wes.test/logs/x"
    recorder = Recorder({url: lambda request: httpx.Response(status, text="no")})
    with make(recorder) as fetcher, pytest.raises(LogUnavailable):
        fetcher.tail(url, what=WHAT)
    assert len(recorder.requests) == 1


def test_multibyte_utf8_split_at_the_range_start() -> None:
    data = ("é" * 50000).encode()  # 100000 bytes; 65536 from the end starts... in the middle of an "é"?
    url = "http://wes.test/logs/utf8"
    for extra in (b"", b"x"):  # shift by one byte so that both alignments are tried
        recorder = Recorder({url: ranged(data + extra)})
        with make(recorder) as fetcher:
            tail = fetcher.tail(url, what=WHAT, lines=5, max_chars=100000)
        assert "\ufffd" not in tail.text
        assert set(tail.text) <= {"é", "x"}
        assert tail.truncated


def test_multibyte_utf8_split_in_the_rolling_buffer() -> None:
    url = "http://wes.test/logs/utf8"
    data = "日本語ログ".encode() * 3000
    with make(Recorder({url: ranged(data, honour=False)}), max_bytes=1001) as fetcher:
        tail = fetcher.tail(url, what=WHAT, max_chars=100000)
    assert "\ufffd" not in tail.text and tail.text.endswith("日本語ログ")


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    url = "http://wes.test/logs/bin"
    with make(Recorder({url: ranged(b"ok\n\xff\xfe bad \x00\x01 bytes\n")})) as fetcher:
        assert fetcher.tail(url, what=WHAT).text == "ok\n\ufffd\ufffd bad  bytes"


def test_fetched_text_is_sanitized() -> None:
    url = "http://wes.test/logs/color"
    log = b"\x1b[31mTraceback\x1b[0m\r\n  File x\r\n" + b"\x1b[1mValueError: boom\x1b[0m\n"
    with make(Recorder({url: ranged(log)})) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=2)
    assert tail.text == "  File x\nValueError: boom" and tail.truncated


def test_lines_and_chars_caps_on_fetched_logs() -> None:
    url = "http://wes.test/logs/long"
    with make(Recorder({url: ranged(("y" * 500 + "\n").encode() * 100)})) as fetcher:
        tail = fetcher.tail(url, what=WHAT, lines=30, max_chars=2800)
    assert len(tail.text) == 2800 and tail.truncated
    assert tail.text.count("\n") <= 29


# --------------------------------------------------------------------------------------------------
# Relative references
# --------------------------------------------------------------------------------------------------

def test_relative_refs_are_resolved_against_the_wes_url() -> None:
    recorder = Recorder({
        "http://wes.test/ga4gh/logs/x": ranged(b"dotdot\n"),
        "http://wes.test/ga4gh/wes/v1/logs/y": ranged(b"sub\n"),
        "http://wes.test/api/jobs/1/stdout": ranged(b"abs\n"),
    })
    with make(recorder, token=TOKEN) as fetcher:
        assert fetcher.tail("../../logs/x", what=WHAT).text == "dotdot"
        assert fetcher.tail("logs/y", what=WHAT).text == "sub"
        # With the response URL, an absolute path is a URL on that server (as the WES client resolves it).
        tail = fetcher.tail("/api/jobs/1/stdout", what=WHAT, relative_to=f"{BASE}/runs/r1")
        assert (tail.text, tail.location) == ("abs", "http://wes.test/api/jobs/1/stdout")
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in recorder.requests)


def test_scheme_relative_ref_is_checked_like_any_url() -> None:
    recorder = Recorder()
    with make(recorder) as fetcher, pytest.raises(LogUnavailable) as info:
        fetcher.tail("//evil.example/x", what=WHAT)
    assert str(info.value) == "log host evil.example not allowed (set WESBOT_LOG_HOSTS)"
    assert recorder.requests == []


# --------------------------------------------------------------------------------------------------
# Hosts and credentials
# --------------------------------------------------------------------------------------------------

def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_sent_to_the_wes_host_basic() -> None:
    url = "http://wes.test/logs/x"
    recorder = Recorder({url: ranged(b"hi\n")})
    with make(recorder, auth=(USER, PASSWORD)) as fetcher:
        assert fetcher.tail(url, what=WHAT).text == "hi"
    assert recorder.requests[0].headers["authorization"] == basic()


def test_credentials_sent_to_the_wes_host_bearer() -> None:
    url = "http://wes.test:80/logs/x"  # the default port written out is the same origin
    recorder = Recorder({"http://wes.test/logs/x": ranged(b"hi\n")})
    with make(recorder, token=TOKEN) as fetcher:
        assert fetcher.tail(url, what=WHAT).text == "hi"
    assert recorder.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_disallowed_host_refused_without_a_request() -> None:
    recorder = Recorder()
    with make(recorder, token=TOKEN, allowed_hosts=frozenset({"logs.example"})) as fetcher:
        for url, host in [
            ("https://evil.example/x", "evil.example"),
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
            ("https://wes.test/logs/x", "wes.test"),  # another scheme is another origin
            ("http://wes.test:8080/logs/x", "wes.test:8080"),  # another port too
            ("http://logs.example.evil.example/x", "logs.example.evil.example"),
            (f"http://{USER}:{PASSWORD}@evil.example/x", "evil.example"),
        ]:
            with pytest.raises(LogUnavailable) as info:
                fetcher.tail(url, what=WHAT)
            assert str(info.value) == f"log host {host} not allowed (set WESBOT_LOG_HOSTS)"
    assert recorder.requests == []


def test_allowed_host_fetched_without_credentials() -> None:
    url = "https://logs.example/r1/stderr"
    recorder = Recorder({url: ranged(b"from the log host\n"), "http://cdn.example:8443/x": ranged(b"cdn\n")})
    allowed = parse_allowed_hosts("LOGS.example, cdn.example:8443")
    with make(recorder, auth=(USER, PASSWORD), allowed_hosts=allowed) as fetcher:
        assert fetcher.tail(url, what=WHAT).text == "from the log host"
        assert fetcher.tail("http://cdn.example:8443/x", what=WHAT).text == "cdn"
        with pytest.raises(LogUnavailable, match="log host cdn.example:9000 not allowed"):
            fetcher.tail("http://cdn.example:9000/x", what=WHAT)
    assert len(recorder.requests) == 2
    assert all("authorization" not in r.headers for r in recorder.requests)


def test_credentials_in_the_url_are_never_sent_nor_shown() -> None:
    url = "https://bob:hunter2-pw@logs.example/x?sig=abcd1234"
    recorder = Recorder({"https://logs.example/x": ranged(b"ok\n")})
    with make(recorder, allowed_hosts=frozenset({"logs.example"})) as fetcher:
        tail = fetcher.tail(url, what=WHAT)
    assert tail.location == "https://logs.example/x?sig=***"
    [request] = recorder.requests
    assert "authorization" not in request.headers
    assert request.url.userinfo == b"" and request.url.query == b"sig=abcd1234"


def redirect(location: str, status: int = 302) -> httpx.Response:
    return httpx.Response(status, headers={"Location": location})


def test_redirect_from_wes_host_to_another_host_refused() -> None:
    recorder = Recorder({
        "http://wes.test/logs/x": redirect("https://evil.example/steal"),
        "https://evil.example/steal": ranged(b"nope\n"),
    })
    with make(recorder, token=TOKEN) as fetcher, pytest.raises(LogUnavailable) as info:
        fetcher.tail("http://wes.test/logs/x", what=WHAT)
    assert str(info.value) == "log host evil.example not allowed (set WESBOT_LOG_HOSTS)"
    assert recorder.urls() == ["http://wes.test/logs/x"]


def test_redirect_to_an_allowed_host_followed_without_credentials() -> None:
    recorder = Recorder({
        "http://wes.test/logs/x": redirect("https://logs.example/signed?X-Amz-Signature=s1g", 307),
        "https://logs.example/signed": ranged(b"redirected log\n"),
    })
    with make(recorder, auth=(USER, PASSWORD), allowed_hosts=frozenset({"logs.example"})) as fetcher:
        tail = fetcher.tail("http://wes.test/logs/x", what=WHAT)
    assert tail.text == "redirected log"
    assert tail.location == "http://wes.test/logs/x"
    first, second = recorder.requests
    assert first.headers["authorization"] == basic()
    assert "authorization" not in second.headers
    assert second.headers["range"] == "bytes=-65536"


def test_redirect_back_to_the_wes_origin_gets_credentials_again() -> None:
    recorder = Recorder({
        "https://logs.example/a": redirect("http://wes.test/logs/b", 301),
        "http://wes.test/logs/b": ranged(b"back home\n"),
    })
    with make(recorder, token=TOKEN, allowed_hosts=frozenset({"logs.example"})) as fetcher:
        assert fetcher.tail("https://logs.example/a", what=WHAT).text == "back home"
    first, second = recorder.requests
    assert "authorization" not in first.headers
    assert second.headers["authorization"] == f"Bearer {TOKEN}"


def test_relative_redirect_resolved_against_the_current_url() -> None:
    recorder = Recorder({
        "http://wes.test/logs/x": redirect("../files/x.txt"),
        "http://wes.test/files/x.txt": ranged(b"relative\n"),
    })
    with make(recorder) as fetcher:
        assert fetcher.tail("http://wes.test/logs/x", what=WHAT).text == "relative"


def test_at_most_three_redirects() -> None:
    routes: dict[str, httpx.Response | Handler | Exception] = {
        f"http://wes.test/r{i}": redirect(f"/r{i + 1}") for i in range(4)
    }
    routes["http://wes.test/r4"] = ranged(b"four hops\n")
    recorder = Recorder(routes)
    with make(recorder) as fetcher:
        assert fetcher.tail("http://wes.test/r1", what=WHAT).text == "four hops"  # three redirects
        with pytest.raises(LogUnavailable) as info:
            fetcher.tail("http://wes.test/r0", what=WHAT)  # four redirects
    assert str(info.value) == "fetching stderr of task T was redirected more than 3 times"


def test_redirect_to_a_file_url_refused() -> None:
    recorder = Recorder({"http://wes.test/logs/x": redirect("file:///etc/passwd")})
    with make(recorder) as fetcher, pytest.raises(LogUnavailable) as info:
        fetcher.tail("http://wes.test/logs/x", what=WHAT)
    assert str(info.value) == "fetching stderr of task T was redirected to a URL that is not http or https"


def test_no_cookies_are_kept() -> None:
    recorder = Recorder({
        "http://wes.test/a": httpx.Response(200, text="a\n", headers={"Set-Cookie": "session=abc; Path=/"}),
        "http://wes.test/b": ranged(b"b\n"),
    })
    with make(recorder) as fetcher:
        fetcher.tail("http://wes.test/a", what=WHAT)
        fetcher.tail("http://wes.test/b", what=WHAT)
    assert "cookie" not in recorder.requests[1].headers


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "stderr of task T was not found at its URL (404)"),
        (401, "access to stderr of task T was refused (401)"),
        (403, "access to stderr of task T was refused (403)"),
        (500, "log host wes.test answered 500 for stderr of task T"),
        (302, "log host wes.test answered 302 for stderr of task T"),  # a redirect without Location
    ],
)
def test_http_errors(status: int, message: str) -> None:
    url = "http://wes.test/logs/x"
    recorder = Recorder({url: httpx.Response(status, text=f"server says {PASSWORD} {TOKEN}")})
    with make(recorder, auth=(USER, PASSWORD)) as fetcher, pytest.raises(LogUnavailable) as info:
        fetcher.tail(url, what=WHAT)
    assert str(info.value) == message
    assert info.value.status_code == status


def test_timeout_message() -> None:
    url = "http://wes.test/logs/slow"
    recorder = Recorder({url: httpx.ReadTimeout("timed out")})
    with make(recorder, token=TOKEN) as fetcher, pytest.raises(LogUnavailable) as info:
        fetcher.tail(url, what=WHAT)
    assert str(info.value) == "fetching stderr of task T timed out after 10 s"


def test_connect_error_message() -> None:
    url = "https://logs.example/x"
    recorder = Recorder({url: httpx.ConnectError(f"[Errno 111] Connection refused {PASSWORD}")})
    with make(recorder, auth=(USER, PASSWORD), allowed_hosts=frozenset({"logs.example"})) as fetcher:
        with pytest.raises(LogUnavailable) as info:
            fetcher.tail(url, what=WHAT)
    assert str(info.value) == "could not connect to log host logs.example"


def test_secrets_never_in_messages_or_locations(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    secret_what = f"stderr of task {TOKEN}"  # someone pasted the token as a task id
    routes: dict[str, httpx.Response | Handler | Exception] = {
        f"http://wes.test/{TOKEN}/404": httpx.Response(404, text=TOKEN),
        f"http://wes.test/{TOKEN}/500": httpx.Response(500, text=TOKEN),
        f"http://wes.test/{TOKEN}/timeout": httpx.ConnectTimeout(TOKEN),
        f"http://wes.test/{TOKEN}/reset": httpx.ReadError(TOKEN),
        f"http://wes.test/{TOKEN}/redirect": redirect(f"https://{USER}:{TOKEN}@evil.example/{TOKEN}"),
        f"http://wes.test/{TOKEN}/ok": ranged(b"fine\n"),
    }
    recorder = Recorder(routes)
    messages: list[str] = []
    with make(recorder, token=TOKEN) as fetcher:
        for name in ("404", "500", "timeout", "reset", "redirect"):
            with pytest.raises(LogUnavailable) as info:
                fetcher.tail(f"http://wes.test/{TOKEN}/{name}", what=secret_what)
            messages.append(str(info.value))
        with pytest.raises(LogUnavailable) as info:
            fetcher.tail(None, what=secret_what)
        messages.append(str(info.value))
        tail = fetcher.tail(f"http://wes.test/{TOKEN}/ok?access_token={TOKEN}", what=secret_what)
        assert tail.location is not None
        messages.append(tail.location)
        path = fetcher.tail(f"/data/{TOKEN}/stderr", what=secret_what)
        messages += [path.location or "", path.note or ""]
    assert len(messages) == 9
    # Our own log lines (httpx logs request URLs at INFO; the CLI keeps that logger at WARNING).
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("wesbot")]
    assert ours
    for text in messages + ours:
        assert TOKEN not in text
    assert "***" in messages[0]


def test_basic_password_never_in_messages() -> None:
    recorder = Recorder({"http://wes.test/x": httpx.Response(403, text=PASSWORD)})
    with make(recorder, auth=(USER, PASSWORD)) as fetcher:
        with pytest.raises(LogUnavailable) as info:
            fetcher.tail("http://wes.test/x", what=f"stderr of {USER}:{PASSWORD}")
    assert PASSWORD not in str(info.value)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="not both"):
        LogFetcher(BASE, auth=(USER, PASSWORD), token=TOKEN)
    with pytest.raises(ValueError, match="must not contain credentials"):
        LogFetcher(f"http://{USER}:{PASSWORD}@wes.test/")
    with pytest.raises(ValueError, match="http"):
        LogFetcher("file:///x")


def test_thread_safe_concurrent_tails() -> None:
    routes: dict[str, httpx.Response | Handler | Exception] = {
        f"http://wes.test/logs/{i}": ranged(f"log {i}\n".encode() * 10) for i in range(20)
    }
    recorder = Recorder(routes)
    with make(recorder, token=TOKEN) as fetcher, ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda i: fetcher.tail(f"http://wes.test/logs/{i}", what=WHAT, lines=1).text,
                              range(20)))
    assert texts == [f"log {i}" for i in range(20)]


# --------------------------------------------------------------------------------------------------
# A real loopback server
# --------------------------------------------------------------------------------------------------

def test_loopback_fake_wes_file_with_basic_auth() -> None:
    with FakeWes(validate=False, auth=(USER, PASSWORD)) as wes:
        log = "".join(f"\x1b[33mstep {i}\x1b[0m ok\n" for i in range(1, 20001))  # ~340 KB, FakeWes ignores Range
        url = wes.add_file("r1-stderr.txt", log)
        with LogFetcher(wes.url, auth=(USER, PASSWORD), timeout=5) as fetcher:
            tail = fetcher.tail(url, what="stderr of run r1", lines=2)
        assert tail == LogTail("step 19999 ok\nstep 20000 ok", True, "url", url)
        with LogFetcher(wes.url, timeout=5) as anonymous, pytest.raises(LogUnavailable) as info:
            anonymous.tail(url, what="stderr of run r1")
        assert str(info.value) == "access to stderr of run r1 was refused (401)"
        ranges = [r.headers.get("Range") for r in wes.requests]
        assert ranges == ["bytes=-65536", "bytes=-65536"]


def test_loopback_redirect_and_timeout() -> None:
    with FakeWes(validate=False) as wes:
        url = wes.add_file("slow.txt", "slow\n")
        wes.delays["/files/slow.txt"] = 5.0
        with LogFetcher(wes.url, timeout=0.3) as fetcher, pytest.raises(LogUnavailable) as info:
            fetcher.tail(url, what="stdout of run R")
        assert str(info.value) == "fetching stdout of run R timed out after 0.3 s"
        wes.delays.clear()
        wes.fail_next.append(Reply(status=302, headers={"Location": "http://evil.example/"}))
        with LogFetcher(wes.url, timeout=5) as fetcher, pytest.raises(LogUnavailable) as info:
            fetcher.tail(url, what="stdout of run R")
        assert str(info.value) == "log host evil.example not allowed (set WESBOT_LOG_HOSTS)"


def test_loopback_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on that port any more.
    with LogFetcher(f"http://127.0.0.1:{port}/ga4gh/wes/v1", timeout=5) as fetcher:
        with pytest.raises(LogUnavailable) as info:
            fetcher.tail(f"http://127.0.0.1:{port}/files/x", what=WHAT)
    assert str(info.value) == f"could not connect to log host 127.0.0.1:{port}"
