"""Typed views of what a WES server answers.

Raw JSON never leaves ``wesbot.wes``: the client parses every body into these dataclasses, and every
quirk of real servers (see the project README's compatibility notes) is absorbed by the ``parse_*``
functions at the bottom of this module. Fields a server left out, or sent with the wrong type, become
``None`` (or an empty collection) rather than an exception; only a body whose *shape* is wrong (a list
where an object is required, HTML instead of JSON) raises :class:`~wesbot.wes.errors.WesProtocolError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RunState(enum.StrEnum):
    """The eleven states of the WES 1.1 spec."""

    UNKNOWN = "UNKNOWN"
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELED = "CANCELED"
    CANCELING = "CANCELING"
    PREEMPTED = "PREEMPTED"


TERMINAL: frozenset[RunState] = frozenset(
    {
        RunState.COMPLETE,
        RunState.EXECUTOR_ERROR,
        RunState.SYSTEM_ERROR,
        RunState.CANCELED,
        RunState.PREEMPTED,
    }
)
FAILED: frozenset[RunState] = frozenset({RunState.EXECUTOR_ERROR, RunState.SYSTEM_ERROR})

# A state as a server reported it: one of the spec's, or the raw string of one it invented
# (sapporo's DELETED), or None when the server sent null or nothing.
State = RunState | str | None


def parse_state(value: object) -> State:
    """Map a raw ``state`` value to a :class:`RunState`, keeping anything unknown as its raw string."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return RunState(text.upper())
    except ValueError:
        return text


def is_terminal(state: State) -> bool:
    """True for the five terminal states. Anything unrecognised is treated as not terminal."""
    return isinstance(state, RunState) and state in TERMINAL


def state_label(state: State) -> str:
    """How a state is shown to people: the raw value, never dropped."""
    if state is None:
        return "(no state)"
    return str(state)


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """One item of GET /runs: RunStatus in 1.0, RunSummary (with times and tags) in 1.1."""

    run_id: str
    state: State
    start_time: str | None = None
    end_time: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunListPage:
    runs: list[RunSummary]
    # None means there is no further page (the server said "", null, nothing, or repeated itself).
    next_page_token: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunStatus:
    run_id: str
    state: State


@dataclass(frozen=True, kw_only=True)
class Log:
    """A run log or a task log (TaskLog adds ``id`` and ``tes_uri``)."""

    name: str | None = None
    cmd: list[str] = field(default_factory=list)
    start_time: str | None = None
    end_time: str | None = None
    # stdout/stderr: an absolute URL (relative ones are resolved against the response's URL),
    # or, on servers that put the log text itself in the field, that text.
    stdout: str | None = None
    stderr: str | None = None
    exit_code: int | None = None
    system_logs: list[str] = field(default_factory=list)
    id: str | None = None
    tes_uri: str | None = None


TaskLog = Log


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    workflow_url: str | None = None
    workflow_type: str | None = None
    workflow_type_version: str | None = None
    workflow_params: Any = None
    workflow_engine: str | None = None
    workflow_engine_version: str | None = None
    workflow_engine_parameters: Any = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunLog:
    """GET /runs/{id}."""

    run_id: str
    state: State
    request: RunRequest = field(default_factory=RunRequest)
    run_log: Log = field(default_factory=Log)
    outputs: Any = None
    # Absolute URL (resolved against the response URL) of the run's task list, when the server gives one.
    task_logs_url: str | None = None
    # The deprecated inline task list; None when the server sent null or nothing.
    task_logs: list[Log] | None = None


@dataclass(frozen=True, kw_only=True)
class TaskPage:
    run_id: str
    tasks: list[Log]
    next_page_token: str | None = None
    # "endpoint" when the tasks came from /tasks (or task_logs_url), "inline" when they came from the
    # deprecated ``task_logs`` of GET /runs/{id} because the server has no task endpoint.
    source: str = "endpoint"


@dataclass(frozen=True, kw_only=True)
class ServiceInfo:
    """GET /service-info, tolerant: real servers leave out required fields or change their types."""

    name: str | None = None
    version: str | None = None
    organization: str | None = None
    supported_wes_versions: list[str] = field(default_factory=list)
    workflow_type_versions: dict[str, list[str]] = field(default_factory=dict)
    workflow_engine_versions: dict[str, str] = field(default_factory=dict)
    system_state_counts: dict[str, int] = field(default_factory=dict)
    auth_instructions_url: str | None = None
