"""The command core: paging, filters that read several pages, resuming mid-page, and errors as results."""

from __future__ import annotations

from dataclasses import dataclass, field

from wesbot.commands import parse
from wesbot.core import ErrorResult, RunsResult, TasksResult, execute, run_text
from wesbot.wes.errors import NotFound, WesUnreachable
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
