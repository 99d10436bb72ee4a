"""The fakes themselves: FakeWes answers as the spec and its knobs say, FakeSlack speaks to slack_sdk."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from tests.fakes import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    FakeWes,
    block_actions_payload,
    close_socket_mode_client,
    connection_close,
    empty,
    error_response,
    form_body,
    html_error,
    make_task,
    plain_text,
    problem_json,
    require_shared,
    signed_request_headers,
    slash_command_payload,
    spec_errors,
    validate_response,
)
from tests.fakes import spec as spec_module
from tests.fakes.spec import SpecViolation

# ---------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def http(wes: FakeWes) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wes.url, timeout=5) as client:
        yield client


def walk_pages(client: httpx.Client, path: str, key: str, page_size: int, limit: int = 50) -> list[dict[str, Any]]:
    """Every page body of a paged list, stopping the way WES-NOTES says a client must."""
    bodies: list[dict[str, Any]] = []
    token: str | None = None
    seen: set[str] = set()
    for _ in range(limit):
        params: dict[str, Any] = {"page_size": page_size}
        if token:
            params["page_token"] = token
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        token = body.get("next_page_token")
        if not token or not body[key] or token in seen:
            return bodies
        seen.add(token)
    raise AssertionError("paging did not end")


# ---------------------------------------------------------------------------------------------------
# FakeWes: the spec


def test_fake_wes_answers_validate_against_the_spec() -> None:
    require_shared()
    with (
        FakeWes(validate=True, auth="s3cret") as wes,
        httpx.Client(base_url=wes.url, headers={"Authorization": "Bearer s3cret"}, timeout=5) as http,
    ):
        wes.add_run(
            "r1",
            "RUNNING",
            tags={"project": "demo"},
            task_logs=[make_task("t1", stdout=wes.file_url("t1.out")), make_task("t2", exit_code=1)],
            outputs={"out": {"class": "File", "location": "file:///tmp/out"}},
        )
        wes.add_run("r2", "COMPLETE", end_time="2024-01-01T00:05:00Z")
        wes.many_runs(30, states=("QUEUED", "EXECUTOR_ERROR", "PREEMPTED"))

        answers = [
            ("/service-info", "get", http.get("/service-info")),
            ("/runs", "get", http.get("/runs", params={"page_size": 5})),
            ("/runs/{run_id}/status", "get", http.get("/runs/r1/status")),
            ("/runs/{run_id}", "get", http.get("/runs/r1")),
            ("/runs/{run_id}/tasks", "get", http.get("/runs/r1/tasks", params={"page_size": 1})),
            ("/runs/{run_id}/tasks/{task_id}", "get", http.get("/runs/r1/tasks/t2")),
            ("/runs/{run_id}/cancel", "post", http.post("/runs/r1/cancel")),
            ("/runs/{run_id}/status", "get", http.get("/runs/missing/status")),
            ("/runs/{run_id}", "get", http.get("/runs/missing")),
            ("/runs/{run_id}/tasks/{task_id}", "get", http.get("/runs/r1/tasks/nope")),
            ("/runs", "get", httpx.get(wes.url + "/runs")),  # no credentials: 401
        ]
        for template, method, response in answers:
            assert response.headers["content-type"] == "application/json"
            validate_response(template, method, response.status_code, response.json())
        assert [response.status_code for _, _, response in answers] == [
            200,
            200,
            200,
            200,
            200,
            200,
            200,
            404,
            404,
            404,
            401,
        ]
        assert len(walk_pages(http, "/runs", "runs", 7)) == 5  # 32 runs
        assert wes.validated >= len(answers) + 5
        assert wes.spec_violations == []


def test_spec_validation_catches_what_breaks_the_spec() -> None:
    require_shared()
    assert spec_errors("/runs/{run_id}/status", "get", 200, {"run_id": "r", "state": "RUNNING"}) == []
    assert spec_errors("/runs/{run_id}/status", "get", 200, {"state": "DELETED"})
    assert spec_errors("/runs", "get", 200, {"runs": [], "next_page_token": None})
    assert spec_errors("/service-info", "get", 200, {"id": "x"})  # the service-info $ref is resolved
    assert spec_errors("/runs/{run_id}/tasks", "get", 400, {"msg": "x"})  # status not declared
    with pytest.raises(SpecViolation, match="exit_code"):
        validate_response("/runs/{run_id}", "GET", 200, {"run_id": "r", "run_log": {"exit_code": "1"}})

    with FakeWes(validate=True) as wes, httpx.Client(base_url=wes.url) as http:
        wes.add_run("sapporo", "DELETED")
        assert http.get("/runs/sapporo/status").json()["state"] == "DELETED"
        assert len(wes.spec_violations) == 1 and "DELETED" in wes.spec_violations[0]


def test_require_shared_skips_or_fails_without_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_module, "spec_path", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="wes-spec not found"):
        require_shared()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="wes-spec not found"):
        require_shared()
    with pytest.raises(FileNotFoundError):
        FakeWes(validate=True).start()


def test_quirky_knobs_are_not_validated() -> None:
    require_shared()
    with FakeWes(validate=True) as wes, httpx.Client(base_url=wes.url) as http:
        wes.add_run("r1")
        wes.list_key = "workflows"
        wes.end_token_style = "null"
        wes.tasks_endpoint = False
        wes.fail_next.append(html_error(502))
        wes.overrides["/runs/r1/status"] = (200, {"run_id": 1, "state": None}, "application/json")
        assert http.get("/runs").status_code == 502
        assert http.get("/runs").json() == {
            "workflows": [{"run_id": "r1", "state": "RUNNING", "start_time": "2024-01-01T00:00:00Z", "tags": {}}],
            "next_page_token": None,
        }
        assert http.get("/runs/r1/status").json() == {"run_id": 1, "state": None}
        assert http.get("/runs/r1/tasks").status_code == 404
        assert wes.spec_violations == []


# ---------------------------------------------------------------------------------------------------
# FakeWes: paging


def test_paging_honours_page_size_up_to_the_maximum(wes: FakeWes, http: httpx.Client) -> None:
    ids = wes.many_runs(45)
    wes.max_page_size = 30
    bodies = walk_pages(http, "/runs", "runs", 20)
    assert [len(body["runs"]) for body in bodies] == [20, 20, 5]
    assert [item["run_id"] for body in bodies for item in body["runs"]] == ids
    assert bodies[-1]["next_page_token"] == ""
    assert len(http.get("/runs", params={"page_size": 1000}).json()["runs"]) == 30
    assert len(http.get("/runs").json()["runs"]) == wes.page_size_default
    assert http.get("/runs", params={"page_size": "x"}).status_code == 400
    assert http.get("/runs", params={"page_token": "forged"}).status_code == 400


def test_paging_pass_does_not_see_live_updates(wes: FakeWes, http: httpx.Client) -> None:
    wes.many_runs(3)
    first = http.get("/runs", params={"page_size": 2}).json()
    wes.add_run("late")
    second = http.get("/runs", params={"page_size": 2, "page_token": first["next_page_token"]}).json()
    assert [item["run_id"] for item in second["runs"]] == ["run-000002"]
    assert second["next_page_token"] == ""


@pytest.mark.parametrize("style", ["empty", "null", "missing"])
def test_end_token_styles(wes: FakeWes, http: httpx.Client, style: str) -> None:
    wes.many_runs(5)
    wes.end_token_style = style  # type: ignore[assignment]
    last = walk_pages(http, "/runs", "runs", 2)[-1]
    assert len(last["runs"]) == 1
    expected = {"empty": {"next_page_token": ""}, "null": {"next_page_token": None}, "missing": {}}[style]
    assert {key: value for key, value in last.items() if key == "next_page_token"} == expected


def test_end_token_repeat_returns_the_same_token_forever(wes: FakeWes, http: httpx.Client) -> None:
    wes.many_runs(3)
    wes.end_token_style = "repeat"
    first = http.get("/runs", params={"page_size": 2}).json()
    last = http.get("/runs", params={"page_size": 2, "page_token": first["next_page_token"]}).json()
    assert last["next_page_token"] == first["next_page_token"]
    again = http.get("/runs", params={"page_size": 2, "page_token": last["next_page_token"]}).json()
    assert again == last
    # a single page repeats too
    wes.page_size_default = 10
    single = http.get("/runs").json()
    assert single["next_page_token"]
    assert http.get("/runs", params={"page_token": single["next_page_token"]}).json() == single


def test_end_token_empty_page(wes: FakeWes, http: httpx.Client) -> None:
    wes.many_runs(4)
    wes.end_token_style = "empty_page"
    bodies = walk_pages(http, "/runs", "runs", 2)
    assert [len(body["runs"]) for body in bodies] == [2, 2, 0]
    assert bodies[1]["next_page_token"] and bodies[2]["next_page_token"] == ""


def test_reference_server_listing(wes: FakeWes, http: httpx.Client) -> None:
    wes.many_runs(60)
    wes.list_key = "workflows"
    wes.summaries = False
    wes.ignore_paging = True
    body = http.get("/runs", params={"page_size": 5}).json()
    assert set(body) == {"workflows", "next_page_token"}
    assert len(body["workflows"]) == 60 and body["next_page_token"] == ""
    assert body["workflows"][0] == {"run_id": "run-000000", "state": "COMPLETE"}


def test_thousands_of_runs(wes: FakeWes, http: httpx.Client) -> None:
    started = time.monotonic()
    wes.many_runs(5000, states=("RUNNING", "COMPLETE"))
    wes.max_page_size = 1000
    bodies = walk_pages(http, "/runs", "runs", 1000)
    assert sum(len(body["runs"]) for body in bodies) == 5000
    assert time.monotonic() - started < 2.5


def test_tasks_endpoint_paging_and_fallbacks(wes: FakeWes, http: httpx.Client) -> None:
    wes.add_run("r1", task_logs=[make_task(f"t{index}") for index in range(5)])
    bodies = walk_pages(http, "/runs/r1/tasks", "task_logs", 2)
    assert [task["id"] for body in bodies for task in body["task_logs"]] == [f"t{index}" for index in range(5)]
    assert http.get("/runs/r1/tasks/t3").json()["name"] == "t3"
    assert http.get("/runs/r1").json()["task_logs_url"] == wes.url + "/runs/r1/tasks"
    assert http.get("/runs/nope/tasks").status_code == 404

    wes.tasks_endpoint = False
    missing = http.get("/runs/r1/tasks")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert set(missing.json()) == {"type", "title", "detail", "status"}
    assert "task_logs_url" not in http.get("/runs/r1").json()
    for status in (400, 405, 501):
        wes.tasks_missing_status = status
        assert http.get("/runs/r1/tasks").status_code == status
        assert http.get("/runs/r1/tasks/t1").status_code == status


# ---------------------------------------------------------------------------------------------------
# FakeWes: failures, delays, auth and other behaviour


def test_fail_next_serves_canned_failures_in_order(wes: FakeWes, http: httpx.Client) -> None:
    wes.add_run("r1")
    wes.fail_next.extend(
        [
            html_error(502),
            problem_json(404, "no such thing"),
            plain_text(500, "boom"),
            empty(503),
            error_response(500, "db down"),
        ]
    )
    proxy = http.get("/runs/r1/status")
    assert (proxy.status_code, proxy.headers["content-type"]) == (502, "text/html")
    assert "<h1>502 Bad Gateway</h1>" in proxy.text
    assert http.get("/runs/r1/status").json()["detail"] == "no such thing"
    assert http.get("/runs/r1/status").text == "boom"
    blank = http.get("/runs/r1/status")
    assert (blank.status_code, blank.content, "content-type" in blank.headers) == (503, b"", False)
    assert http.get("/runs/r1/status").json() == {"msg": "db down", "status_code": 500}
    assert http.get("/runs/r1/status").json() == {"run_id": "r1", "state": "RUNNING"}

    wes.fail_next = [connection_close()]
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/runs/r1/status")
    assert http.get("/runs/r1/status").status_code == 200
    assert len(wes.requests) == 8


def test_delay_does_not_block_other_requests(wes: FakeWes) -> None:
    wes.add_run("slow")
    wes.add_run("fast")
    wes.delays["/runs/slow/status"] = 1.0
    results: dict[str, float] = {}

    def fetch(run_id: str) -> None:
        started = time.monotonic()
        with httpx.Client(timeout=5) as client:
            client.get(f"{wes.url}/runs/{run_id}/status").raise_for_status()
        results[run_id] = time.monotonic() - started

    slow = threading.Thread(target=fetch, args=("slow",))
    slow.start()
    time.sleep(0.1)
    fetch("fast")
    slow.join()
    assert results["fast"] < 0.5 <= 0.9 <= results["slow"]

    wes.delay_seconds = 0.5
    started = time.monotonic()
    threads = [threading.Thread(target=fetch, args=("fast",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.2


def test_slow_answer_times_out_the_client_and_stop_cuts_it_short() -> None:
    wes = FakeWes()
    wes.start()
    wes.delay_seconds = 30
    with httpx.Client(timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.get(wes.url + "/runs")
    errors: list[Exception] = []

    def fetch() -> None:
        try:
            httpx.get(wes.url + "/runs", timeout=10)
        except httpx.HTTPError as error:
            errors.append(error)

    pending = threading.Thread(target=fetch)
    pending.start()
    time.sleep(0.2)
    started = time.monotonic()
    wes.stop()
    pending.join()
    assert time.monotonic() - started < 1.0
    assert errors


def test_auth_basic_and_bearer() -> None:
    with FakeWes(auth=("alice", "pw")) as wes:
        wes.add_run("r1")
        wes.add_file("r1.log", "hello")
        denied = httpx.get(wes.url + "/runs/r1/status")
        assert denied.status_code == 401
        assert denied.json() == {"msg": "The request is unauthorized.", "status_code": 401}
        assert httpx.get(wes.url + "/runs/r1/status", auth=("alice", "wrong")).status_code == 401
        assert httpx.get(wes.url + "/runs/r1/status", auth=("alice", "pw")).status_code == 200
        assert httpx.get(wes.file_url("r1.log")).status_code == 401
        assert httpx.get(wes.file_url("r1.log"), auth=("alice", "pw")).text == "hello"
        wes.auth = "tok"
        assert httpx.get(wes.url + "/runs", headers={"Authorization": "Bearer tok"}).status_code == 200
        assert httpx.get(wes.url + "/runs", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_unknown_runs_and_ghosts(wes: FakeWes, http: httpx.Client) -> None:
    assert http.get("/runs/nope/status").json() == {"msg": "run nope not found", "status_code": 404}
    assert http.post("/runs/nope/cancel").status_code == 404
    wes.ghost_running = True
    assert http.get("/runs/ghost/status").json() == {"run_id": "ghost", "state": "RUNNING"}
    assert [item["run_id"] for item in http.get("/runs").json()["runs"]] == ["ghost"]
    assert http.get("/runs/ghost").status_code == 500
    assert wes.ghosts == ["ghost"]


def test_cancel_behaviours(wes: FakeWes, http: httpx.Client) -> None:
    wes.add_run("r1")
    assert http.post("/runs/r1/cancel").json() == {"run_id": "r1"}
    assert [http.get("/runs/r1/status").json()["state"] for _ in range(3)] == ["CANCELING", "CANCELED", "CANCELED"]
    assert wes.cancels == ["r1"]

    wes.add_run("r2")
    wes.cancel_behavior = "noop"
    assert http.post("/runs/r2/cancel").status_code == 200
    assert http.get("/runs/r2").json()["state"] == "RUNNING"

    wes.add_run("r3", "COMPLETE")
    wes.cancel_behavior = "forbidden_if_finished"
    assert http.post("/runs/r3/cancel").status_code == 403
    wes.cancel_behavior = "null"
    assert http.post("/runs/r3/cancel").content == b"null"
    wes.set_state("r3", "EXECUTOR_ERROR", exit_code=2)
    assert http.get("/runs/r3").json()["run_log"]["exit_code"] == 2


def test_overrides_files_base_path_and_service_info() -> None:
    with FakeWes(base_path="") as wes, httpx.Client(base_url=wes.url) as http:
        assert wes.url == wes.root_url
        wes.add_run("r1", "COMPLETE")
        info = http.get("/service-info").json()
        assert info["system_state_counts"] == {"COMPLETE": 1}
        wes.service_info = {"supported_wes_versions": "1.0.0"}
        assert http.get("/service-info").json() == {"supported_wes_versions": "1.0.0"}
        wes.overrides["/runs/r1"] = (200, {"run_id": "r1", "state": None, "task_logs": None}, "application/json")
        wes.overrides["/runs?page_size=3"] = (200, "not json", "text/plain")
        assert http.get("/runs/r1").json()["state"] is None
        assert http.get("/runs", params={"page_size": 3}).text == "not json"
        assert http.get("/runs").json()["runs"][0]["run_id"] == "r1"
        url = wes.add_file("log.txt", b"\x1b[31mred\x1b[0m")
        assert url == f"{wes.root_url}/files/log.txt"
        assert http.get(url).content == b"\x1b[31mred\x1b[0m"
        assert http.get("/files/none").status_code == 404
        assert http.get("/unknown").status_code == 404
        assert http.delete("/runs/r1").status_code == 405
        assert wes.request_paths("GET")[0] == "/service-info"


def test_submission_creates_a_run(wes: FakeWes, http: httpx.Client) -> None:
    response = http.post(
        "/runs",
        data={
            "workflow_url": "echo.cwl",
            "workflow_type": "CWL",
            "workflow_type_version": "v1.0",
            "workflow_params": json.dumps({"message": "hi"}),
            "tags": json.dumps({"by": "wesbot"}),
        },
        files={"workflow_attachment": ("echo.cwl", b"cwlVersion: v1.0")},
    )
    run_id = response.json()["run_id"]
    assert wes.runs[run_id]["request"]["tags"] == {"by": "wesbot"}
    assert wes.runs[run_id]["request"]["workflow_params"] == {"message": "hi"}
    assert wes.submissions[0]["workflow_attachment[]"] == [{"filename": "echo.cwl", "content": b"cwlVersion: v1.0"}]
    assert http.get(f"/runs/{run_id}/status").json()["state"] == "QUEUED"


# ---------------------------------------------------------------------------------------------------
# FakeSlack: Web API


@pytest.fixture
def web(slack: FakeSlack) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url)


def test_web_client_posts_updates_and_deletes(slack: FakeSlack, web: WebClient) -> None:
    first = web.chat_postMessage(channel="C1", text="hello", blocks=[{"type": "divider"}])
    second = web.chat_postMessage(channel="C1", text="again", thread_ts=first["ts"])
    assert first["ok"] and first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    call = slack.calls_to("chat.postMessage")[0]
    assert call["args"] == {"channel": "C1", "text": "hello", "blocks": [{"type": "divider"}]}
    assert call["token"] == BOT_TOKEN
    assert web.chat_update(channel="C1", ts=first["ts"], text="edited")["text"] == "edited"
    assert slack.messages[first["ts"]]["text"] == "edited"
    web.chat_delete(channel="C1", ts=first["ts"])
    assert list(slack.messages) == [second["ts"]]
    assert web.chat_postEphemeral(channel="C1", user="U1", text="psst")["message_ts"]
    assert web.auth_test()["user_id"] == "UBOT"
    assert web.conversations_info(channel="C9")["channel"]["id"] == "C9"
    assert web.users_info(user="U7")["user"]["id"] == "U7"
    slack.usergroups["S1"] = ["U1", "U2"]
    assert web.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]


def test_form_and_multipart_bodies_are_parsed(slack: FakeSlack, web: WebClient) -> None:
    web.api_call("chat.postMessage", params={"channel": "C1", "text": "form", "blocks": '[{"type": "divider"}]'})
    web.api_call("chat.postMessage", data={"channel": "C2", "text": "multipart"})
    form, multipart = slack.calls_to("chat.postMessage")
    assert form["args"] == {"channel": "C1", "text": "form", "blocks": [{"type": "divider"}]}
    assert multipart["args"] == {"channel": "C2", "text": "multipart"}
    assert multipart["token"] == BOT_TOKEN


def test_injected_errors_raise_slack_api_error(slack: FakeSlack, web: WebClient) -> None:
    slack.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(SlackApiError) as failed:
        web.chat_postMessage(channel="C1", text="x")
    assert failed.value.response["error"] == "not_in_channel"

    slack.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        web.chat_postMessage(channel="C1", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"

    slack.status_next("chat.postMessage", 500, {"ok": False, "error": "fatal_error"})
    with pytest.raises(SlackApiError) as broken:
        web.chat_postMessage(channel="C1", text="x")
    assert broken.value.response.status_code == 500

    assert web.chat_postMessage(channel="C1", text="x")["ok"]
    with pytest.raises(SlackApiError, match="invalid_auth"):
        WebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    with pytest.raises(SlackApiError, match="unknown_method"):
        web.api_call("no.such.method")
    assert [call["status"] for call in slack.calls_to("chat.postMessage")] == [200, 429, 500, 200]


def test_response_url_sink(slack: FakeSlack) -> None:
    url = slack.response_url("cmd1")
    assert url.endswith("/respond/cmd1")

    def later() -> None:
        time.sleep(0.1)
        WebhookClient(url).send(text="done", response_type="ephemeral")

    poster = threading.Thread(target=later)
    poster.start()
    body = slack.wait_for_response("cmd1", timeout=2)
    poster.join()
    assert body == {"text": "done", "response_type": "ephemeral"}
    assert slack.responses == [("cmd1", body)]
    with pytest.raises(AssertionError, match="timed out"):
        slack.wait_for_response("cmd1", count=2, timeout=0.1)


def test_wait_for_call_wakes_on_the_call(slack: FakeSlack, web: WebClient) -> None:
    poster = threading.Timer(0.1, lambda: web.chat_postMessage(channel="C1", text="later"))
    poster.start()
    started = time.monotonic()
    assert slack.wait_for_call("chat.postMessage", timeout=2)["args"]["text"] == "later"
    poster.join()
    assert time.monotonic() - started < 1


# ---------------------------------------------------------------------------------------------------
# FakeSlack: Socket Mode with slack_sdk's builtin client


def test_builtin_socket_mode_client_receives_and_acks(slack: FakeSlack) -> None:
    received: list[SocketModeRequest] = []

    def listener(client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id, payload={"text": "ok"}))

    client = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(base_url=slack.api_url))
    client.socket_mode_request_listeners.append(listener)
    try:
        client.connect()
        slack.wait_connected()
        assert slack.calls_to("apps.connections.open")[0]["token"] == APP_TOKEN
        assert slack.ws_sent[0]["type"] == "hello"

        payload = slash_command_payload("status r1", response_url=slack.response_url("c1"))
        envelope_id = slack.send_envelope("slash_commands", payload)
        ack = slack.wait_for_ack(envelope_id)
        assert ack == {"envelope_id": envelope_id, "payload": {"text": "ok"}}
        assert received[0].type == "slash_commands" and received[0].payload == payload

        interactive = slack.send_envelope("interactive", block_actions_payload("cancel_run", "r1"), "e-2")
        assert interactive == "e-2"
        assert slack.wait_for_ack("e-2") == {"envelope_id": "e-2", "payload": {"text": "ok"}}
        assert received[1].payload["actions"][0]["value"] == "r1"
    finally:
        started = time.monotonic()
        close_socket_mode_client(client)
        assert time.monotonic() - started < 1
    slack.wait_disconnected()
    assert slack.connections_opened == 1


def test_socket_mode_client_reconnects_on_disconnect(slack: FakeSlack) -> None:
    client = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(base_url=slack.api_url))
    try:
        client.connect()
        slack.wait_connected()
        first_session = client.session_id()
        slack.send_disconnect()
        slack.wait_for(lambda: slack.connections_opened == 2, what="a second connection")
        assert len(slack.calls_to("apps.connections.open")) == 2
        deadline = time.monotonic() + 2
        while client.session_id() == first_session and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.is_connected() and client.session_id() != first_session
    finally:
        close_socket_mode_client(client)


# ---------------------------------------------------------------------------------------------------
# payload helpers


def test_signed_request_headers_verify() -> None:
    body = form_body(slash_command_payload("list"))
    headers = signed_request_headers(body, SIGNING_SECRET)
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not verifier.is_valid(body + b"x", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    old = signed_request_headers(body, SIGNING_SECRET, timestamp=1_000_000)
    assert old["X-Slack-Request-Timestamp"] == "1000000"


def test_form_bodies() -> None:
    command = slash_command_payload("status r1", user_id="U9", channel_id="C9", response_url="http://x/y")
    fields = {key: values[0] for key, values in parse_qs(form_body(command).decode()).items()}
    assert fields["command"] == "/wes" and fields["text"] == "status r1" and fields["user_id"] == "U9"
    assert fields["response_url"] == "http://x/y"
    assert {"team_id", "trigger_id", "api_app_id", "channel_id", "user_name"} <= set(fields)

    action = block_actions_payload("cancel_run", "r1", user_id="U9", channel_id="C9")
    decoded = json.loads(parse_qs(form_body(action).decode())["payload"][0])
    assert decoded == action
    assert decoded["actions"][0]["action_id"] == "cancel_run" and decoded["user"]["id"] == "U9"
    assert decoded["channel"]["id"] == "C9"
