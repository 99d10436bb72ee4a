"""The parse_* functions of wesbot.wes.models: every quirk of WES-NOTES.md that lives in a body."""

from __future__ import annotations

import pytest

from wesbot.wes.models import (
    Log,
    RunState,
    ShapeError,
    is_terminal,
    looks_like_log_content,
    parse_cmd,
    parse_exit_code,
    parse_log,
    parse_page_token,
    parse_run_list,
    parse_run_log,
    parse_run_status,
    parse_service_info,
    parse_state,
    parse_tags,
    parse_task_page,
    resolve_log_ref,
)

BASE = "http://wes.test/ga4gh/wes/v1/runs/r1"


# ---- states ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("RUNNING", RunState.RUNNING),
        ("complete", RunState.COMPLETE),  # lower case
        (" Preempted ", RunState.PREEMPTED),
        ("DELETED", "DELETED"),  # sapporo's own states are kept raw
        ("DELETING", "DELETING"),
        (None, None),
        ("", None),
        (3, "3"),
    ],
)
def test_parse_state(raw: object, expected: object) -> None:
    assert parse_state(raw) == expected


def test_unknown_states_are_not_terminal() -> None:
    assert not is_terminal(parse_state("DELETED"))
    assert not is_terminal(None)
    assert not is_terminal(RunState.CANCELING)
    assert is_terminal(parse_state("canceled"))


# ---- run lists ------------------------------------------------------------------------------------

def test_run_list_runs_key() -> None:
    page = parse_run_list({
        "runs": [{"run_id": "a", "state": "RUNNING", "start_time": "2024-01-01T00:00:00Z",
                  "end_time": None, "tags": {"user": "ann"}}],
        "next_page_token": "t2",
    })
    assert [run.run_id for run in page.runs] == ["a"]
    run = page.runs[0]
    assert run.state is RunState.RUNNING
    assert run.start_time == "2024-01-01T00:00:00Z"
    assert run.end_time is None
    assert run.tags == {"user": "ann"}
    assert page.next_page_token == "t2"


def test_run_list_workflows_key() -> None:
    page = parse_run_list({"workflows": [{"run_id": "a", "state": "COMPLETE"}], "next_page_token": ""})
    assert [(run.run_id, run.state) for run in page.runs] == [("a", RunState.COMPLETE)]
    assert page.next_page_token is None


def test_run_list_runs_null_falls_back_to_workflows() -> None:
    page = parse_run_list({"runs": None, "workflows": [{"run_id": "w"}]})
    assert [run.run_id for run in page.runs] == ["w"]


def test_run_list_tolerates_bad_items() -> None:
    page = parse_run_list({"runs": [
        "junk", 3, None, ["x"],
        {"state": "RUNNING"},  # no run_id: nothing to act on
        {"run_id": 42, "state": None, "tags": ["a", "b"], "start_time": 17},
        {"run_id": "b", "state": "weird", "tags": {"n": 1, "none": None, "obj": {"k": 1}, "s": "v"}},
    ]})
    assert [run.run_id for run in page.runs] == ["42", "b"]
    first, second = page.runs
    assert first.state is None
    assert first.tags == {}
    assert first.start_time is None
    assert second.state == "weird"
    assert second.tags == {"n": "1", "obj": '{"k": 1}', "s": "v"}


def test_run_list_bare_list_and_empty_object() -> None:
    assert [run.run_id for run in parse_run_list([{"run_id": "a"}]).runs] == ["a"]
    assert parse_run_list({}).runs == []
    assert parse_run_list({"runs": "nope"}).runs == []


@pytest.mark.parametrize("body", ["text", 3, None, True])
def test_run_list_wrong_shape(body: object) -> None:
    with pytest.raises(ShapeError):
        parse_run_list(body)


@pytest.mark.parametrize(
    ("token", "expected"),
    [("", None), (None, None), ("   ", None), (5, None), ([], None), ("abc", "abc")],
)
def test_page_token(token: object, expected: str | None) -> None:
    assert parse_page_token(token) == expected
    assert parse_run_list({"runs": [], "next_page_token": token}).next_page_token == expected


def test_page_token_missing() -> None:
    assert parse_run_list({"runs": []}).next_page_token is None


# ---- logs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, 0), (1, 1), (-1, -1), ("1", 1), (" 2 ", 2), (1.0, 1), ("3.0", 3),
        (1.5, None), (True, None), (False, None), (None, None), ("boom", None), ([1], None), ({}, None),
    ],
)
def test_exit_code(raw: object, expected: int | None) -> None:
    assert parse_exit_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("echo hi", ["echo hi"]),
        (["echo", 1, None, "x"], ["echo", "1", "x"]),
        (None, []),
        ("", []),
        (5, []),
    ],
)
def test_cmd(raw: object, expected: list[str]) -> None:
    assert parse_cmd(raw) == expected


def test_tags() -> None:
    assert parse_tags(["a"]) == {}
    assert parse_tags(None) == {}
    assert parse_tags({"a": 1, "b": True, 3: "x"}) == {"a": "1", "b": "True", "3": "x"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Paths are resolved against the URL of the response they came in.
        ("../../logs/x", "http://wes.test/ga4gh/wes/logs/x"),
        ("/api/jobs/1/stdout", "http://wes.test/api/jobs/1/stdout"),
        ("logs/stdout.txt", "http://wes.test/ga4gh/wes/v1/runs/logs/stdout.txt"),
        # URLs of any scheme stay as they are.
        ("https://logs.example/run/1", "https://logs.example/run/1"),
        ("file:///var/log/wes/1.err", "file:///var/log/wes/1.err"),
        ("s3://bucket/key", "s3://bucket/key"),
        # A single word cannot be told apart from a one-word log: kept.
        ("Killed", "Killed"),
        # Content: whitespace, newlines, ANSI codes.
        ("Traceback (most recent call last):\n  File x", "Traceback (most recent call last):\n  File x"),
        ("\x1b[1;30mINFO\x1b[0m /usr/bin/cwltool 3.1", "\x1b[1;30mINFO\x1b[0m /usr/bin/cwltool 3.1"),
        ("error: /tmp/x not found", "error: /tmp/x not found"),
        # An empty field is a log, an empty one (not "not available yet").
        ("", ""),
        ("   ", ""),
        (None, None),
        (12, None),
    ],
)
def test_resolve_log_ref(raw: object, expected: str | None) -> None:
    assert resolve_log_ref(raw, BASE) == expected


def test_long_log_without_spaces_is_content() -> None:
    text = "x/" * 2000
    assert looks_like_log_content(text)
    assert resolve_log_ref(text, BASE) == text


def test_resolve_log_ref_without_base_keeps_paths() -> None:
    assert resolve_log_ref("../../logs/x", None) == "../../logs/x"


def test_parse_log_tolerates_every_field() -> None:
    log = parse_log(
        {
            "name": "main", "cmd": "echo hi", "start_time": "", "end_time": 5,
            "stdout": "/api/jobs/1/stdout", "stderr": "line one\nline two", "exit_code": "1",
            "system_logs": "oom", "id": 7, "tes_uri": None,
        },
        base_url=BASE,
    )
    assert log == Log(
        name="main", cmd=["echo hi"], start_time=None, end_time=None,
        stdout="http://wes.test/api/jobs/1/stdout", stderr="line one\nline two", exit_code=1,
        system_logs=["oom"], id="7", tes_uri=None,
    )


@pytest.mark.parametrize("raw", [None, "x", [], 3])
def test_parse_log_non_object(raw: object) -> None:
    assert parse_log(raw) == Log()


# ---- run logs -------------------------------------------------------------------------------------

def test_run_log_full() -> None:
    run = parse_run_log(
        {
            "run_id": "r1",
            "state": "executor_error",
            "request": {
                "workflow_url": "echo.cwl", "workflow_type": "CWL", "workflow_type_version": "v1.0",
                "workflow_params": '{"msg": "hi"}', "tags": {"a": 1},
            },
            "run_log": {"name": "echo", "exit_code": 1.0, "stderr": "../../logs/r1.err"},
            "outputs": ["any", {"json": True}],
            "task_logs_url": "tasks?view=full",
            "task_logs": [{"name": "t1", "exit_code": 0}, "junk"],
        },
        base_url=BASE,
    )
    assert run.run_id == "r1"
    assert run.state is RunState.EXECUTOR_ERROR
    assert run.request.workflow_params == {"msg": "hi"}
    assert run.request.tags == {"a": "1"}
    assert run.run_log.exit_code == 1
    assert run.run_log.stderr == "http://wes.test/ga4gh/wes/logs/r1.err"
    assert run.outputs == ["any", {"json": True}]
    assert run.task_logs_url == "http://wes.test/ga4gh/wes/v1/runs/tasks?view=full"
    assert run.task_logs == [Log(name="t1", exit_code=0)]


def test_run_log_minimal_and_wrong_types() -> None:
    run = parse_run_log(
        {"run_id": "r1", "state": None, "request": "x", "run_log": None, "task_logs": None,
         "task_logs_url": 3},
    )
    assert run.state is None
    assert run.request.workflow_url is None
    assert run.run_log == Log()
    assert run.task_logs is None
    assert run.task_logs_url is None
    assert run.outputs is None
    assert parse_run_log({"run_id": "r1", "task_logs": {"a": 1}}).task_logs is None
    assert parse_run_log({"run_id": "r1", "task_logs": []}).task_logs == []


def test_run_log_params_not_json_kept() -> None:
    run = parse_run_log({"run_id": "r", "request": {"workflow_params": "{not json"}})
    assert run.request.workflow_params == "{not json"
    run = parse_run_log({"run_id": "r", "request": {"workflow_params": {"a": 1}}})
    assert run.request.workflow_params == {"a": 1}


def test_run_log_without_run_id_uses_the_asked_id() -> None:
    assert parse_run_log({"state": "RUNNING"}, run_id="asked").run_id == "asked"
    assert parse_run_status({"state": "RUNNING"}, run_id="asked").run_id == "asked"
    assert parse_run_status({"run_id": 5, "state": "QUEUED"}).run_id == "5"


@pytest.mark.parametrize("body", [[{"run_id": "r"}], "RUNNING", None, {"foo": 1}])
def test_run_status_wrong_shape(body: object) -> None:
    with pytest.raises(ShapeError):
        parse_run_status(body, run_id="r")


# ---- task pages -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "names", "token"),
    [
        ({"task_logs": [{"name": "a", "id": "1"}], "next_page_token": "n"}, ["a"], "n"),
        ({"tasks": [{"name": "b"}]}, ["b"], None),
        ({"task_logs": None, "next_page_token": ""}, [], None),
        ({}, [], None),
        (None, [], None),
        ([], [], None),
        ([{"name": "c", "exit_code": 0}, 5], ["c"], None),
    ],
)
def test_task_page(body: object, names: list[str], token: str | None) -> None:
    page = parse_task_page(body, run_id="r")
    assert [task.name for task in page.tasks] == names
    assert page.next_page_token == token
    assert page.source == "endpoint"


def test_task_page_wrong_shape() -> None:
    with pytest.raises(ShapeError):
        parse_task_page("nope", run_id="r")


# ---- service-info ---------------------------------------------------------------------------------

def test_service_info_spec_shape() -> None:
    info = parse_service_info({
        "id": "org.example.wes", "name": "WES", "version": "1.0",
        "organization": {"name": "Example", "url": "https://example.org"},
        "supported_wes_versions": ["1.0.0", "1.1.0"],
        "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.0", "v1.2"]}},
        "workflow_engine_versions": {"cwltool": {"workflow_engine_version": ["3.1"]}},
        "system_state_counts": {"RUNNING": 2, "COMPLETE": "5"},
        "auth_instructions_url": "https://example.org/auth",
    })
    assert info.name == "WES"
    assert info.organization == "Example"
    assert info.supported_wes_versions == ["1.0.0", "1.1.0"]
    assert info.workflow_type_versions == {"CWL": ["v1.0", "v1.2"]}
    assert info.workflow_engine_versions == {"cwltool": "3.1"}
    assert info.system_state_counts == {"RUNNING": 2, "COMPLETE": 5}
    assert info.auth_instructions_url == "https://example.org/auth"


def test_service_info_odd_types() -> None:
    info = parse_service_info({
        "version": 2, "organization": "Org",
        "supported_wes_versions": "1.0.0",
        "workflow_type_versions": {"CWL": ["v1.0"], "WDL": "1.0", "NFL": None, "X": {"other": ["1"]}},
        "workflow_engine_versions": {"toil": "5.0", "cromwell": ["85", "86"], "none": None},
        "system_state_counts": {"RUNNING": "two", "QUEUED": 1.0, "X": None},
    })
    assert info.version == "2"
    assert info.organization == "Org"
    assert info.supported_wes_versions == ["1.0.0"]
    assert info.workflow_type_versions == {"CWL": ["v1.0"], "WDL": ["1.0"], "NFL": [], "X": ["1"]}
    assert info.workflow_engine_versions == {"toil": "5.0", "cromwell": "85, 86"}
    assert info.system_state_counts == {"QUEUED": 1}


def test_service_info_missing_everything() -> None:
    info = parse_service_info({})
    assert info.name is None
    assert info.supported_wes_versions == []
    assert info.workflow_type_versions == {}
    assert parse_service_info({"workflow_type_versions": ["CWL", "WDL"]}).workflow_type_versions == {
        "CWL": [], "WDL": []}


def test_service_info_wrong_shape() -> None:
    with pytest.raises(ShapeError, match="a JSON list instead of a JSON object"):
        parse_service_info([])
