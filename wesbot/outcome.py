"""How a run or a task ended: the one place that decides "failed", "running" and "finished". Pure.

Renderers, commands and the watcher ask these functions; they never re-decide. The rules absorb what
real servers do (see ``WES-NOTES.md``):

- an exit code means something only once the run or task has finished: ``-1`` (and ``null``) is what
  servers such as the reference wes-service report while something is still running;
- Arvados reports a failed run as ``COMPLETE`` with a non-zero exit code;
- a state wesbot does not recognise (sapporo's ``DELETED``) is not terminal, so never failed;
- a cancelled run did not fail: someone stopped it, whatever exit code the engine left behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .wes.models import Log, RunLog, RunState, State, is_terminal, parse_state

__all__ = [
    "FAILED_STATES",
    "NO_EXIT_YET",
    "FailedTask",
    "OutputItem",
    "RunOutcome",
    "TaskProgress",
    "basic_outcome",
    "failed_tasks",
    "output_items",
    "run_failed",
    "task_failed",
    "task_finished",
    "task_progress",
    "task_running",
]

# The terminal states that mean the run failed. CANCELED is terminal but is not a failure.
FAILED_STATES: frozenset[RunState] = frozenset(
    {RunState.EXECUTOR_ERROR, RunState.SYSTEM_ERROR, RunState.PREEMPTED}
)

# The placeholder exit code servers report while a run or task is still active.
NO_EXIT_YET = -1


def run_failed(state: State, exit_code: int | None) -> bool:
    """A run failed when it ended in a failure state, or ended COMPLETE with a real non-zero exit code.

    ``-1`` is not a real exit code (servers report it while the run is active), and CANCELED is never
    a failure: the run was stopped on purpose.
    """
    if not is_terminal(state):
        return False
    if state in FAILED_STATES:
        return True
    return state == RunState.COMPLETE and exit_code not in (None, 0, NO_EXIT_YET)


def task_finished(task: Log, run_terminal: bool) -> bool:
    """A task has finished when it has an end time, or when its run has ended (whatever the task says)."""
    return task.end_time is not None or run_terminal


def task_failed(task: Log, run_terminal: bool) -> bool:
    """A task failed when it has a non-zero exit code that means something.

    A real non-zero exit code (``1``, ``-9``) means the process exited, even without an end time. ``-1``
    is the placeholder of a task still running, so it counts only once the task has finished
    (:func:`task_finished`). ``None`` and ``0`` never mean failed.
    """
    code = task.exit_code
    if code is None or code == 0:
        return False
    return code != NO_EXIT_YET or task_finished(task, run_terminal)


def task_running(task: Log, run_terminal: bool) -> bool:
    """A task is still running (or has not started) when it has not finished and has no real exit code."""
    return not task_finished(task, run_terminal) and task.exit_code in (None, NO_EXIT_YET)


@dataclass(frozen=True, kw_only=True)
class TaskProgress:
    """How far a running run's tasks are: what its card shows. ``more``: the task list had more pages than
    were read, so ``total`` is a lower bound."""

    total: int
    done: int
    running: int
    failed: int
    more: bool = False

    def as_json(self) -> str:
        return json.dumps([self.total, self.done, self.running, self.failed, int(self.more)])

    @classmethod
    def from_json(cls, text: str | None) -> TaskProgress | None:
        """The stored form back; None for nothing stored, or anything that is not it."""
        try:
            values = json.loads(text or "null")
        except ValueError:
            return None
        if not isinstance(values, list) or len(values) != 5 or not all(type(v) is int for v in values):
            return None
        total, done, running, failed, more = values
        return cls(total=total, done=done, running=running, failed=failed, more=bool(more))


def task_progress(tasks: list[Log], *, more: bool = False) -> TaskProgress:
    """The progress of a run still going: done (finished, not failed), failed, running (started, not finished);
    the rest have not started."""
    failed = sum(task_failed(task, False) for task in tasks)
    done = sum(task_finished(task, False) for task in tasks) - sum(
        task_failed(task, False) and task_finished(task, False) for task in tasks)
    running = sum(task_running(task, False) and task.start_time is not None for task in tasks)
    return TaskProgress(total=len(tasks), done=done, running=running, failed=failed, more=more)


@dataclass(frozen=True, kw_only=True)
class FailedTask:
    name: str
    exit_code: int | None
    stderr: str | None = None
    stdout: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """What is known of a run when it ends (details are best effort): what a notification says."""

    run_id: str
    state: str
    exit_code: int | None = None
    start_time: str | None = None
    end_time: str | None = None
    workflow: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    failed_tasks: list[FailedTask] = field(default_factory=list)
    more_failed_tasks: bool = False
    outputs: Any = None
    # The end of the first failed task's stderr (or the run's), sanitized; what it is; which task.
    log_what: str | None = None
    log_text: str | None = None
    log_task_id: str | None = None
    # The lines of that log that say what went wrong (wesbot.wes.logs.reason_lines).
    log_reasons: tuple[str, ...] = ()
    # The run's page, from the server's run-link template (WESBOT_RUN_URL, run_url); None without one.
    link: str | None = None

    @property
    def failed(self) -> bool:
        return run_failed(parse_state(self.state), self.exit_code)


def basic_outcome(log: RunLog) -> RunOutcome:
    """What GET /runs/{id} alone tells of an ended run (no task list, no log tail)."""
    workflow = log.request.workflow_url
    return RunOutcome(run_id=log.run_id, state=str(log.state), exit_code=log.run_log.exit_code,
                      start_time=log.run_log.start_time, end_time=log.run_log.end_time,
                      workflow=workflow.rsplit("/", 1)[-1] if workflow else None, stdout=log.run_log.stdout,
                      stderr=log.run_log.stderr, outputs=log.outputs)


def failed_tasks(tasks: list[Log], run_terminal: bool) -> list[FailedTask]:
    """The tasks that failed (:func:`task_failed`), as a notification lists them."""
    return [FailedTask(name=t.name or t.id or "(unnamed)", exit_code=t.exit_code, stderr=t.stderr, stdout=t.stdout)
            for t in tasks if task_failed(t, run_terminal)]


# -- what a run produced ---------------------------------------------------------------------------------

MAX_OUTPUT_ITEMS = 10
# How many entries of the outputs are looked at in all (a hostile server may send a million).
_MAX_OUTPUTS_SEEN = 1000


@dataclass(frozen=True, kw_only=True)
class OutputItem:
    """One output as people read it: its name (the output's key), and either a file (``file``: its name;
    ``location``: where it is, a URL or a path; ``size`` in bytes when known; ``directory``) or a value
    (``value``: any other JSON, shown compactly)."""

    name: str
    file: str | None = None
    location: str | None = None
    size: int | None = None
    directory: bool = False
    value: Any = None


def output_items(outputs: Any) -> tuple[list[OutputItem], int]:
    """The outputs of a run as a short list, and how many more there are (beyond :data:`MAX_OUTPUT_ITEMS`).

    Reads what real servers send: a mapping of output names to CWL ``File``/``Directory`` objects
    (``{"class": "File", "location", "basename", "size"}``), lists of them, or plain values; or a list of
    ``{"file_name", "file_url"}`` (Toil, sapporo). A list of files is one item per file, named after its output.
    """
    items: list[OutputItem] = []
    entries = list(outputs.items()) if isinstance(outputs, dict) else [("", outputs)]
    for name, value in entries[:_MAX_OUTPUTS_SEEN]:
        listed = isinstance(value, list) and any(_file_of(v) for v in value[:_MAX_OUTPUTS_SEEN])
        values = value if listed else [value]
        for one in values[:_MAX_OUTPUTS_SEEN]:
            items.append(_file_of(one, str(name)) or OutputItem(name=str(name), value=one))
    items = [item for item in items if item.file is not None or item.value not in (None, "", [], {})]
    return items[:MAX_OUTPUT_ITEMS], max(len(items) - MAX_OUTPUT_ITEMS, 0)


def _file_of(value: Any, name: str = "") -> OutputItem | None:
    """A CWL File/Directory or a ``{file_name, file_url}`` as an item; None for anything else."""
    if not isinstance(value, dict):
        return None
    if value.get("class") in ("File", "Directory"):
        location = _text(value.get("location")) or _text(value.get("path"))
        file = _text(value.get("basename")) or _basename(location) or "(unnamed)"
        size = value.get("size")
        return OutputItem(name=name, file=file, location=location, directory=value["class"] == "Directory",
                          size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None)
    if "file_url" in value or "file_name" in value:
        location = _text(value.get("file_url"))
        file = _text(value.get("file_name")) or _basename(location) or "(unnamed)"
        return OutputItem(name=name, file=file, location=location)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _basename(location: str | None) -> str | None:
    """The last part of a URL or a path (``s3://b/x/out.bam`` -> ``out.bam``)."""
    if not location:
        return None
    return location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None
