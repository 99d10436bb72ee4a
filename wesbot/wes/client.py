"""The WES API: :class:`WesClient`, one method per call, each returning the dataclasses of :mod:`.models`.

The client knows what the calls mean and absorbs the API-level quirks of real servers listed in
``WES-NOTES.md``: the ``workflows`` list key and the many ways to end paging (in :mod:`wesbot.wes.models`
and :mod:`wesbot.wes.paging`), missing ``/tasks`` endpoints, relative log URLs. How one call is sent
(deadlines, retries, redirects, size caps, error messages, masking) is :mod:`wesbot.wes.transport`'s job.

Security notes:

- Run and task ids are checked (:func:`check_id`) and sent as one percent-encoded path segment
  (:mod:`wesbot.wes.ids`), so an id such as ``../service-info`` or ``a/b?c`` never reaches another endpoint.
- Credentials are only sent to the configured origin (see :mod:`wesbot.wes.transport`), and
  ``task_logs_url`` is only followed when it points there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import httpx

from .errors import NotFound, WesHTTPError
from .ids import MAX_ID_LENGTH, SHOWN_ID, SHOWN_INVALID_ID, check_id, encode_segment, show_id, shown_id
from .models import (
    RunListPage,
    RunLog,
    RunStatus,
    ServiceInfo,
    ShapeError,
    TaskLog,
    TaskPage,
    describe_json,
    parse_log,
    parse_run_list,
    parse_run_log,
    parse_run_status,
    parse_service_info,
    parse_task_page,
)
from .paging import Walk, walk
from .transport import (
    MAX_BODY,
    MAX_ERROR_BODY,
    MAX_LARGE_BODY,
    MAX_REDIRECTS,
    RETRY_STATUSES,
    Call,
    Transport,
    clip,
    format_seconds,
    format_size,
)

__all__ = [
    "MAX_BODY",
    "MAX_ERROR_BODY",
    "MAX_ID_LENGTH",
    "MAX_LARGE_BODY",
    "MAX_REDIRECTS",
    "MAX_TASK_SCAN_PAGES",
    "RETRY_STATUSES",
    "SHOWN_ID",
    "SHOWN_INVALID_ID",
    "TASK_FALLBACK_STATUSES",
    "WesClient",
    "check_id",
    "encode_segment",
    "format_seconds",
    "format_size",
    "show_id",
]

logger = logging.getLogger("wesbot.wes")

_T = TypeVar("_T")

# Statuses of the task endpoints that mean "no such endpoint here": fall back to the inline task_logs.
TASK_FALLBACK_STATUSES = frozenset({400, 404, 405, 501})
# How many task pages get_task scans when the server has no /tasks/{task_id}.
MAX_TASK_SCAN_PAGES = 20

# The fields each call's answer may have: an answer with none of them and an error message is an error.
_RUN_FIELDS = frozenset({"run_id", "state", "run_log", "request", "outputs", "task_logs", "task_logs_url"})
_LIST_FIELDS = frozenset({"runs", "workflows", "next_page_token"})
_TASK_LIST_FIELDS = frozenset({"task_logs", "tasks", "next_page_token"})
_TASK_FIELDS = frozenset({"id", "name", "cmd", "exit_code", "stdout", "stderr", "start_time", "end_time"})
_SERVICE_FIELDS = frozenset({
    "id", "name", "type", "version", "organization", "workflow_type_versions", "supported_wes_versions",
    "workflow_engine_versions", "system_state_counts", "supported_filesystem_protocols",
})


class WesClient:
    """A synchronous, thread-safe WES client.

    ``base_url`` is exactly ``$WES_URL`` as in ``curl "$WES_URL/runs"``. ``auth`` is ``(user, password)``
    for basic auth, ``token`` a bearer token; at most one of them is set.

    Every method raises only :class:`~wesbot.wes.errors.WesError` subclasses (and :class:`ValueError`
    from the constructor for a malformed ``base_url``). GETs are retried ``retries`` more times, after
    ``backoff * 2**attempt`` seconds, on connection errors, timeouts and 502/503/504; POSTs never are.

    ``timeout`` bounds each read and ``connect_timeout`` each connect, as in httpx; ``deadline`` (default
    ``timeout + connect_timeout``) bounds a whole call, retries and redirects included, so that a server
    dripping one byte at a time cannot hold a caller for longer. Answers are read up to
    :data:`MAX_BODY` (:data:`MAX_LARGE_BODY` for run lists, run logs and task pages), and redirects are
    followed only on the server's own origin. ``transport`` replaces httpx's (tests pass a
    ``MockTransport``), ``sleep`` the pause between retries.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: tuple[str, str] | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        deadline: float | None = None,
        retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._transport = Transport(
            base_url, auth=auth, token=token, timeout=timeout, connect_timeout=connect_timeout,
            deadline=deadline, retries=retries, backoff=backoff, transport=transport, sleep=sleep,
        )
        self._root = self._transport.root
        self._redact = self._transport.mask

    @property
    def host(self) -> str:
        """The server's host (and port when not default), as shown in error messages."""
        return self._transport.host

    @property
    def base_url(self) -> str:
        """The base URL, without a trailing slash."""
        return self._root

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> WesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WesClient({self._root!r})"

    # ---- the calls ------------------------------------------------------------------------------

    def service_info(self) -> ServiceInfo:
        """GET /service-info."""
        call = Call("GET", "/service-info", "service")
        reply = self._transport.request(call, f"{self._root}/service-info", expected=_SERVICE_FIELDS)
        return self._parse(call, parse_service_info, reply.data)

    def list_runs(self, *, page_size: int | None = None, page_token: str | None = None) -> RunListPage:
        """GET /runs: one page. ``next_page_token`` is None when the server signalled the end."""
        call = Call("GET", "/runs", "list")
        reply = self._transport.request(call, f"{self._root}/runs", expected=_LIST_FIELDS,
                                        params=_paging(page_size, page_token))
        page = self._parse(call, parse_run_list, reply.data)
        if page_token is not None and page.next_page_token == page_token:
            page = replace(page, next_page_token=None)
        return page

    def iter_run_pages(self, *, page_size: int | None = None, page_token: str | None = None,
                       max_pages: int = 50) -> Iterator[RunListPage]:
        """Follow ``next_page_token`` through the run list.

        Stops when the token is None, after an empty page (which is only yielded when it is the first),
        on a token already seen (that page is yielded with ``next_page_token=None``), or after
        ``max_pages`` pages (the last one keeps its token).
        """
        progress = Walk()
        for step in walk(lambda token: self.list_runs(page_size=page_size, page_token=token),
                         size=lambda page: len(page.runs), start=page_token, max_pages=max_pages, progress=progress):
            if step.page.runs or step.token == page_token:
                yield replace(step.page, next_page_token=step.next) if step.next is None else step.page
        if progress.cut == "pages":
            logger.info("stopped listing WES runs after %d pages", max_pages)

    def get_status(self, run_id: str) -> RunStatus:
        """GET /runs/{run_id}/status."""
        segment = self._segment(run_id)
        call = Call("GET", f"/runs/{self._show(segment)}/status", "status", run_id)
        reply = self._transport.request(call, f"{self._root}/runs/{segment}/status", expected=_RUN_FIELDS)
        return self._parse(call, lambda data: parse_run_status(data, run_id=run_id), reply.data)

    def get_run(self, run_id: str) -> RunLog:
        """GET /runs/{run_id}; relative URLs in it are resolved against the URL of the answer."""
        segment = self._segment(run_id)
        call = Call("GET", f"/runs/{self._show(segment)}", "run", run_id)
        reply = self._transport.request(call, f"{self._root}/runs/{segment}", expected=_RUN_FIELDS)
        return self._parse(call, lambda data: parse_run_log(data, base_url=reply.url, run_id=run_id), reply.data)

    def list_tasks(self, run_id: str, *, page_size: int | None = None, page_token: str | None = None,
                   run: RunLog | None = None) -> TaskPage:
        """One page of the run's tasks.

        Uses ``run.task_logs_url`` when given and on the WES server's own origin, else
        GET /runs/{run_id}/tasks. When that answers 400, 404, 405 or 501 (servers without a task
        endpoint), the tasks come from the inline ``task_logs`` of ``run`` (fetched with
        :meth:`get_run` when not given, which raises :class:`NotFound` for a run that does not exist),
        as one page with ``source="inline"``.
        """
        segment = self._segment(run_id)
        url = f"{self._root}/runs/{segment}/tasks"
        call = Call("GET", f"/runs/{self._show(segment)}/tasks", "tasks", run_id)
        if run is not None and run.task_logs_url:
            if self._transport.same_origin(run.task_logs_url):
                url = run.task_logs_url
                call = replace(call, path=_shown_path(run.task_logs_url))
            else:
                logger.debug("not following a task_logs_url on another origin than %s", self.host)
        try:
            reply = self._transport.request(call, url, expected=_TASK_LIST_FIELDS,
                                            params=_paging(page_size, page_token), allow_empty=True)
        except WesHTTPError as exc:
            if exc.status_code not in TASK_FALLBACK_STATUSES:
                raise
            if run is None:
                # The standard endpoint is missing: the run log may point at the real task list.
                run = self.get_run(run_id)
                if run.task_logs_url and self._transport.same_origin(run.task_logs_url) \
                        and run.task_logs_url.split("?", 1)[0] != url:
                    return self.list_tasks(run_id, page_size=page_size, page_token=page_token, run=run)
            logger.debug("%s answered %d; using the inline task_logs", self._redact(call.label),
                         exc.status_code)
            return self._inline_tasks(run_id, run)
        page = self._parse(call, lambda data: parse_task_page(data, run_id=run_id, base_url=reply.url), reply.data)
        if page_token is not None and page.next_page_token == page_token:
            page = replace(page, next_page_token=None)
        return page

    def get_task(self, run_id: str, task_id: str) -> TaskLog:
        """GET /runs/{run_id}/tasks/{task_id}; without that endpoint, scan the task list for it."""
        run_segment = self._segment(run_id)
        task_segment = self._segment(task_id, "task")
        path = f"/runs/{self._show(run_segment)}/tasks/{self._show(task_segment)}"
        call = Call("GET", path, "task", run_id, task_id)
        try:
            reply = self._transport.request(call, f"{self._root}/runs/{run_segment}/tasks/{task_segment}",
                                            expected=_TASK_FIELDS)
        except WesHTTPError as exc:
            if exc.status_code not in TASK_FALLBACK_STATUSES:
                raise
            logger.debug("%s answered %d; scanning the task list", self._redact(call.label), exc.status_code)
            return self._find_task(run_id, task_id)
        if not isinstance(reply.data, dict):
            raise self._transport.protocol_error(call, f"{describe_json(reply.data)} instead of a JSON object")
        return parse_log(reply.data, base_url=reply.url)

    def cancel_run(self, run_id: str) -> str | None:
        """POST /runs/{run_id}/cancel, never retried. Returns the run id the server sent back, if any.

        A 200 does not mean the run was canceled (some servers ignore cancels): poll its status.
        """
        segment = self._segment(run_id)
        call = Call("POST", f"/runs/{self._show(segment)}/cancel", "cancel", run_id)
        reply = self._transport.request(call, f"{self._root}/runs/{segment}/cancel", expected=frozenset({"run_id"}),
                                        allow_empty=True)
        data = reply.data
        if isinstance(data, dict):
            data = data.get("run_id")
        if isinstance(data, str) and data.strip():
            return data
        if isinstance(data, int) and not isinstance(data, bool):
            return str(data)
        return None

    # ---- task fallbacks -------------------------------------------------------------------------

    def _inline_tasks(self, run_id: str, run: RunLog | None) -> TaskPage:
        if run is None:
            run = self.get_run(run_id)
        return TaskPage(run_id=run_id, tasks=list(run.task_logs or []), next_page_token=None, source="inline")

    def _find_task(self, run_id: str, task_id: str) -> TaskLog:
        by_name: TaskLog | None = None
        for step in walk(lambda token: self.list_tasks(run_id, page_token=token), size=lambda page: len(page.tasks),
                         max_pages=MAX_TASK_SCAN_PAGES):
            for task in step.page.tasks:
                if task.id == task_id:
                    return task
                if by_name is None and task.id is None and task.name == task_id:
                    by_name = task
        if by_name is not None:
            return by_name
        raise NotFound(
            f"task {self._show(task_id)} of run {self._show(run_id)} not found",
            what="task", run_id=run_id, task_id=task_id,
        )

    # ---- helpers --------------------------------------------------------------------------------

    def _parse(self, call: Call, parse: Callable[[Any], _T], data: Any) -> _T:
        """``parse(data)``; a body of the wrong shape is the server's protocol error."""
        try:
            return parse(data)
        except ShapeError as exc:
            raise self._transport.protocol_error(call, str(exc)) from None

    def _segment(self, value: str, kind: str = "run") -> str:
        return encode_segment(check_id(value, kind, mask=self._redact))

    def _show(self, value: str) -> str:
        """An id (or encoded id) as shown in messages: secrets masked, then shortened."""
        return shown_id(self._redact(value))


def _paging(page_size: int | None, page_token: str | None) -> dict[str, str] | None:
    params: dict[str, str] = {}
    if page_size is not None:
        params["page_size"] = str(page_size)
    if page_token is not None:
        params["page_token"] = page_token
    return params or None


def _shown_path(url: str) -> str:
    path = httpx.URL(url).raw_path.split(b"?", 1)[0].decode("ascii", "replace")
    return clip(path, 100)
