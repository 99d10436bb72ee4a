"""Typed views of what a WES server answers.

Raw JSON never leaves ``wesbot.wes``: the client parses every body into these dataclasses, and every
quirk of real servers (see the project README's compatibility notes) is absorbed by the ``parse_*``
functions at the bottom of this module. Fields a server left out, or sent with the wrong type, become
``None`` (or an empty collection) rather than an exception; only a body whose *shape* is wrong (a list
where an object is required, HTML instead of JSON) raises :class:`~wesbot.wes.errors.WesProtocolError`.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin


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


# --------------------------------------------------------------------------------------------------
# Parsing: raw JSON (already decoded by the client) into the dataclasses above.
#
# Every function here is tolerant: a field that is missing or has the wrong type becomes None or an
# empty collection. Only a body whose overall *shape* is wrong raises ShapeError, which the client
# turns into a WesProtocolError naming the host and the request.
# --------------------------------------------------------------------------------------------------

# Longest text in stdout/stderr that can still be taken for a URL or path; anything longer is content.
MAX_LOG_REF_LENGTH = 2048

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


class ShapeError(ValueError):
    """A body whose shape is wrong. ``str()`` says what was sent, e.g. "a JSON list instead of an object"."""


def describe_json(value: object) -> str:
    """A few words for the type of a decoded JSON value, as used in protocol error messages."""
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, int | float):
        return "a JSON number"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, list):
        return "a JSON list"
    if isinstance(value, dict):
        return "a JSON object"
    return "an unexpected value"


def _require_object(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ShapeError(f"{describe_json(data)} instead of a JSON object")
    return data


def parse_page_token(value: object) -> str | None:
    """``next_page_token``: only a non-empty string means there is another page."""
    if isinstance(value, str) and value.strip():
        return value
    return None


def _opt_str(value: object) -> str | None:
    """A string field: strings (empty ones become None) and numbers are kept, anything else is None."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _text(value: object) -> str | None:
    """A field kept only when it is a non-empty string (times)."""
    return value if isinstance(value, str) and value.strip() else None


def _str_list(value: object) -> list[str]:
    """A list of strings: a lone string becomes a one-item list, items are coerced, nulls are dropped."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [item if isinstance(item, str) else _json_text(item) for item in value if item is not None]
    return []


def _json_text(value: object) -> str:
    if isinstance(value, dict | list):
        try:
            return json.dumps(value, sort_keys=True)
        except (ValueError, RecursionError):  # nested deeper than json can write back
            return "(not shown: nested too deeply)"
    return str(value)


def parse_int(value: object) -> int | None:
    """An integer field: ints, integral floats (1.0) and numeric strings ("1"); bools and garbage are None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


parse_exit_code = parse_int


def parse_cmd(value: object) -> list[str]:
    """``cmd``: a list (items coerced to str), a single string (one item), or null (empty)."""
    return _str_list(value)


def parse_tags(value: object) -> dict[str, str]:
    """``tags``: only an object counts; values are coerced to str, null values are dropped."""
    if not isinstance(value, dict):
        return {}
    return {str(key): item if isinstance(item, str) else _json_text(item)
            for key, item in value.items() if item is not None}


def resolve_url(value: str, base_url: str | None) -> str:
    """Resolve a relative reference against the URL of the response it came in."""
    if base_url is None or _SCHEME.match(value):
        return value
    return urljoin(base_url, value)


def looks_like_log_content(value: str) -> bool:
    """True when stdout/stderr holds the log text itself rather than a URL or a path.

    The heuristic: a URL or path never contains whitespace or control characters (ANSI colour codes,
    newlines) and is not longer than MAX_LOG_REF_LENGTH; anything that does, or is, is log content.
    """
    if len(value) > MAX_LOG_REF_LENGTH:
        return True
    return any(ch.isspace() or not ch.isprintable() for ch in value)


def resolve_log_ref(value: object, base_url: str | None = None) -> str | None:
    """``stdout`` / ``stderr``: a URL, a path to resolve, or (on some servers) the log text itself.

    - not a string: None (no log); ``""`` or only whitespace: ``""`` (a log, an empty one);
    - log content (see :func:`looks_like_log_content`): kept exactly as sent;
    - anything with a scheme (``https:``, ``file:``, ``s3:``, ``drs:`` ...): kept as sent;
    - a path, i.e. a single token with a ``/`` in it (``/api/jobs/1/stdout``, ``../../logs/x``,
      ``logs/x``): resolved against ``base_url``, the URL of the response it came in;
    - any other single word (``Killed``, ``stderr.txt``): kept as sent, since it cannot be told apart
      from a one-word log.
    """
    if not isinstance(value, str):
        return None
    if not value.strip():
        return ""
    if looks_like_log_content(value) or _SCHEME.match(value) or "/" not in value:
        return value
    return resolve_url(value, base_url)


def parse_log(data: object, *, base_url: str | None = None) -> Log:
    """A Log or TaskLog object; anything that is not an object gives an empty Log."""
    if not isinstance(data, dict):
        return Log()
    return Log(
        name=_opt_str(data.get("name")),
        cmd=parse_cmd(data.get("cmd")),
        start_time=_text(data.get("start_time")),
        end_time=_text(data.get("end_time")),
        stdout=resolve_log_ref(data.get("stdout"), base_url),
        stderr=resolve_log_ref(data.get("stderr"), base_url),
        exit_code=parse_exit_code(data.get("exit_code")),
        system_logs=_str_list(data.get("system_logs")),
        id=_opt_str(data.get("id")),
        tes_uri=_opt_str(data.get("tes_uri")),
    )


def parse_logs(value: object, *, base_url: str | None = None) -> list[Log] | None:
    """A list of logs; items that are not objects are skipped. None when ``value`` is not a list."""
    if not isinstance(value, list):
        return None
    return [parse_log(item, base_url=base_url) for item in value if isinstance(item, dict)]


def _maybe_json(value: object) -> Any:
    """``workflow_params`` are sent as a JSON string in multipart submissions: decode them if possible."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def parse_run_request(data: object) -> RunRequest:
    if not isinstance(data, dict):
        return RunRequest()
    return RunRequest(
        workflow_url=_opt_str(data.get("workflow_url")),
        workflow_type=_opt_str(data.get("workflow_type")),
        workflow_type_version=_opt_str(data.get("workflow_type_version")),
        workflow_params=_maybe_json(data.get("workflow_params")),
        workflow_engine=_opt_str(data.get("workflow_engine")),
        workflow_engine_version=_opt_str(data.get("workflow_engine_version")),
        workflow_engine_parameters=_maybe_json(data.get("workflow_engine_parameters")),
        tags=parse_tags(data.get("tags")),
    )


def parse_run_summary(data: object) -> RunSummary | None:
    """One item of a run list; None (skip it) when it is not an object or has no run_id."""
    if not isinstance(data, dict):
        return None
    run_id = _opt_str(data.get("run_id"))
    if run_id is None:
        return None
    return RunSummary(
        run_id=run_id,
        state=parse_state(data.get("state")),
        start_time=_text(data.get("start_time")),
        end_time=_text(data.get("end_time")),
        tags=parse_tags(data.get("tags")),
    )


def parse_run_list(data: object) -> RunListPage:
    """GET /runs: ``{"runs": [...]}``, ``{"workflows": [...]}`` (wes-service, Arvados, Toil), a bare list."""
    if isinstance(data, list):
        items: object = data
        token = None
    else:
        obj = _require_object(data)
        items = obj.get("runs")
        if items is None:
            items = obj.get("workflows")
        token = parse_page_token(obj.get("next_page_token"))
    runs: list[RunSummary] = []
    if isinstance(items, list):
        for item in items:
            summary = parse_run_summary(item)
            if summary is not None:
                runs.append(summary)
    return RunListPage(runs=runs, next_page_token=token)


def _run_id_of(obj: dict[str, Any], run_id: str | None) -> str:
    found = _opt_str(obj.get("run_id"))
    if found is not None:
        return found
    if run_id is not None and "state" in obj:
        # Answers to a request about one run: the id is the one that was asked for.
        return run_id
    raise ShapeError("a JSON object without run_id or state")


def parse_run_status(data: object, *, run_id: str | None = None) -> RunStatus:
    """GET /runs/{id}/status. ``run_id`` (the id asked for) stands in when the server leaves it out."""
    obj = _require_object(data)
    return RunStatus(run_id=_run_id_of(obj, run_id), state=parse_state(obj.get("state")))


def parse_run_log(data: object, *, base_url: str | None = None, run_id: str | None = None) -> RunLog:
    """GET /runs/{id}. Relative log URLs and ``task_logs_url`` are resolved against ``base_url``."""
    obj = _require_object(data)
    task_logs_url = _text(obj.get("task_logs_url"))
    return RunLog(
        run_id=_run_id_of(obj, run_id),
        state=parse_state(obj.get("state")),
        request=parse_run_request(obj.get("request")),
        run_log=parse_log(obj.get("run_log"), base_url=base_url),
        outputs=obj.get("outputs"),
        task_logs_url=resolve_url(task_logs_url.strip(), base_url) if task_logs_url else None,
        task_logs=parse_logs(obj.get("task_logs"), base_url=base_url),
    )


def parse_task_page(data: object, *, run_id: str, base_url: str | None = None) -> TaskPage:
    """GET /runs/{id}/tasks: ``{"task_logs": [...]}`` (or ``tasks``, or a bare list); null means no tasks."""
    if data is None or isinstance(data, list):
        return TaskPage(run_id=run_id, tasks=parse_logs(data, base_url=base_url) or [])
    obj = _require_object(data)
    items = obj.get("task_logs")
    if items is None:
        items = obj.get("tasks")
    return TaskPage(
        run_id=run_id,
        tasks=parse_logs(items, base_url=base_url) or [],
        next_page_token=parse_page_token(obj.get("next_page_token")),
    )


def _version_list(value: object) -> list[str]:
    """A WorkflowTypeVersion: ``{"workflow_type_version": [...]}`` per the spec, or a list, or a string."""
    if isinstance(value, dict):
        for key in ("workflow_type_version", "workflow_engine_version"):
            if key in value:
                return _str_list(value[key])
        return [item for inner in value.values() for item in _str_list(inner)]
    return _str_list(value)


def parse_service_info(data: object) -> ServiceInfo:
    """GET /service-info, where every field is optional and may have any type."""
    obj = _require_object(data)
    organization = obj.get("organization")
    if isinstance(organization, dict):
        organization = organization.get("name")
    type_versions = obj.get("workflow_type_versions")
    if isinstance(type_versions, dict):
        workflow_type_versions = {str(key): _version_list(value) for key, value in type_versions.items()}
    else:
        # A list or a string of workflow types without versions.
        workflow_type_versions = {name: [] for name in _str_list(type_versions)}
    engine_versions = obj.get("workflow_engine_versions")
    workflow_engine_versions: dict[str, str] = {}
    if isinstance(engine_versions, dict):
        for key, value in engine_versions.items():
            versions = _version_list(value)
            if versions:
                workflow_engine_versions[str(key)] = ", ".join(versions)
    counts = obj.get("system_state_counts")
    system_state_counts: dict[str, int] = {}
    if isinstance(counts, dict):
        for key, value in counts.items():
            number = parse_int(value)
            if number is not None:
                system_state_counts[str(key)] = number
    return ServiceInfo(
        name=_opt_str(obj.get("name")),
        version=_opt_str(obj.get("version")),
        organization=_opt_str(organization),
        supported_wes_versions=_str_list(obj.get("supported_wes_versions")),
        workflow_type_versions=workflow_type_versions,
        workflow_engine_versions=workflow_engine_versions,
        system_state_counts=system_state_counts,
        auth_instructions_url=_opt_str(obj.get("auth_instructions_url")),
    )
