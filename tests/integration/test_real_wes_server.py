"""What the real GA4GH reference WES server (wes-service 5.0, cwltool back end) really does.

These tests pin down the quirks wesbot has to live with (see ../shared/WES-NOTES.md). They talk plain httpx,
not wesbot's client, so they describe the server, not our reading of it. If one of them fails after a
wes-service upgrade, the server changed: update WES-NOTES.md and the client, not just the test.

The shared session server (``real_wes``) only ever sees well-behaved traffic: every run is polled to its end
before the next submission, and no ghost run ids. The destructive checks (ghost ids, the lost-child bug,
service-info, which spawns a child) run on a private server of their own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.realwes import (
    ECHO_CWL,
    ECHO_MESSAGE,
    SLEEP_CWL,
    RealRuns,
    RealWes,
    find_wes_server,
    get_status,
    submit,
    wait_until_terminal,
)

pytestmark = pytest.mark.real_wes

PROBLEM_KEYS = {"type", "title", "detail", "status"}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def private_wes(real_wes: RealWes) -> Iterator[RealWes]:
    """A throwaway server for checks that leave ghosts or broken runs behind.

    Depends on real_wes only for its skip/fail handling when wes-server is missing.
    """
    server = RealWes(find_wes_server())
    try:
        yield server
    finally:
        server.stop()


def _problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert set(body) == PROBLEM_KEYS
    assert body["status"] == status
    return body


# -- the shared server, well-behaved traffic ------------------------------------------------------------


def test_server_starts_fast_and_listens_on_loopback(real_wes: RealWes) -> None:
    assert real_wes.url.startswith("http://127.0.0.1:")
    assert real_wes.url.endswith("/ga4gh/wes/v1")
    assert real_wes.running
    assert real_wes.startup_seconds < 60
    assert "Uvicorn running on http://127.0.0.1:" in real_wes.log_text()


def test_runs_end_in_the_expected_states(real_runs: RealRuns) -> None:
    assert real_runs.ok_state == "COMPLETE"
    assert real_runs.fail_state == "EXECUTOR_ERROR"
    assert len(real_runs.ok_id) == 32 and int(real_runs.ok_id, 16) >= 0  # uuid4().hex
    assert real_runs.ok_id != real_runs.fail_id


def test_list_uses_workflows_key_and_empty_token(
    real_wes: RealWes, real_runs: RealRuns, http: httpx.Client
) -> None:
    r = http.get(real_wes.url + "/runs")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"workflows", "next_page_token"}  # not "runs"
    assert body["next_page_token"] == ""
    states = {w["run_id"]: w["state"] for w in body["workflows"]}
    assert all(set(w) == {"run_id", "state"} for w in body["workflows"])  # RunStatus, not 1.1's RunSummary
    assert states[real_runs.ok_id] == "COMPLETE"
    assert states[real_runs.fail_id] == "EXECUTOR_ERROR"


def test_list_ignores_paging(real_wes: RealWes, real_runs: RealRuns, http: httpx.Client) -> None:
    full = http.get(real_wes.url + "/runs").json()
    paged = http.get(real_wes.url + "/runs", params={"page_size": 1, "page_token": "whatever"}).json()
    assert len(paged["workflows"]) >= 2
    assert {w["run_id"] for w in paged["workflows"]} == {w["run_id"] for w in full["workflows"]}
    assert paged["next_page_token"] == ""


def test_finished_runs_stay_finished(real_wes: RealWes, real_runs: RealRuns, http: httpx.Client) -> None:
    for _ in range(3):
        assert get_status(real_wes.url, real_runs.ok_id, client=http) == "COMPLETE"
        assert get_status(real_wes.url, real_runs.fail_id, client=http) == "EXECUTOR_ERROR"
    r = http.get(f"{real_wes.url}/runs/{real_runs.ok_id}/status")
    assert r.json() == {"run_id": real_runs.ok_id, "state": "COMPLETE"}


def test_echo_run_log_and_outputs(real_wes: RealWes, real_runs: RealRuns, http: httpx.Client) -> None:
    r = http.get(f"{real_wes.url}/runs/{real_runs.ok_id}")
    assert r.status_code == 200
    log = r.json()
    assert set(log) == {"run_id", "request", "state", "run_log", "task_logs", "outputs"}  # no task_logs_url
    assert log["run_id"] == real_runs.ok_id
    assert log["state"] == "COMPLETE"
    assert log["task_logs"] == []

    request = log["request"]
    assert request["workflow_params"] == {"message": ECHO_MESSAGE}
    assert request["workflow_type"] == "CWL"
    assert request["workflow_type_version"] == "v1.0"
    assert request["workflow_url"].startswith("file://") and request["workflow_url"].endswith("/echo.cwl")

    run_log = log["run_log"]
    assert run_log["exit_code"] == 0
    assert run_log["cmd"] == [""]
    assert run_log["start_time"] == "" and run_log["end_time"] == "" and run_log["stdout"] == ""
    assert "Final process status is success" in run_log["stderr"]

    out = log["outputs"]["out"]
    assert out["class"] == "File"
    assert out["basename"] == "greeting.txt"
    assert out["location"].startswith("file:///")
    assert out["size"] == len(ECHO_MESSAGE) + 1
    # The output is a local path on the server's machine (here: ours).
    assert Path(out["path"]).read_text() == ECHO_MESSAGE + "\n"


def test_fail_run_has_inline_ansi_stderr(real_wes: RealWes, real_runs: RealRuns, http: httpx.Client) -> None:
    r = http.get(f"{real_wes.url}/runs/{real_runs.fail_id}")
    assert r.status_code == 200
    log = r.json()
    assert log["state"] == "EXECUTOR_ERROR"
    assert log["outputs"] == {}
    run_log = log["run_log"]
    stderr = run_log["stderr"]
    # The whole cwltool log inline, not a URL, with ANSI colour codes.
    assert not stderr.startswith(("http://", "https://", "file:", "/"))
    assert "\x1b[" in stderr
    assert "oops" in stderr  # the tool's own stderr
    assert "exited with status: 3" in stderr
    assert "permanentFail" in stderr
    # exit_code is cwltool's (1 for permanentFail), not the tool's 3.
    assert run_log["exit_code"] == 1
    assert run_log["stdout"] == ""


def test_tasks_endpoint_is_404_problem_json(
    real_wes: RealWes, real_runs: RealRuns, http: httpx.Client
) -> None:
    _problem(http.get(f"{real_wes.url}/runs/{real_runs.ok_id}/tasks"), 404)
    _problem(http.get(f"{real_wes.url}/runs/{real_runs.ok_id}/tasks/0"), 404)


def test_post_runs_wants_multipart(real_wes: RealWes, http: httpx.Client) -> None:
    body = _problem(http.post(real_wes.url + "/runs", json={"workflow_url": "echo.cwl"}), 415)
    assert "multipart/form-data" in str(body["detail"])
    # A multipart submission it cannot use (no workflow_url, no params) is a generic 500. No child is started.
    body = _problem(http.post(real_wes.url + "/runs", files={"workflow_type": (None, "CWL")}), 500)
    assert body["title"] == "Internal Server Error"


def test_cancel_is_a_no_op(real_wes: RealWes, real_runs: RealRuns, http: httpx.Client) -> None:
    run_id = submit(real_wes.url, SLEEP_CWL, {"seconds": 2}, client=http)
    t0 = time.monotonic()
    assert get_status(real_wes.url, run_id, client=http) == "RUNNING"  # never QUEUED
    r = http.post(f"{real_wes.url}/runs/{run_id}/cancel")
    assert r.status_code == 200
    assert r.json() == {"run_id": run_id}
    assert get_status(real_wes.url, run_id, client=http) == "RUNNING"  # no CANCELING
    assert wait_until_terminal(real_wes.url, run_id, timeout=30, client=http) == "COMPLETE"  # not CANCELED
    assert time.monotonic() - t0 >= 1.5  # it really slept to its natural end
    log = http.get(f"{real_wes.url}/runs/{run_id}").json()
    assert log["run_log"]["exit_code"] == 0


# -- a private server, for checks that leave a mess ----------------------------------------------------


def test_service_info(private_wes: RealWes, http: httpx.Client) -> None:
    r = http.get(private_wes.url + "/service-info")
    assert r.status_code == 200
    info = r.json()
    assert info["supported_wes_versions"] == ["0.3.0", "1.0.0"]
    assert info["workflow_type_versions"] == {"CWL": {"workflow_type_version": ["v1.0", "v1.1", "v1.2"]}}
    assert info["system_state_counts"] == {}
    assert info["tags"] == {}
    # It runs `cwltool --version` but reports the (empty) stderr of it, as a Python bytes repr.
    assert info["workflow_engine_versions"] == {"cwl-runner": "b''"}
    # Required 1.1 ServiceInfo fields are missing.
    for missing in ("id", "name", "type", "organization", "version", "auth_instructions_url"):
        assert missing not in info


def _wait_until_child_exited(server: RealWes, run_id: str, timeout: float = 30.0) -> None:
    """Wait, without asking the server, until the run's cwltool process has exited (is a zombie)."""
    pid = int((server.run_dir(run_id) / "pid").read_text())
    stat = Path(f"/proc/{pid}/stat")
    if not stat.parent.exists():  # no procfs: give it ample time
        time.sleep(5)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return
        time.sleep(0.05)
    raise TimeoutError(f"cwltool for run {run_id} (pid {pid}) still running after {timeout} s")


def test_lost_child_bug(private_wes: RealWes, http: httpx.Client) -> None:
    """A run that finishes unpolled, then any new child process (here service-info's `cwltool --version`):
    the run reads EXECUTOR_ERROR once, then RUNNING forever."""
    url = private_wes.url
    run_id = submit(url, ECHO_CWL, {"message": "lost"}, client=http)
    _wait_until_child_exited(private_wes, run_id)
    assert http.get(url + "/service-info").status_code == 200  # reaps the finished child behind the backend
    assert get_status(url, run_id, client=http) == "EXECUTOR_ERROR"
    for _ in range(3):
        assert get_status(url, run_id, client=http) == "RUNNING"
    listed = {w["run_id"]: w["state"] for w in http.get(url + "/runs").json()["workflows"]}
    assert listed[run_id] == "RUNNING"
    # The run itself succeeded: its log says so, while the state says RUNNING.
    log = http.get(f"{url}/runs/{run_id}").json()
    assert log["state"] == "RUNNING"
    assert log["run_log"]["exit_code"] == -1
    assert "Final process status is success" in log["run_log"]["stderr"]


def test_ghost_run_ids(private_wes: RealWes, http: httpx.Client) -> None:
    url = private_wes.url
    ghost = uuid.uuid4().hex
    r = http.get(f"{url}/runs/{ghost}/status")
    assert r.status_code == 200
    assert r.json() == {"run_id": ghost, "state": "RUNNING"}
    _problem(http.get(f"{url}/runs/{ghost}"), 500)
    # Asking about it created it: it is listed, RUNNING, from now on.
    listed = {w["run_id"]: w["state"] for w in http.get(url + "/runs").json()["workflows"]}
    assert listed[ghost] == "RUNNING"
    assert private_wes.run_dir(ghost).is_dir()
    # Cancel answers 200 for a ghost too.
    r = http.post(f"{url}/runs/{ghost}/cancel")
    assert r.status_code == 200 and r.json() == {"run_id": ghost}
    assert get_status(url, ghost, client=http) == "RUNNING"


def test_wesbot_never_shows_a_ghost_as_running(private_wes: RealWes) -> None:
    """`wesbot ask status` of an id the server never ran: "no such run", though the server answers RUNNING."""
    from tests.botproc import clean_env, run

    ghost = uuid.uuid4().hex
    out = run(["ask", "status", ghost], clean_env(WES_URL=private_wes.url), Path(private_wes.workdir))
    assert out.returncode == 1, out.stdout
    assert f"no such run {ghost} on the WES server at" in out.stderr and "RUNNING" in out.stderr
