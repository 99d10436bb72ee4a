"""WesClient against httpx.MockTransport: every quirk of WES-NOTES.md and every error mapping."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from wesbot.wes import (
    InvalidId,
    NotFound,
    RunLog,
    RunState,
    WesAuthError,
    WesClient,
    WesError,
    WesHTTPError,
    WesProtocolError,
    WesUnreachable,
)

BASE = "http://wes.test/ga4gh/wes/v1"
PREFIX = "/ga4gh/wes/v1"
PASSWORD = "s3cret-Pa55word"
TOKEN = "tok-0123456789abcdef"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Router:
    """A fake WES: maps "METHOD /path" (raw, relative to the base path, without the query) to answers.

    An answer is a Response, an exception to raise, a function of the request, or a list of those
    (one per attempt, the last one repeats).
    """

    def __init__(self, routes: dict[str, Answer | list[Answer]], prefix: str = PREFIX) -> None:
        self.routes = routes
        self.prefix = prefix
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raw = request.url.raw_path.decode("ascii")
        path = raw.split("?", 1)[0]
        key = f"{request.method} {path[len(self.prefix):] if path.startswith(self.prefix) else path}"
        if key not in self.routes:
            return httpx.Response(599, text=f"test route missing: {key}")
        answer = self.routes[key]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.raw_path.decode()}" for r in self.requests]


class Factory:
    def __init__(self) -> None:
        self.clients: list[WesClient] = []
        self.sleeps: list[float] = []

    def __call__(self, router: Router, base: str = BASE, **kwargs: Any) -> WesClient:
        kwargs.setdefault("sleep", self.sleeps.append)
        client = WesClient(base, transport=httpx.MockTransport(router), **kwargs)
        self.clients.append(client)
        return client


@pytest.fixture
def make() -> Iterator[Factory]:
    factory = Factory()
    yield factory
    for client in factory.clients:
        client.close()


def js(body: Any, status: int = 200, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, json=body, **kwargs)


def text(body: str, status: int = 200, content_type: str = "text/plain") -> httpx.Response:
    return httpx.Response(status, text=body, headers={"content-type": content_type})


HTML = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


# ---- base URL, headers, timeouts ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://h.test/ga4gh/wes/v1", "/ga4gh/wes/v1/runs"),
        ("http://h.test/ga4gh/wes/v1/", "/ga4gh/wes/v1/runs"),
        ("http://h.test", "/runs"),
        ("http://h.test/", "/runs"),
        ("http://h.test:8080/api/", "/api/runs"),
    ],
)
def test_base_path_is_kept(make: Factory, base: str, expected: str) -> None:
    router = Router({f"GET {expected}": js({"runs": []})}, prefix="")
    client = make(router, base)
    assert client.list_runs().runs == []
    assert router.requests[0].url.raw_path.decode() == expected


def test_host_shown(make: Factory) -> None:
    assert make(Router({}), "http://h.test:8080/x").host == "h.test:8080"
    assert make(Router({}), "https://h.test:443/x").host == "h.test"


@pytest.mark.parametrize(
    ("base", "kwargs"),
    [
        ("http://user:pw@h.test/", {}),
        ("ftp://h.test/", {}),
        ("h.test/ga4gh", {}),
        ("http://h.test/", {"auth": ("u", "p"), "token": "t"}),
    ],
)
def test_constructor_rejects(base: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        WesClient(base, **kwargs)
    assert "pw" not in str(info.value)


def test_headers_basic_auth(make: Factory) -> None:
    router = Router({"GET /runs": js({"runs": []})})
    make(router, auth=("ann", PASSWORD)).list_runs()
    request = router.requests[0]
    assert request.headers["accept"] == "application/json"
    expected = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


def test_headers_bearer(make: Factory) -> None:
    router = Router({"GET /runs": js({"runs": []})})
    make(router, token=TOKEN).list_runs()
    assert router.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_no_credentials_no_header(make: Factory) -> None:
    router = Router({"GET /runs": js({"runs": []})})
    make(router).list_runs()
    assert "authorization" not in router.requests[0].headers


def test_timeouts_are_passed(make: Factory) -> None:
    router = Router({"GET /runs": js({"runs": []})})
    make(router, timeout=7.0, connect_timeout=2.0).list_runs()
    timeout = router.requests[0].extensions["timeout"]
    assert timeout["connect"] == 2.0
    assert timeout["read"] == 7.0


def test_redirect_to_another_origin_is_refused_unread(make: Factory) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "wes.test":
            return httpx.Response(302, headers={"location": "http://elsewhere.test/runs"})
        return text("INTERNAL-ONLY: db password hunter2", 500)

    client = WesClient(BASE, token=TOKEN, transport=httpx.MockTransport(handler), sleep=lambda _: None)
    make.clients.append(client)
    with pytest.raises(WesProtocolError) as info:
        client.list_runs()
    assert [r.url.host for r in seen] == ["wes.test"]
    assert str(info.value) == (
        "WES server at wes.test redirected GET /runs to another host (elsewhere.test); wesbot follows "
        "redirects only on wes.test: if the server moved, set WES_URL to its new address")


@pytest.mark.parametrize("location", [
    BASE + "/v2/runs",                                     # same origin
    "/ga4gh/wes/v1/v2/runs",                               # relative
    "https://wes.test/ga4gh/wes/v1/v2/runs",               # http -> https on the same host
    "http://wes.test:80/ga4gh/wes/v1/v2/runs",             # the default port spelled out
])
def test_redirect_on_the_same_origin_is_followed_with_credentials(make: Factory, location: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "/v2/" not in request.url.path:
            return httpx.Response(307, headers={"location": location})
        return js({"runs": [{"run_id": "a", "state": "RUNNING"}]})

    client = WesClient(BASE, token=TOKEN, transport=httpx.MockTransport(handler), sleep=lambda _: None)
    make.clients.append(client)
    assert [run.run_id for run in client.list_runs().runs] == ["a"]
    assert len(seen) == 2 and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)


@pytest.mark.parametrize("location", [
    "https://wes.test:8443/x",          # another port
    "http://wes.test.evil.example/x",   # a look-alike host
    "http://user:pw@wes.test/x",        # credentials in the URL
    "https://elsewhere.test/x",
])
def test_redirects_off_the_origin_are_refused(make: Factory, location: str) -> None:
    router = Router({"GET /runs/r1/status": httpx.Response(302, headers={"location": location})})
    with pytest.raises(WesProtocolError, match="wesbot follows redirects only on wes.test"):
        make(router).get_status("r1")
    assert len(router.requests) == 1


# ---- run lists and paging -------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["runs", "workflows"])
def test_list_runs_either_key(make: Factory, key: str) -> None:
    router = Router({"GET /runs": js({key: [{"run_id": "a", "state": "RUNNING"}], "next_page_token": ""})})
    page = make(router).list_runs()
    assert [(run.run_id, run.state) for run in page.runs] == [("a", RunState.RUNNING)]
    assert page.next_page_token is None


def test_list_runs_sends_paging(make: Factory) -> None:
    runs = [{"run_id": str(i)} for i in range(5)]
    router = Router({"GET /runs": js({"runs": runs, "next_page_token": "n"})})
    page = make(router).list_runs(page_size=2, page_token="abc def")
    # page_size is only a hint: the server may send more.
    assert len(page.runs) == 5
    assert page.next_page_token == "n"
    assert dict(router.requests[0].url.params) == {"page_size": "2", "page_token": "abc def"}


def test_list_runs_same_token_back_means_end(make: Factory) -> None:
    router = Router({"GET /runs": js({"runs": [{"run_id": "a"}], "next_page_token": "t"})})
    assert make(router).list_runs(page_token="t").next_page_token is None


def paged(pages: dict[str | None, dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        return js(pages[request.url.params.get("page_token")])
    return answer


@pytest.mark.parametrize(
    "end", [{"next_page_token": ""}, {"next_page_token": None}, {}, {"next_page_token": 3}])
def test_iter_pages_end_signals(make: Factory, end: dict[str, Any]) -> None:
    router = Router({"GET /runs": paged({
        None: {"runs": [{"run_id": "a"}], "next_page_token": "p2"},
        "p2": {"runs": [{"run_id": "b"}], **end},
    })})
    pages = list(make(router).iter_run_pages())
    assert [[run.run_id for run in page.runs] for page in pages] == [["a"], ["b"]]
    assert len(router.requests) == 2


def test_iter_pages_token_then_empty_page(make: Factory) -> None:
    router = Router({"GET /runs": paged({
        None: {"runs": [{"run_id": "a"}], "next_page_token": "p2"},
        "p2": {"runs": [], "next_page_token": "p3"},
        "p3": {"runs": [{"run_id": "never"}]},
    })})
    pages = list(make(router).iter_run_pages())
    assert [[run.run_id for run in page.runs] for page in pages] == [["a"]]
    assert len(router.requests) == 2


def test_iter_pages_first_page_empty_is_yielded(make: Factory) -> None:
    router = Router({"GET /runs": js({"workflows": [], "next_page_token": "x"})})
    pages = list(make(router).iter_run_pages())
    assert len(pages) == 1 and pages[0].runs == []
    assert len(router.requests) == 1


@pytest.mark.parametrize("repeat", ["same", "cycle"])
def test_iter_pages_never_loops_on_repeated_tokens(make: Factory, repeat: str) -> None:
    if repeat == "same":
        # The same token forever.
        answer = js({"runs": [{"run_id": "a"}], "next_page_token": "t"})
        router = Router({"GET /runs": answer})
    else:
        router = Router({"GET /runs": paged({
            None: {"runs": [{"run_id": "a"}], "next_page_token": "t1"},
            "t1": {"runs": [{"run_id": "b"}], "next_page_token": "t2"},
            "t2": {"runs": [{"run_id": "c"}], "next_page_token": "t1"},
        })})
    pages = list(make(router).iter_run_pages())
    assert len(router.requests) == (2 if repeat == "same" else 3)
    assert pages[-1].next_page_token is None


def test_iter_pages_max_pages(make: Factory) -> None:
    counter = iter(range(1000))

    def answer(request: httpx.Request) -> httpx.Response:
        return js({"runs": [{"run_id": "a"}], "next_page_token": f"t{next(counter)}"})

    router = Router({"GET /runs": answer})
    pages = list(make(router).iter_run_pages(max_pages=4))
    assert len(pages) == 4
    assert len(router.requests) == 4


# ---- states and wrong types in 200 answers --------------------------------------------------------

@pytest.mark.parametrize(
    ("state", "expected"),
    [("RUNNING", RunState.RUNNING), ("complete", RunState.COMPLETE), ("DELETED", "DELETED"), (None, None),
     (4, "4")],
)
def test_get_status_states(make: Factory, state: object, expected: object) -> None:
    router = Router({"GET /runs/r1/status": js({"run_id": "r1", "state": state})})
    status = make(router).get_status("r1")
    assert status.run_id == "r1"
    assert status.state == expected


def test_get_run_wrong_types(make: Factory) -> None:
    router = Router({"GET /runs/r1": js({
        "run_id": "r1", "state": "executor_error",
        "request": {"workflow_params": '{"x": 1}', "tags": ["not", "a", "dict"]},
        "run_log": {"cmd": "cwltool echo.cwl", "exit_code": "1", "stdout": "", "start_time": ""},
        "task_logs": None, "outputs": "anything",
    })})
    run = make(router).get_run("r1")
    assert run.state is RunState.EXECUTOR_ERROR
    assert run.request.workflow_params == {"x": 1}
    assert run.request.tags == {}
    assert run.run_log.cmd == ["cwltool echo.cwl"]
    assert run.run_log.exit_code == 1
    assert run.run_log.stdout == ""  # an empty log, not a missing one
    assert run.run_log.start_time is None
    assert run.task_logs is None
    assert run.outputs == "anything"


def test_get_run_resolves_relative_log_urls_against_the_response_url(make: Factory) -> None:
    router = Router({
        "GET /runs/r1": httpx.Response(301, headers={"location": "http://wes.test/api/v2/runs/r1"}),
        "GET /api/v2/runs/r1": js({
            "run_id": "r1", "state": "COMPLETE",
            "run_log": {"stdout": "../../logs/r1.out", "stderr": "/api/jobs/1/stderr"},
            "task_logs": [{"name": "t", "stdout": "https://logs.test/t.out", "stderr": "file:///x/t.err"}],
            "task_logs_url": "r1/tasks",
        }),
    })
    run = make(router).get_run("r1")
    assert run.run_log.stdout == "http://wes.test/api/logs/r1.out"
    assert run.run_log.stderr == "http://wes.test/api/jobs/1/stderr"
    assert run.task_logs is not None
    assert run.task_logs[0].stdout == "https://logs.test/t.out"
    assert run.task_logs[0].stderr == "file:///x/t.err"
    assert run.task_logs_url == "http://wes.test/api/v2/runs/r1/tasks"


def test_get_run_log_content_in_stderr_kept(make: Factory) -> None:
    log = "\x1b[1;30mINFO\x1b[0m Resolved 'echo.cwl'\n\x1b[1;30mINFO\x1b[0m [job echo] completed success\n"
    router = Router({"GET /runs/r1": js({
        "run_id": "r1", "state": "COMPLETE", "run_log": {"stderr": log, "stdout": "", "exit_code": 0},
        "task_logs": [],
    })})
    run = make(router).get_run("r1")
    assert run.run_log.stderr == log
    assert run.task_logs == []


# ---- error bodies ---------------------------------------------------------------------------------

BODIES: dict[str, tuple[Callable[[int], httpx.Response], str | None]] = {
    "msg": (lambda s: js({"msg": "the engine is down", "status_code": s}, s), "the engine is down"),
    "problem+json": (
        lambda s: httpx.Response(s, content=json.dumps(
            {"type": "about:blank", "title": "Bad", "detail": "the engine is down", "status": s}).encode(),
            headers={"content-type": "application/problem+json"}),
        "the engine is down"),
    "msg+error_code": (lambda s: js({"msg": "the engine is down", "error_code": s}, s), "the engine is down"),
    "message": (lambda s: js({"message": "the engine is down"}, s), "the engine is down"),
    "error": (lambda s: js({"error": "the engine is down"}, s), "the engine is down"),
    "plain": (lambda s: text("the engine is down", s), "the engine is down"),
    "html": (lambda s: text(HTML, s, "text/html"), None),
    "empty": (lambda s: httpx.Response(s), None),
}


@pytest.mark.parametrize("shape", list(BODIES))
def test_500_body_shapes(make: Factory, shape: str) -> None:
    respond, message = BODIES[shape]
    client = make(Router({"GET /runs": respond(500)}))
    with pytest.raises(WesHTTPError) as info:
        client.list_runs()
    error = info.value
    assert type(error) is WesHTTPError
    assert error.status_code == 500
    assert error.server_message == message
    if shape == "html":
        assert str(error) == "WES server at wes.test answered 500 with an HTML page (a proxy in front of it?)"
        assert "<" not in str(error)
    elif shape == "empty":
        assert str(error) == "WES server at wes.test answered 500: Internal Server Error"
    else:
        assert str(error) == "WES server at wes.test answered 500: the engine is down"


@pytest.mark.parametrize("shape", list(BODIES))
@pytest.mark.parametrize("status", [400, 401, 403, 404, 500, 502])
def test_status_and_body_matrix(make: Factory, shape: str, status: int) -> None:
    respond, message = BODIES[shape]
    client = make(Router({"GET /runs/r1/status": respond(status)}), auth=("ann", PASSWORD))
    with pytest.raises(WesHTTPError) as info:
        client.get_status("r1")
    error = info.value
    assert error.status_code == status
    text_ = str(error)
    assert "<html" not in text_.lower()
    if status in (400, 404):
        assert isinstance(error, NotFound)
        assert error.what == "run" and error.run_id == "r1"
        assert text_.startswith("run r1 not found on the WES server at wes.test")
        if status == 400 and message:
            assert text_.endswith(f"(400: {message})")
    elif status == 401:
        assert isinstance(error, WesAuthError)
        assert text_.startswith("WES rejected the credentials (401): check WES_AUTH")
    elif status == 403:
        assert isinstance(error, WesAuthError)
        assert text_ == "WES refused access (403)" + (f": {message}" if message else "")
    elif status == 502 and shape == "html":
        assert "answered 502 with an HTML page (a proxy in front of it?)" in text_
    else:
        assert text_.startswith(f"WES server at wes.test answered {status}")
        if message:
            assert message in text_


def test_401_messages_name_the_setting(make: Factory) -> None:
    def fail(**kwargs: Any) -> str:
        with pytest.raises(WesAuthError) as info:
            router = Router({"GET /runs": js({"msg": "invalid token", "status_code": 401}, 401)})
            make(router, **kwargs).list_runs()
        return str(info.value)

    assert fail(auth=("ann", PASSWORD)) == "WES rejected the credentials (401): check WES_AUTH. " \
        "The server said: invalid token"
    assert fail(token=TOKEN).startswith("WES rejected the credentials (401): check WES_TOKEN")
    assert "no credentials are configured: set WES_AUTH or WES_TOKEN" in fail()


def test_404_on_service_info_points_at_wes_url(make: Factory) -> None:
    client = make(Router({"GET /service-info": text("Not Found", 404)}))
    with pytest.raises(WesHTTPError) as info:
        client.service_info()
    assert not isinstance(info.value, NotFound)
    assert "answered 404 for GET /service-info: check that WES_URL" in str(info.value)


def test_server_message_truncated_not_escaped(make: Factory) -> None:
    long = "<b>&bad</b> " + "x" * 1000
    client = make(Router({"GET /runs": js({"msg": long}, 500)}))
    with pytest.raises(WesHTTPError) as info:
        client.list_runs()
    assert info.value.server_message is not None
    assert len(info.value.server_message) <= 300
    assert info.value.server_message.endswith("…")
    assert "<b>&bad</b>" in str(info.value)


def test_long_or_multiline_plain_text_falls_back_to_reason(make: Factory) -> None:
    for body in ["x" * 201, "Traceback (most recent call last):\n  File 'x'"]:
        client = make(Router({"GET /runs": text(body, 500)}))
        with pytest.raises(WesHTTPError) as info:
            client.list_runs()
        assert str(info.value) == "WES server at wes.test answered 500: Internal Server Error"


def test_json_message_on_one_line(make: Factory) -> None:
    client = make(Router({"GET /runs": js({"msg": "line one\nline two\x1b[0m"}, 500)}))
    with pytest.raises(WesHTTPError) as info:
        client.list_runs()
    assert str(info.value) == "WES server at wes.test answered 500: line one line two [0m"


def test_fastapi_detail_list(make: Factory) -> None:
    body = {"detail": [{"loc": ["query", "page_size"], "msg": "value is not a valid integer"}]}
    client = make(Router({"GET /runs": js(body, 422)}))
    with pytest.raises(WesHTTPError, match="answered 422: value is not a valid integer"):
        client.list_runs()


# ---- 200 answers that are not what they should be -------------------------------------------------

@pytest.mark.parametrize(
    ("response", "what"),
    [
        (text(HTML, 200, "text/html"), "an HTML page instead of JSON"),
        (text("<html><body>login</body></html>", 200, "text/plain"), "an HTML page instead of JSON"),
        (text("RUNNING"), "text that is not JSON instead of JSON"),
        (httpx.Response(200), "an empty answer instead of JSON"),
        (js([{"run_id": "r1", "state": "RUNNING"}]), "a JSON list instead of a JSON object"),
        (js("RUNNING"), "a JSON string instead of a JSON object"),
        (js({"foo": 1}), "a JSON object without run_id or state"),
    ],
)
def test_200_with_the_wrong_body(make: Factory, response: httpx.Response, what: str) -> None:
    client = make(Router({"GET /runs/r1/status": response}))
    with pytest.raises(WesProtocolError) as info:
        client.get_status("r1")
    assert str(info.value) == f"WES server at wes.test sent {what} for GET /runs/r1/status"


def test_cromwell_error_in_200(make: Factory) -> None:
    body = {"status_code": 404, "msg": "Unrecognized workflow ID: r1"}
    client = make(Router({
        "GET /runs/r1/status": js(body),
        "GET /runs": js({"status_code": "500", "msg": "db"}),
    }))
    with pytest.raises(NotFound) as info:
        client.get_status("r1")
    assert info.value.status_code == 404
    assert info.value.server_message == "Unrecognized workflow ID: r1"
    with pytest.raises(WesHTTPError, match="answered 500: db"):
        client.list_runs()


def test_status_code_field_in_a_real_answer_is_not_an_error(make: Factory) -> None:
    client = make(Router({"GET /runs/r1/status": js({"run_id": "r1", "state": "RUNNING", "status_code": 500,
                                                     "msg": "odd"})}))
    assert client.get_status("r1").state is RunState.RUNNING


# ---- tasks ----------------------------------------------------------------------------------------

RUN_WITH_INLINE_TASKS = {
    "run_id": "r1", "state": "COMPLETE",
    "task_logs": [{"name": "step1", "exit_code": 0}, {"name": "step2", "exit_code": "1"}],
}


def test_list_tasks_endpoint(make: Factory) -> None:
    router = Router({"GET /runs/r1/tasks": js({
        "task_logs": [{"id": "t1", "name": "a", "stderr": "t1/stderr"}], "next_page_token": "n"})})
    page = make(router).list_tasks("r1", page_size=10, page_token="p")
    assert page.source == "endpoint"
    assert page.run_id == "r1"
    assert [task.id for task in page.tasks] == ["t1"]
    assert page.tasks[0].stderr == "http://wes.test/ga4gh/wes/v1/runs/r1/t1/stderr"
    assert page.next_page_token == "n"
    assert dict(router.requests[0].url.params) == {"page_size": "10", "page_token": "p"}


@pytest.mark.parametrize("body", [b'{"task_logs": null}', b"null", b"[]", b'{"tasks": []}', b""])
def test_list_tasks_empty_answers(make: Factory, body: bytes) -> None:
    response = httpx.Response(200, content=body, headers={"content-type": "application/json"})
    page = make(Router({"GET /runs/r1/tasks": response})).list_tasks("r1")
    assert page.tasks == [] and page.source == "endpoint" and page.next_page_token is None


@pytest.mark.parametrize("status", [400, 404, 405, 501])
def test_list_tasks_falls_back_to_inline(make: Factory, status: int) -> None:
    problem = httpx.Response(status, content=json.dumps(
        {"type": "about:blank", "title": "Not Found", "detail": "The requested URL was not found",
         "status": status}
    ).encode(), headers={"content-type": "application/problem+json"})
    router = Router({"GET /runs/r1/tasks": problem, "GET /runs/r1": js(RUN_WITH_INLINE_TASKS)})
    page = make(router).list_tasks("r1")
    assert page.source == "inline"
    assert page.next_page_token is None
    assert [(task.name, task.exit_code) for task in page.tasks] == [("step1", 0), ("step2", 1)]


def test_list_tasks_fallback_with_null_inline_tasks(make: Factory) -> None:
    router = Router({"GET /runs/r1/tasks": text("no", 404),
                     "GET /runs/r1": js({"run_id": "r1", "state": "RUNNING", "task_logs": None})})
    page = make(router).list_tasks("r1")
    assert page.tasks == [] and page.source == "inline"


def test_list_tasks_fallback_uses_given_run(make: Factory) -> None:
    router = Router({"GET /runs/r1/tasks": text("no", 404)})
    run = RunLog(run_id="r1", state=RunState.COMPLETE, task_logs=[])
    page = make(router).list_tasks("r1", run=run)
    assert page.source == "inline"
    assert router.paths() == [f"GET {PREFIX}/runs/r1/tasks"]


def test_list_tasks_fallback_for_a_missing_run_raises_not_found(make: Factory) -> None:
    router = Router({"GET /runs/ghost/tasks": text("no", 404),
                     "GET /runs/ghost": js({"msg": "no such run", "status_code": 404}, 404)})
    with pytest.raises(NotFound) as info:
        make(router).list_tasks("ghost")
    assert str(info.value) == "run ghost not found on the WES server at wes.test"


def test_list_tasks_other_errors_raise(make: Factory) -> None:
    router = Router({"GET /runs/r1/tasks": js({"msg": "boom"}, 500)})
    with pytest.raises(WesHTTPError, match="answered 500: boom"):
        make(router).list_tasks("r1")
    router = Router({"GET /runs/r1/tasks": js({"msg": "nope"}, 401)})
    with pytest.raises(WesAuthError):
        make(router).list_tasks("r1")


def test_list_tasks_follows_task_logs_url(make: Factory) -> None:
    router = Router({
        "GET /runs/r1": js({"run_id": "r1", "state": "RUNNING", "task_logs_url": "/other/api/r1/tasks?x=1"}),
        "GET /other/api/r1/tasks": js({"task_logs": [{"id": "t", "stdout": "t/out"}]}),
    })
    client = make(router)
    run = client.get_run("r1")
    page = client.list_tasks("r1", page_size=5, run=run)
    assert page.tasks[0].id == "t"
    assert page.tasks[0].stdout == "http://wes.test/other/api/r1/t/out"
    assert dict(router.requests[-1].url.params) == {"x": "1", "page_size": "5"}


def test_list_tasks_finds_task_logs_url_when_the_standard_endpoint_is_missing(make: Factory) -> None:
    router = Router({
        "GET /runs/r1/tasks": js({"msg": "no such endpoint"}, 404),
        "GET /runs/r1": js({"run_id": "r1", "state": "RUNNING", "task_logs_url": "/api/r1/task-list"}),
        "GET /api/r1/task-list": js({"task_logs": [{"id": "t9", "name": "x"}], "next_page_token": "n"}),
    })
    page = make(router).list_tasks("r1", page_size=5)
    assert page.source == "endpoint" and [t.id for t in page.tasks] == ["t9"] and page.next_page_token == "n"
    assert router.paths()[-1].startswith("GET /api/r1/task-list")


def test_list_tasks_ignores_task_logs_url_on_another_host(make: Factory) -> None:
    router = Router({"GET /runs/r1/tasks": js({"task_logs": []})})
    run = RunLog(run_id="r1", state=None, task_logs_url="http://evil.test/steal")
    make(router, token=TOKEN).list_tasks("r1", run=run)
    assert [r.url.host for r in router.requests] == ["wes.test"]


def test_list_tasks_task_logs_url_missing_falls_back(make: Factory) -> None:
    router = Router({"GET /x/tasks": text("", 501)})
    run = RunLog(run_id="r1", state=None, task_logs_url="http://wes.test/x/tasks",
                 task_logs=[])
    assert make(router).list_tasks("r1", run=run).source == "inline"


def test_get_task_endpoint(make: Factory) -> None:
    router = Router({"GET /runs/r1/tasks/t1": js({"id": "t1", "name": "a", "exit_code": 0})})
    task = make(router).get_task("r1", "t1")
    assert task.id == "t1" and task.exit_code == 0


@pytest.mark.parametrize("status", [400, 404, 405, 501])
def test_get_task_falls_back_to_scanning(make: Factory, status: int) -> None:
    router = Router({
        "GET /runs/r1/tasks/t2": text("", status),
        "GET /runs/r1/tasks": paged({
            None: {"task_logs": [{"id": "t1"}], "next_page_token": "p2"},
            "p2": {"task_logs": [{"id": "t2", "name": "second"}], "next_page_token": ""},
        }),
    })
    assert make(router).get_task("r1", "t2").name == "second"


def test_get_task_by_name_in_inline_tasks(make: Factory) -> None:
    router = Router({
        "GET /runs/r1/tasks/step2": text("", 404),
        "GET /runs/r1/tasks": text("", 404),
        "GET /runs/r1": js(RUN_WITH_INLINE_TASKS),
    })
    assert make(router).get_task("r1", "step2").exit_code == 1


def test_get_task_not_found(make: Factory) -> None:
    router = Router({
        "GET /runs/r1/tasks/nope": text("", 404),
        "GET /runs/r1/tasks": text("", 404),
        "GET /runs/r1": js(RUN_WITH_INLINE_TASKS),
    })
    with pytest.raises(NotFound) as info:
        make(router).get_task("r1", "nope")
    assert str(info.value) == "task nope of run r1 not found"
    assert info.value.what == "task"


def test_get_task_scan_is_bounded(make: Factory) -> None:
    counter = iter(range(1000))

    def answer(request: httpx.Request) -> httpx.Response:
        return js({"task_logs": [{"id": "x"}], "next_page_token": f"t{next(counter)}"})

    router = Router({"GET /runs/r1/tasks/t": text("", 404), "GET /runs/r1/tasks": answer})
    with pytest.raises(NotFound):
        make(router).get_task("r1", "t")
    assert len(router.requests) <= 21


def test_get_task_errors_raise(make: Factory) -> None:
    router = Router({"GET /runs/r1/tasks/t": js({"msg": "down"}, 503)})
    with pytest.raises(WesHTTPError, match="answered 503: down"):
        make(router, retries=0).get_task("r1", "t")


# ---- cancel ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (js({"run_id": "r1"}), "r1"),
        (httpx.Response(200, content=b"null"), None),
        (httpx.Response(200), None),
        (httpx.Response(204), None),
        (js({}), None),
    ],
)
def test_cancel(make: Factory, response: httpx.Response, expected: str | None) -> None:
    router = Router({"POST /runs/r1/cancel": response})
    assert make(router).cancel_run("r1") == expected
    assert router.requests[0].method == "POST"


def test_cancel_refused(make: Factory) -> None:
    body = {"msg": "workflow is in a terminal state", "status_code": 403}
    router = Router({"POST /runs/r1/cancel": js(body, 403)})
    with pytest.raises(WesAuthError) as info:
        make(router).cancel_run("r1")
    assert str(info.value) == "WES refused to cancel run r1 (403): workflow is in a terminal state"


def test_cancel_unknown_run(make: Factory) -> None:
    router = Router({"POST /runs/r1/cancel": js({"msg": "x"}, 404)})
    with pytest.raises(NotFound):
        make(router).cancel_run("r1")


def test_cancel_html(make: Factory) -> None:
    router = Router({"POST /runs/r1/cancel": text(HTML, 200, "text/html")})
    with pytest.raises(WesProtocolError, match="sent an HTML page instead of JSON for POST /runs/r1/cancel"):
        make(router).cancel_run("r1")


@pytest.mark.parametrize("answer", [httpx.ConnectError("[Errno 111] Connection refused"), text("busy", 503)])
def test_cancel_is_never_retried(make: Factory, answer: Answer) -> None:
    router = Router({"POST /runs/r1/cancel": answer})
    with pytest.raises(WesError):
        make(router, retries=5).cancel_run("r1")
    assert len(router.requests) == 1
    assert make.sleeps == []


# ---- service-info ---------------------------------------------------------------------------------

def test_service_info(make: Factory) -> None:
    router = Router({"GET /service-info": js({
        "supported_wes_versions": "1.0.0",
        "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.0"]}},
        "system_state_counts": {"RUNNING": "1"},
    })})
    info = make(router).service_info()
    assert info.supported_wes_versions == ["1.0.0"]
    assert info.workflow_type_versions == {"CWL": ["v1.0"]}
    assert info.system_state_counts == {"RUNNING": 1}


def test_service_info_wrong_shape(make: Factory) -> None:
    expected = "sent a JSON list instead of a JSON object for GET /service-info"
    with pytest.raises(WesProtocolError, match=expected):
        make(Router({"GET /service-info": js([])})).service_info()


# ---- retries and transport errors -----------------------------------------------------------------

def test_retries_connect_errors_then_succeeds(make: Factory) -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    router = Router({"GET /runs/r1/status": [refused, refused, js({"run_id": "r1", "state": "QUEUED"})]})
    assert make(router, retries=2, backoff=0.5).get_status("r1").state is RunState.QUEUED
    assert len(router.requests) == 3
    assert make.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_retries_gateway_errors_then_succeeds(make: Factory, status: int) -> None:
    router = Router({"GET /runs": [text("busy", status), js({"runs": []})]})
    assert make(router, retries=3, backoff=0.25).list_runs().runs == []
    assert len(router.requests) == 2
    assert make.sleeps == [0.25]


def test_retries_exhausted(make: Factory) -> None:
    router = Router({"GET /runs": httpx.ConnectError("[Errno 111] Connection refused")})
    with pytest.raises(WesUnreachable) as info:
        make(router, retries=3, backoff=1).list_runs()
    assert str(info.value) == "could not connect to the WES server at wes.test (connection refused)"
    assert len(router.requests) == 4
    assert make.sleeps == [1, 2, 4]


def test_retries_exhausted_on_503_reports_the_status(make: Factory) -> None:
    router = Router({"GET /runs": text(HTML, 502, "text/html")})
    with pytest.raises(WesHTTPError) as info:
        make(router, retries=1).list_runs()
    assert str(info.value) == (
        "WES server at wes.test answered 502 with an HTML page (a proxy in front of it?)")
    assert len(router.requests) == 2


@pytest.mark.parametrize("status", [500, 501, 400, 404])
def test_no_retry_on_other_statuses(make: Factory, status: int) -> None:
    router = Router({"GET /runs": text("x", status)})
    with pytest.raises(WesHTTPError):
        make(router, retries=3).list_runs()
    assert len(router.requests) == 1
    assert make.sleeps == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("[Errno -2] Name or service not known"),
         "could not connect to the WES server at wes.test (host name not found)"),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
         "could not connect to the WES server at wes.test (TLS certificate not trusted)"),
        (httpx.ConnectError("something odd"),
         "could not connect to the WES server at wes.test (connection failed)"),
        (httpx.ReadError("[Errno 104] Connection reset by peer"),
         "lost the connection to the WES server at wes.test (connection reset)"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."),
         "lost the connection to the WES server at wes.test (the server closed the connection)"),
        (httpx.ReadTimeout("timed out"), "WES server at wes.test did not answer within 10 s"),
        (httpx.ConnectTimeout("timed out"), "WES server at wes.test did not answer within 5 s"),
    ],
)
def test_transport_errors(make: Factory, error: Exception, expected: str) -> None:
    router = Router({"GET /runs": error})
    with pytest.raises(WesUnreachable) as info:
        make(router, retries=1).list_runs()
    assert str(info.value) == expected
    assert len(router.requests) == 2


def test_timeout_message_fractional(make: Factory) -> None:
    router = Router({"GET /runs/r1/status": httpx.ReadTimeout("timed out")})
    with pytest.raises(WesUnreachable, match=r"^WES server at wes.test did not answer within 0.5 s$"):
        make(router, timeout=0.5, retries=0).get_status("r1")


def test_too_many_redirects(make: Factory) -> None:
    router = Router({"GET /runs": httpx.Response(302, headers={"location": BASE + "/runs"})})
    with pytest.raises(WesProtocolError, match="redirected too many times"):
        make(router).list_runs()


# ---- secrets never leak ---------------------------------------------------------------------------

def leaky_routes() -> dict[str, Answer | list[Answer]]:
    echo = f"bad credentials ann:{PASSWORD} / Bearer {TOKEN}"
    return {
        "GET /runs": js({"msg": echo}, 401),
        "GET /service-info": js({"msg": echo}, 500),
        "GET /runs/a/status": js({"msg": echo}, 403),
        "GET /runs/b/status": text(echo, 400),
        "GET /runs/c/status": httpx.ConnectError("[Errno 111] Connection refused"),
        "GET /runs/d/status": httpx.ReadTimeout("timed out"),
        "GET /runs/e/status": text(HTML, 502, "text/html"),
        "GET /runs/f/status": js({"status_code": 500, "msg": echo}),
        "GET /runs/g/status": text("not json"),
    }


@pytest.mark.parametrize("credentials", [{"auth": ("ann", PASSWORD)}, {"token": TOKEN}])
def test_no_secret_in_errors_or_logs(make: Factory, caplog: pytest.LogCaptureFixture,
                                     credentials: dict[str, Any]) -> None:
    caplog.set_level(logging.DEBUG)
    client = make(Router(leaky_routes()), **credentials)
    calls: list[Callable[[], object]] = [
        client.list_runs, client.service_info,
        *[lambda run=run: client.get_status(run) for run in "abcdefg"],
        lambda: client.get_status(TOKEN + " x"),
    ]
    messages = []
    for call in calls:
        with pytest.raises(WesError) as info:
            call()
        messages.append(str(info.value))
        messages.append(repr(info.value))
        messages.append(str(getattr(info.value, "server_message", "")))
    basic = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()
    everything = "\n".join(messages) + "\n" + caplog.text
    secrets = [TOKEN] if "token" in credentials else [PASSWORD, basic]
    for secret in secrets:
        assert secret not in everything
    assert "GET /runs -> 401" in caplog.text
    assert "***" in messages[0]


# ---- hostile ids ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("run_id", "raw"),
    [
        ("../service-info", "..%2Fservice-info"),
        ("a/b?c", "a%2Fb%3Fc"),
        ("%2e%2e", "%252e%252e"),
        ("%2E%2E", "%252E%252E"),
        ("a#b", "a%23b"),
        ("x&page_token=1", "x%26page_token%3D1"),
        ("é", "%C3%A9"),
        ("...", "%2E%2E%2E"),
        ("abc-123_DEF.x~", "abc-123_DEF.x~"),
    ],
)
def test_ids_are_one_encoded_path_segment(make: Factory, run_id: str, raw: str) -> None:
    router = Router({})
    client = make(router, retries=0)
    for call in (client.get_status, client.get_run, client.list_tasks, client.cancel_run):
        with pytest.raises(WesError):
            call(run_id)
    with pytest.raises(WesError):
        client.get_task(run_id, run_id)
    raw_paths = [r.url.raw_path.decode() for r in router.requests]
    assert raw_paths[:5] == [
        f"{PREFIX}/runs/{raw}/status",
        f"{PREFIX}/runs/{raw}",
        f"{PREFIX}/runs/{raw}/tasks",
        f"{PREFIX}/runs/{raw}/cancel",
        f"{PREFIX}/runs/{raw}/tasks/{raw}",
    ]
    for path in raw_paths:
        assert path.startswith(f"{PREFIX}/runs/{raw}")
        assert "?" not in path


@pytest.mark.parametrize(
    ("bad", "shown", "why"),
    [
        ("", "''", "it is empty"),
        ("a b", "'a b'", "it contains whitespace"),
        ("x\n", "'x\\n'", "it contains whitespace"),
        ("\x00", "'\\x00'", "it contains a control character"),
        ("a\u200bb", "'a\\u200bb'", "it contains a control character"),
        ("x" * 300, "'" + "x" * 40 + "…'", "it is longer than 256 characters"),
        (".", "'.'", "it is a relative path"),
        ("..", "'..'", "it is a relative path"),
    ],
)
def test_invalid_ids_never_reach_the_server(make: Factory, bad: str, shown: str, why: str) -> None:
    router = Router({})
    client = make(router)
    with pytest.raises(InvalidId) as info:
        client.get_status(bad)
    assert str(info.value) == f"{shown} is not a valid run id: {why}"
    with pytest.raises(InvalidId, match="is not a valid task id"):
        client.get_task("r1", bad)
    for call in (client.get_run, client.list_tasks, client.cancel_run):
        with pytest.raises(InvalidId):
            call(bad)
    assert router.requests == []


def test_max_length_id_is_fine(make: Factory) -> None:
    run_id = "x" * 256
    router = Router({f"GET /runs/{run_id}/status": js({"run_id": run_id, "state": "RUNNING"})})
    assert make(router).get_status(run_id).run_id == run_id


# ---- logging and threads --------------------------------------------------------------------------

def test_debug_log_line(make: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wesbot.wes")
    make(Router({"GET /runs/r1/status": js({"run_id": "r1", "state": "RUNNING"})})).get_status("r1")
    records = [r for r in caplog.records if r.name == "wesbot.wes"]
    assert len(records) == 1
    assert records[0].getMessage().startswith("GET /runs/r1/status -> 200 in ")


def test_shared_between_threads(make: Factory) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        run_id = request.url.path.split("/")[-2]
        return js({"run_id": run_id, "state": "RUNNING"})

    client = make(Router({f"GET /runs/r{i}/status": answer for i in range(40)}))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: client.get_status(f"r{i}").run_id, range(40)))
    assert results == [f"r{i}" for i in range(40)]


def test_short_or_empty_secrets_do_not_mangle_messages(make: Factory) -> None:
    client = make(Router({"GET /runs": js({"msg": "bad: a thing"}, 401)}), auth=("", ""))
    with pytest.raises(WesAuthError) as info:
        client.list_runs()
    assert str(info.value) == (
        "WES rejected the credentials (401): check WES_AUTH. The server said: bad: a thing")
