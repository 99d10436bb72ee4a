"""The command core: paging, filters that read several pages, resuming mid-page, and errors as results."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from wesbot.commands import parse
from wesbot.core import LogRef, execute, run_failed, run_text, task_log_ref
from wesbot.results import DetailsResult, ErrorResult, LogsResult, RunsResult, TaskResult, TasksResult
from wesbot.textview import render_text
from wesbot.wes.errors import NotFound, WesUnreachable
from wesbot.wes.logs import LogTail
from wesbot.wes.models import Log, RunListPage, RunLog, RunState, RunStatus, RunSummary, TaskLog, TaskPage


@dataclass
class PagedWes:
    """An in-memory server with fixed pages: pages[token] = (items, next_token)."""

    pages: dict[str | None, tuple[list[RunSummary], str | None]]
    task_pages: dict[str | None, tuple[list[Log], str | None]] = field(default_factory=dict)
    calls: list[str | None] = field(default_factory=list)
    host: str = "wes.test"

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        self.calls.append(page_token)
        runs, nxt = self.pages[page_token]
        return RunListPage(runs=runs, next_page_token=nxt)

    def get_status(self, run_id: str) -> RunStatus:
        raise NotFound(f"run {run_id} not found", status_code=404)

    def get_run(self, run_id: str) -> RunLog:
        raise WesUnreachable("WES server at wes.test did not answer within 10 s")

    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage:
        self.calls.append(page_token)
        tasks, nxt = self.task_pages[page_token]
        return TaskPage(run_id=run_id, tasks=tasks, next_page_token=nxt)

    def get_task(self, run_id: str, task_id: str) -> TaskLog:
        raise NotImplementedError


def runs(prefix: str, states: list[RunState]) -> list[RunSummary]:
    return [RunSummary(run_id=f"{prefix}{i}", state=s) for i, s in enumerate(states)]


def test_unfiltered_runs_is_one_page_with_next() -> None:
    wes = PagedWes({None: (runs("a", [RunState.RUNNING] * 3), "p2"), "p2": (runs("b", [RunState.COMPLETE]), "")})
    result = execute(parse("runs"), wes)
    assert isinstance(result, RunsResult)
    assert [r.run_id for r in result.runs] == ["a0", "a1", "a2"]
    assert result.next_page is not None and result.next_page.page_token == "p2"
    assert wes.calls == [None]


def test_filter_reads_pages_until_the_list_ends() -> None:
    E, C = RunState.EXECUTOR_ERROR, RunState.COMPLETE
    wes = PagedWes({
        None: (runs("a", [C, E, C]), "p2"),
        "p2": (runs("b", [C, C]), "p3"),
        "p3": (runs("c", [RunState.SYSTEM_ERROR]), None),
    })
    result = execute(parse("runs failed"), wes)
    assert isinstance(result, RunsResult)
    assert [r.run_id for r in result.runs] == ["a1", "c0"]
    assert result.next_page is None and result.pages_read == 3


def test_a_repeated_token_stops_the_scan() -> None:
    wes = PagedWes({None: (runs("a", [RunState.COMPLETE]), "same"), "same": (runs("b", [RunState.COMPLETE]), "same")})
    result = execute(parse("runs failed"), wes)
    assert isinstance(result, RunsResult)
    assert result.runs == [] and wes.calls == [None, "same"]


def test_a_full_reply_resumes_in_the_middle_of_a_server_page() -> None:
    # A server that ignores paging: everything in one page.
    everything = runs("r", [RunState.EXECUTOR_ERROR] * 60)
    wes = PagedWes({None: (everything, "")})
    first = execute(parse("runs failed"), wes)
    assert isinstance(first, RunsResult) and len(first.runs) == 25
    assert first.next_page is not None and first.next_page.skip == 25
    command = parse(first.command.text(page_token=first.next_page.page_token, skip=first.next_page.skip))
    second = execute(command, wes)
    assert isinstance(second, RunsResult)
    assert second.runs[0].run_id == "r25" and len(second.runs) == 25
    assert second.next_page is not None
    third = execute(parse(second.command.text(page_token=None, skip=second.next_page.skip)), wes)
    assert isinstance(third, RunsResult)
    assert [r.run_id for r in third.runs] == [f"r{i}" for i in range(50, 60)] and third.next_page is None


def test_failed_tasks_only_nonzero_exit_codes() -> None:
    tasks = [Log(name="a", exit_code=0), Log(name="b", exit_code=2), Log(name="c", exit_code=None),
             Log(name="d", exit_code=-9)]
    wes = PagedWes({}, task_pages={None: (tasks, None)})
    result = execute(parse("tasks r failed"), wes)
    assert isinstance(result, TasksResult)
    assert [t.name for t in result.tasks] == ["b", "d"]


def test_wes_errors_and_usage_errors_become_results() -> None:
    wes = PagedWes({})
    notfound = run_text("status nope", wes)
    assert isinstance(notfound, ErrorResult) and not notfound.ok and notfound.message == "run nope not found"
    down = run_text("details x", wes)
    assert isinstance(down, ErrorResult) and "did not answer" in down.message
    usage = run_text("status", wes)
    assert isinstance(usage, ErrorResult) and usage.kind == "usage" and usage.usage == "Usage: /wes status RUN_ID"


def test_results_serialise_to_json() -> None:
    wes = PagedWes({None: (runs("a", [RunState.RUNNING, "DELETED"]), None)})  # type: ignore[list-item]
    data = execute(parse("runs"), wes).to_json()
    assert data["kind"] == "runs" and data["ok"] is True
    assert [r["state"] for r in data["runs"]] == ["RUNNING", "DELETED"]


# --------------------------------------------------------------------------------------------------
# Which tasks failed, and whose log is shown (wesbot.outcome's rules applied by the commands)
# --------------------------------------------------------------------------------------------------

END = "2024-01-01T01:00:00Z"
RUN_STDERR = "http://wes.test/ga4gh/wes/v1/runs/r/stderr"


@dataclass
class OneRunWes:
    """One run, its tasks (one page), and a record of the status calls."""

    run: RunLog
    tasks: list[Log] = field(default_factory=list)
    status_calls: int = 0
    host: str = "wes.test"

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        raise NotImplementedError

    def get_status(self, run_id: str) -> RunStatus:
        self.status_calls += 1
        return RunStatus(run_id=run_id, state=self.run.state)

    def get_run(self, run_id: str) -> RunLog:
        return self.run

    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage:
        return TaskPage(run_id=run_id, tasks=self.tasks)

    def get_task(self, run_id: str, task_id: str) -> TaskLog:
        return next(t for t in self.tasks if t.id == task_id)


@dataclass
class Reader:
    """A LogReader that records what it was asked to read."""

    asked: list[tuple[str | None, str]] = field(default_factory=list)

    def tail(self, ref: str | None, *, what: str, lines: int = 30, max_chars: int = 2800,
             relative_to: str | None = None) -> LogTail:
        self.asked.append((ref, what))
        return LogTail(text="the end", truncated=False, source="url", location=ref)


def one_run(state: RunState, tasks: list[Log], *, stderr: str | None = RUN_STDERR,
            exit_code: int | None = 1) -> OneRunWes:
    run = RunLog(run_id="r", state=state, run_log=Log(stderr=stderr, exit_code=exit_code), task_logs=[])
    return OneRunWes(run=run, tasks=tasks)


MIXED = [
    Log(id="a", name="a", exit_code=-1),  # running, by the look of it
    Log(id="b", name="b", exit_code=2),
    Log(id="c", name="c", exit_code=-1, end_time=END),  # ended without a real exit code
    Log(id="d", name="d", exit_code=None),
    Log(id="e", name="e", exit_code=0),
]


@pytest.mark.parametrize(("state", "failed", "terminal"), [
    (RunState.RUNNING, ["b", "c"], False),  # -1 while the run goes on is not a failure
    (RunState.EXECUTOR_ERROR, ["a", "b", "c"], True),  # the run ended: -1 now means it never exited cleanly
])
def test_failed_tasks_of_a_running_and_an_ended_run(state: RunState, failed: list[str], terminal: bool) -> None:
    wes = one_run(state, MIXED)
    result = execute(parse("tasks r failed"), wes)
    assert isinstance(result, TasksResult)
    assert [t.name for t in result.tasks] == failed
    assert wes.status_calls == 1  # asked once, for the whole scan
    everything = execute(parse("tasks r"), wes)
    assert isinstance(everything, TasksResult) and everything.run_terminal is terminal
    rows = {line.split("  ")[0]: " ".join(line.split()) for line in render_text(everything, host="h").splitlines()}
    assert ("a a failed (exit -1)" in rows["a"]) is terminal
    assert ("a a no exit code yet" in rows["a"]) is not terminal


def test_the_run_state_is_asked_only_when_a_task_depends_on_it() -> None:
    wes = one_run(RunState.RUNNING, [Log(id="b", exit_code=2), Log(id="c", exit_code=-1, end_time=END)])
    result = execute(parse("tasks r"), wes)
    assert isinstance(result, TasksResult) and [t.id for t in result.tasks] == ["b", "c"]
    task = execute(parse("task r c"), wes)
    assert isinstance(task, TaskResult) and "failed (exit -1)" in render_text(task, host="h")
    assert wes.status_calls == 0


def test_task_with_minus_one_in_a_running_run_is_not_shown_failed() -> None:
    wes = one_run(RunState.RUNNING, [Log(id="a", name="align", exit_code=-1)])
    result = execute(parse("task r a"), wes)
    assert isinstance(result, TaskResult) and result.run_terminal is False
    assert "state:      no exit code yet" in render_text(result, host="h")


@pytest.mark.parametrize(("task", "run_stderr", "expected"), [
    (Log(id="t1", name="align", stderr="http://x/t1.err"), RUN_STDERR,
     LogRef("http://x/t1.err", "stderr of task align", "t1")),
    (Log(id="t1", name="align"), RUN_STDERR,
     LogRef(RUN_STDERR, "stderr of run r (task align has no stderr of its own)", "t1")),
    (Log(id="t1"), "line one\nline two\n",  # inline run log; the task named by its id
     LogRef("line one\nline two\n", "stderr of run r (task t1 has no stderr of its own)", "t1")),
    (Log(id="t1", name="align"), None, LogRef(None, "stderr of task align", "t1")),  # nobody has one
])
def test_task_log_ref(task: Log, run_stderr: str | None, expected: LogRef) -> None:
    run = RunLog(run_id="r", state=RunState.EXECUTOR_ERROR, run_log=Log(stderr=run_stderr))
    assert task_log_ref(task, run, "stderr") == expected


def test_task_log_ref_without_the_run_and_for_stdout() -> None:
    assert task_log_ref(Log(id="t1"), None, "stderr") == LogRef(None, "stderr of task t1", "t1")
    run = RunLog(run_id="r", state=RunState.COMPLETE, run_log=Log(stdout="http://x/out"))
    assert task_log_ref(Log(id="t1"), run, "stdout").what == "stdout of run r (task t1 has no stdout of its own)"


FAILED_NO_STDERR = [Log(id="t0", name="prep", exit_code=0, stderr="http://x/t0.err"),
                    Log(id="t1", name="align", exit_code=3)]
FALLBACK = (RUN_STDERR, "stderr of run r (task align has no stderr of its own)")


def test_logs_of_a_run_fall_back_to_the_run_stderr_for_a_failed_task_without_one() -> None:
    reader = Reader()
    result = execute(parse("logs r"), one_run(RunState.EXECUTOR_ERROR, FAILED_NO_STDERR), logs=reader)
    assert isinstance(result, LogsResult)
    assert reader.asked == [FALLBACK]
    assert (result.what, result.task_id) == (FALLBACK[1], "t1")


def test_logs_of_a_task_fall_back_to_the_run_stderr() -> None:
    reader = Reader()
    result = execute(parse("logs r t1"), one_run(RunState.EXECUTOR_ERROR, FAILED_NO_STDERR), logs=reader)
    assert isinstance(result, LogsResult) and result.task_id == "t1"
    assert reader.asked == [FALLBACK]
    assert render_text(result, host="h").startswith("stderr of run r (task align has no stderr of its own):")


def test_details_of_a_failed_run_fall_back_to_the_run_stderr() -> None:
    reader = Reader()
    result = execute(parse("details r"), one_run(RunState.EXECUTOR_ERROR, FAILED_NO_STDERR), logs=reader)
    assert isinstance(result, DetailsResult)
    assert (result.log_what, result.log_task_id) == (FALLBACK[1], "t1")
    assert reader.asked == [FALLBACK]


def test_logs_of_a_running_run_skip_a_task_with_minus_one() -> None:
    reader = Reader()
    wes = one_run(RunState.RUNNING, [Log(id="t1", name="align", exit_code=-1, stderr="http://x/t1.err")],
                  exit_code=-1)
    execute(parse("logs r"), wes, logs=reader)
    assert reader.asked == [(RUN_STDERR, "stderr of run r")]


@pytest.mark.parametrize(("state", "exit_code", "failed"), [
    (RunState.CANCELED, 1, False),  # was failed before outcome.py: a non-zero exit whatever the state
    (RunState.COMPLETE, 1, True),
    (RunState.PREEMPTED, None, True),
    (RunState.RUNNING, 1, False),
])
def test_core_run_failed_is_outcomes_rule(state: RunState, exit_code: int | None, failed: bool) -> None:
    assert run_failed(RunLog(run_id="r", state=state, run_log=Log(exit_code=exit_code))) is failed
