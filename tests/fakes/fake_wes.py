"""A configurable fake GA4GH WES 1.1 server on a real loopback socket.

``FakeWes`` serves the WES API from a ``ThreadingHTTPServer`` in a daemon thread on ``127.0.0.1``
(a free port). Its behaviour is driven by plain attributes that a test may change at any time, to
reproduce the quirks listed in ``../shared/WES-NOTES.md``::

    with FakeWes() as wes:
        wes.add_run("r1", "RUNNING")
        wes.list_key = "workflows"          # the reference server's list key
        wes.fail_next.append(html_error(502))
        client = WesClient(wes.url)         # http://127.0.0.1:PORT/ga4gh/wes/v1
        ...
        assert wes.spec_violations == []

Every answer the fake builds the spec's way (everything but the deliberately quirky knobs:
``list_key != "runs"``, ``end_token_style == "null"``, ``tasks_endpoint=False``, ``overrides``,
``fail_next`` and unknown paths) is validated against the 1.1.0 spec before it is sent when
validation is on; each violation is appended to ``spec_violations``.

This module also holds the small HTTP plumbing (``LoopbackHTTPServer``, ``HttpRequest``, ``Reply``)
that ``fake_slack`` reuses.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import itertools
import json
import re
import secrets
import socket
import socketserver
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from . import spec

__all__ = [
    "STATES",
    "TERMINAL_STATES",
    "FakeWes",
    "HttpRequest",
    "LoopbackHTTPServer",
    "RecordedRequest",
    "Reply",
    "connection_close",
    "empty",
    "error_response",
    "html_error",
    "json_reply",
    "make_task",
    "parse_form",
    "plain_text",
    "problem_json",
    "reply",
]

STATES: tuple[str, ...] = (
    "UNKNOWN",
    "QUEUED",
    "INITIALIZING",
    "RUNNING",
    "PAUSED",
    "COMPLETE",
    "EXECUTOR_ERROR",
    "SYSTEM_ERROR",
    "CANCELED",
    "CANCELING",
    "PREEMPTED",
)
TERMINAL_STATES: frozenset[str] = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})
DEFAULT_TIME = "2024-01-01T00:00:00Z"

EndTokenStyle = Literal["empty", "null", "missing", "repeat", "empty_page"]
CancelBehavior = Literal["cancel", "noop", "forbidden_if_finished", "null"]


# ---------------------------------------------------------------------------------------------------
# HTTP plumbing shared with fake_slack


@dataclass(frozen=True)
class HttpRequest:
    """One request as the fake server received it."""

    method: str
    path: str  # the raw request target: path and query, as sent
    headers: dict[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header's value, looked up case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def route(self) -> str:
        """The path without the query, percent-encoding kept."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query, keep_blank_values=True)


@dataclass(frozen=True)
class Reply:
    """One canned HTTP answer. ``close_connection=True`` drops the socket without answering."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    close_connection: bool = False
    # A hostile server: send the body one byte every ``drip_seconds``, or chunked with no Content-Length.
    drip_seconds: float = 0.0
    chunked: bool = False


def reply(status: int, body: Any = None, content_type: str | None = None) -> Reply:
    """A Reply from a body given as bytes, str, None (empty) or anything JSON-serialisable."""
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        data = json.dumps(body).encode("utf-8")
        content_type = content_type or "application/json"
    return Reply(status=status, body=data, content_type=content_type)


def json_reply(status: int, body: Any, content_type: str = "application/json") -> Reply:
    """``body`` serialised as JSON (``None`` becomes the JSON literal ``null``)."""
    return Reply(status=status, body=json.dumps(body).encode("utf-8"), content_type=content_type)


def error_response(status: int, msg: str | None = None) -> Reply:
    """The spec's ErrorResponse ``{msg, status_code}``."""
    return json_reply(status, {"msg": msg or _reason(status), "status_code": status})


def html_error(status: int = 502, title: str | None = None) -> Reply:
    """The HTML page a proxy (nginx) sends in front of a broken back end."""
    text = f"{status} {title or _reason(status)}"
    page = (
        f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Reply(status=status, body=page.encode(), content_type="text/html")


def problem_json(
    status: int = 404,
    detail: str = "The requested URL was not found on the server.",
    title: str | None = None,
    type_: str = "about:blank",
) -> Reply:
    """An RFC 7807 problem+json body ``{type, title, detail, status}`` (connexion's errors)."""
    body = {"type": type_, "title": title or _reason(status), "detail": detail, "status": status}
    return json_reply(status, body, content_type="application/problem+json")


def plain_text(status: int = 500, text: str = "Internal Server Error") -> Reply:
    return Reply(status=status, body=text.encode("utf-8"), content_type="text/plain; charset=utf-8")


def empty(status: int = 503) -> Reply:
    """A response with an empty body and no content type."""
    return Reply(status=status)


def connection_close() -> Reply:
    """Close the connection without sending any answer."""
    return Reply(status=0, close_connection=True)


def _reason(status: int) -> str:
    return BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An idle keep-alive connection is closed after this long, so a forgotten client cannot pin a thread.
    timeout = 15
    server: _Server
    _headers_buffer: list[bytes]

    def _handle(self) -> None:
        body = self._read_body()
        request = HttpRequest(self.command, self.path, dict(self.headers.items()), body)
        answer = self.server.app(request)
        if answer.close_connection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(answer.status)
        if answer.content_type:
            self.send_header("Content-Type", answer.content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.drip_seconds or answer.chunked:
            self._send_slowly(answer)
            return
        self.send_header("Content-Length", str(len(answer.body)))
        # end_headers() would send the head and the body in two writes, and Nagle's algorithm with
        # delayed ACKs then stalls every answer for 40 ms: send both in one write.
        buffered = self._headers_buffer
        buffered.append(b"\r\n")
        if self.command != "HEAD":
            buffered.append(answer.body)
        self.wfile.write(b"".join(buffered))
        self._headers_buffer = []

    def _send_slowly(self, answer: Reply) -> None:
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        step = 1 if answer.drip_seconds else 65536
        for start in range(0, len(answer.body), step):
            piece = answer.body[start : start + step]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if answer.chunked else piece)
            self.wfile.flush()
            if answer.drip_seconds and self.server.stopped.wait(answer.drip_seconds):
                return
        if answer.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads are joined by server_close(); stop() first drops open connections
    # so that handlers blocked on an idle keep-alive socket return at once.
    daemon_threads = False
    block_on_close = True

    def __init__(self, app: Callable[[HttpRequest], Reply]) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.stopping = False
        self.stopped = threading.Event()  # cuts a dripping answer short
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls getfqdn(), a DNS lookup: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (timeouts, drops, stop()) is routine for a fake.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class LoopbackHTTPServer:
    """Serve ``app(HttpRequest) -> Reply`` on ``127.0.0.1`` (a free port) from a daemon thread."""

    def __init__(self, app: Callable[[HttpRequest], Reply]) -> None:
        self._app = app
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _Server(self._app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"fake-http-{self.port}",
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.stopping = True
        server.stopped.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None


# ---------------------------------------------------------------------------------------------------
# the fake WES server


class RecordedRequest(NamedTuple):
    """(method, raw path with query, headers) of one request FakeWes received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _PageToken:
    scope: str
    items: list[dict[str, Any]]
    offset: int


@dataclass
class _Answer:
    """A JSON answer built by a route; ``template`` is the spec path it is validated against."""

    status: int
    body: Any
    template: str | None = None
    conforming: bool = True  # False for the deliberately quirky knobs: never validated
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


_MISSING = object()


def make_task(
    task_id: str,
    *,
    name: str | None = None,
    exit_code: int | None = 0,
    cmd: Sequence[str] | None = None,
    start_time: str | None = DEFAULT_TIME,
    end_time: str | None = None,
    stdout: str | None = None,
    stderr: str | None = None,
    system_logs: Sequence[str] | None = None,
    tes_uri: str | None = None,
) -> dict[str, Any]:
    """A TaskLog dict (``id`` and ``name`` are the spec's required fields); None values are left out."""
    task: dict[str, Any] = {
        "id": task_id,
        "name": name if name is not None else task_id,
        "cmd": list(cmd) if cmd is not None else None,
        "start_time": start_time,
        "end_time": end_time,
        "stdout": stdout,
        "stderr": stderr,
        "exit_code": exit_code,
        "system_logs": list(system_logs) if system_logs is not None else None,
        "tes_uri": tes_uri,
    }
    return {key: value for key, value in task.items() if value is not None}


class FakeWes:
    """A fake WES 1.1 server. Use it as a context manager, or call start() and stop().

    Knobs (plain attributes; change them at any time):

    - ``list_key``: ``"runs"`` (the spec) or ``"workflows"`` (the reference server, Arvados, Toil).
    - ``summaries``: list items are RunSummary (True) or bare RunStatus ``{run_id, state}`` (False).
    - ``page_size_default`` / ``max_page_size``: server-side paging with opaque tokens.
    - ``ignore_paging``: answer everything in one page, ending the way ``end_token_style`` says
      (``"repeat"`` and ``"empty_page"`` end with ``""`` then).
    - ``end_token_style``: how the last page ends: ``"empty"`` (``""``), ``"null"``, ``"missing"``,
      ``"repeat"`` (the same non-empty token forever, each time with the last page again) or
      ``"empty_page"`` (a non-empty token that leads to an empty page ending with ``""``).
    - ``newest_first``: list the most recently added runs first (default: insertion order).
    - ``delay_seconds`` (every request) and ``delays`` (relative path without query -> seconds):
      sleep before answering. Requests are served concurrently, so one slow answer blocks no other.
    - ``fail_next``: a queue (deque) of ``Reply`` objects served, one per request, before anything else
      (``html_error(502)``, ``problem_json(404)``, ``plain_text(500)``, ``empty(503)``,
      ``connection_close()``, ``error_response(500, "...")``, ``reply(status, body, type)``).
    - ``overrides``: relative path (with or without the query, e.g. ``"/runs/r1/status"``) ->
      ``Reply`` or ``(status, body, content_type)``; served instead of the real answer, after auth.
      A ``Reply`` with ``drip_seconds`` sends its body one byte per interval (a server too slow to finish);
      with ``chunked=True`` it is sent chunked with no Content-Length (a body of unknown size).
    - ``tasks_endpoint``: serve ``/runs/{id}/tasks[/{task_id}]`` (True), or answer
      ``tasks_missing_status`` there (404 problem+json like the reference server; 400, 405 or 501 as
      ``{msg, status_code}``). ``inline_task_logs`` keeps the deprecated inline ``task_logs``.
    - ``auth``: None, ``(user, password)`` for basic auth or ``"token"`` for a bearer token; other
      requests get 401 ``{msg, status_code}``. It also guards ``/files/``.
    - ``ghost_running``: like the reference server, ``/status`` of an unknown id answers RUNNING, the
      ghost is listed by GET /runs from then on, and GET /runs/{ghost} answers 500.
    - ``cancel_behavior``: ``"cancel"`` (CANCELING for ``canceling_reads`` status/log reads, then
      CANCELED; finished runs stay as they are), ``"noop"`` (200, nothing changes),
      ``"forbidden_if_finished"`` (403 for finished runs, like Cromwell, else like "cancel") or
      ``"null"`` (200 with a JSON ``null`` body and nothing changes).
    - ``service_info``: a dict served as-is by GET /service-info; None serves a valid generated one.
    - ``submit_state``: the state of runs created by POST /runs.
    - ``range_failure``: None (default) serves ``/files/`` whatever the ``Range`` header says (the whole
      file, 200, as servers that ignore Range do); a status (500, 416) answers every ``/files/`` request
      that carries a ``Range`` header with it, while a plain GET still gets the file, as some real log
      servers do.

    Records: ``requests`` (RecordedRequest list), ``cancels`` (run ids), ``submissions`` (the form
    fields of each POST /runs), ``spec_violations`` (strings), ``ghosts``, ``validated`` (count).
    """

    def __init__(
        self,
        *,
        base_path: str = "/ga4gh/wes/v1",
        validate: bool | None = None,
        auth: tuple[str, str] | str | None = None,
        list_key: str = "runs",
        tasks_endpoint: bool = True,
        page_size_default: int = 20,
        max_page_size: int = 100,
    ) -> None:
        """``validate``: True checks every conforming answer against the spec (start() raises when
        ../shared is missing), False never does, None (default) does when the spec is there."""
        self.base_path = base_path.rstrip("/")
        self.validate = validate
        self.auth = auth
        self.list_key = list_key
        self.summaries = True
        self.page_size_default = page_size_default
        self.max_page_size = max_page_size
        self.ignore_paging = False
        self.end_token_style: EndTokenStyle = "empty"
        self.newest_first = False
        self.delay_seconds = 0.0
        self.delays: dict[str, float] = {}
        self.tasks_endpoint = tasks_endpoint
        self.tasks_missing_status = 404
        self.inline_task_logs = True
        self.ghost_running = False
        self.cancel_behavior: CancelBehavior = "cancel"
        self.canceling_reads = 1
        self.overrides: dict[str, Reply | tuple[int, Any, str | None]] = {}
        self.service_info: dict[str, Any] | None = None
        self.submit_state = "QUEUED"
        self.range_failure: int | None = None

        self.runs: dict[str, dict[str, Any]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.ghosts: list[str] = []
        self.cancels: list[str] = []
        self.submissions: list[dict[str, Any]] = []
        self.validated = 0

        self._fail_next: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._tokens: dict[str, _PageToken] = {}
        self._pending_cancel: dict[str, int] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server = LoopbackHTTPServer(self._serve)
        self._validating = False

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FakeWes:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.validate and spec.spec_path() is None:
            raise FileNotFoundError("FakeWes(validate=True) needs ../shared/wes-spec next to the project")
        self._validating = self.validate is True or (self.validate is None and spec.spec_path() is not None)
        self._stopping.clear()
        self._server.start()

    def stop(self) -> None:
        """Stop serving; slow answers still sleeping are cut short, open connections are dropped."""
        self._stopping.set()
        self._server.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no base path)."""
        return self._server.root_url

    @property
    def url(self) -> str:
        """The WES base URL, e.g. ``http://127.0.0.1:PORT/ga4gh/wes/v1`` (no trailing slash)."""
        return self.root_url + self.base_path

    # -- records ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    def request_paths(self, method: str | None = None) -> list[str]:
        """The paths (with query) of the requests received, relative to the base path."""
        return [
            self._relative(request.path)
            for request in self.requests
            if method is None or request.method == method.upper()
        ]

    @property
    def spec_violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    @property
    def fail_next(self) -> deque[Reply]:
        """Canned failures served to the next requests, one each (``wes.fail_next.append(...)``)."""
        return self._fail_next

    @fail_next.setter
    def fail_next(self, replies: Iterable[Reply]) -> None:
        self._fail_next = deque(replies)

    # -- data ------------------------------------------------------------------------------------

    def add_run(
        self,
        run_id: str,
        state: str | None = "RUNNING",
        *,
        request: dict[str, Any] | None = None,
        run_log: dict[str, Any] | None = None,
        outputs: dict[str, Any] | None = None,
        task_logs: list[dict[str, Any]] | None = None,
        tags: dict[str, str] | None = None,
        start_time: str | None = DEFAULT_TIME,
        end_time: str | None = None,
        exit_code: int | None = None,
        task_logs_url: str | None = None,
    ) -> dict[str, Any]:
        """Store a run and return its RunLog dict (also in ``runs[run_id]``; edit it freely).

        ``request``/``run_log`` replace the generated ones; ``tags``, ``start_time``, ``end_time`` and
        ``exit_code`` go into the generated request and run_log (they feed the RunSummary too).
        ``task_logs_url`` is generated on every answer when not given (while ``tasks_endpoint``).
        """
        if request is None:
            request = {
                "workflow_url": "echo.cwl",
                "workflow_type": "CWL",
                "workflow_type_version": "v1.0",
                "workflow_params": {},
                "tags": dict(tags or {}),
            }
        elif tags is not None:
            request = {**request, "tags": dict(tags)}
        if run_log is None:
            if exit_code is None and state in TERMINAL_STATES:
                exit_code = 0 if state == "COMPLETE" else 1
            run_log = {
                "name": request.get("workflow_url", run_id) if isinstance(request, dict) else run_id,
                "cmd": ["cwltool", "echo.cwl"],
                "start_time": start_time,
                "end_time": end_time,
                "exit_code": exit_code,
            }
            run_log = {key: value for key, value in run_log.items() if value is not None}
        run: dict[str, Any] = {
            "run_id": run_id,
            "request": request,
            "state": state,
            "run_log": run_log,
            "task_logs": list(task_logs) if task_logs is not None else [],
            "outputs": dict(outputs) if outputs is not None else {},
        }
        if task_logs_url is not None:
            run["task_logs_url"] = task_logs_url
        with self._lock:
            self.runs[run_id] = run
            self._pending_cancel.pop(run_id, None)
        return run

    def many_runs(
        self,
        n: int,
        *,
        states: Sequence[str | None] = ("COMPLETE",),
        prefix: str = "run",
        tags: dict[str, str] | None = None,
    ) -> list[str]:
        """Add ``n`` runs ``{prefix}-000000``... quickly (states cycle through ``states``); their ids."""
        ids = []
        cycle = itertools.cycle(states)
        with self._lock:
            start = len(self.runs)
            for index in range(start, start + n):
                run_id = f"{prefix}-{index:06d}"
                state = next(cycle)
                self.runs[run_id] = {
                    "run_id": run_id,
                    "request": {
                        "workflow_url": "echo.cwl",
                        "workflow_type": "CWL",
                        "workflow_type_version": "v1.0",
                        "tags": dict(tags or {}),
                    },
                    "state": state,
                    "run_log": {"name": "echo.cwl", "start_time": DEFAULT_TIME},
                    "task_logs": [],
                    "outputs": {},
                }
                ids.append(run_id)
        return ids

    def set_state(
        self,
        run_id: str,
        state: str | None,
        *,
        exit_code: int | None = None,
        end_time: str | None = None,
    ) -> None:
        """Change a run's state (and cancel any CANCELING countdown); optionally its exit code/end time."""
        with self._lock:
            run = self.runs[run_id]
            run["state"] = state
            self._pending_cancel.pop(run_id, None)
            if isinstance(run.get("run_log"), dict):
                if exit_code is not None:
                    run["run_log"]["exit_code"] = exit_code
                if end_time is not None:
                    run["run_log"]["end_time"] = end_time

    def state(self, run_id: str) -> str | None:
        with self._lock:
            state: str | None = self.runs[run_id]["state"]
            return state

    def add_file(self, name: str, data: bytes | str, content_type: str = "text/plain; charset=utf-8") -> str:
        """Serve ``data`` at ``/files/<name>`` (at the server root, not under the base path); its URL."""
        with self._lock:
            self.files[name] = (data.encode("utf-8") if isinstance(data, str) else data, content_type)
        return self.file_url(name)

    def file_url(self, name: str) -> str:
        return f"{self.root_url}/files/{name}"

    # -- serving ---------------------------------------------------------------------------------

    def _relative(self, raw_path: str) -> str:
        if self.base_path and raw_path.startswith(self.base_path):
            return raw_path[len(self.base_path) :] or "/"
        return raw_path

    def _serve(self, request: HttpRequest) -> Reply:
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.path, dict(request.headers)))
        route = request.route
        relative: str | None = route
        if self.base_path:
            relative = route[len(self.base_path) :] if route.startswith(self.base_path + "/") else None
        delay = self.delay_seconds + self.delays.get(relative or route, 0.0)
        if delay > 0 and self._stopping.wait(delay):
            return connection_close()  # stop() cut the delay short: answer nothing
        try:
            canned = self._fail_next.popleft()
        except IndexError:
            canned = None
        if canned is not None:
            return canned
        if route.startswith("/files/"):
            return self._serve_file(request, unquote(route[len("/files/") :]))
        if relative is None:
            return problem_json(404)
        return self._serve_wes(request, relative)

    def _serve_file(self, request: HttpRequest, name: str) -> Reply:
        if not self._authorized(request):
            return self._unauthorized_reply()
        with self._lock:
            entry = self.files.get(name)
        if entry is None:
            return plain_text(404, "Not Found")
        if self.range_failure is not None and request.header("Range") is not None:
            return plain_text(self.range_failure, _reason(self.range_failure))
        return Reply(status=200, body=entry[0], content_type=entry[1])

    def _override(self, request: HttpRequest, relative: str) -> Reply | None:
        query = urlsplit(request.path).query
        for key in (relative + ("?" + query if query else ""), relative, request.path):
            value = self.overrides.get(key)
            if value is not None:
                if isinstance(value, Reply):
                    return value
                status, body, content_type = value
                return reply(status, body, content_type)
        return None

    def _authorized(self, request: HttpRequest) -> bool:
        if self.auth is None:
            return True
        scheme, _, credentials = (request.header("Authorization") or "").strip().partition(" ")
        if isinstance(self.auth, tuple):
            user, password = self.auth
            expected = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            return scheme.lower() == "basic" and credentials.strip() == expected
        return scheme.lower() == "bearer" and credentials.strip() == self.auth

    def _unauthorized_reply(self) -> Reply:
        answer = self._unauthorized(None)
        return Reply(
            status=answer.status,
            body=json.dumps(answer.body).encode(),
            content_type=answer.content_type,
            headers=answer.headers,
        )

    def _unauthorized(self, template: str | None) -> _Answer:
        challenge = 'Basic realm="wes"' if isinstance(self.auth, tuple) else 'Bearer realm="wes"'
        return _Answer(
            401,
            {"msg": "The request is unauthorized.", "status_code": 401},
            template,
            headers={"WWW-Authenticate": challenge},
        )

    _ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
        ("GET", re.compile(r"/service-info"), "/service-info"),
        ("GET", re.compile(r"/runs"), "/runs"),
        ("POST", re.compile(r"/runs"), "/runs"),
        ("GET", re.compile(r"/runs/(?P<run_id>[^/]+)"), "/runs/{run_id}"),
        ("GET", re.compile(r"/runs/(?P<run_id>[^/]+)/status"), "/runs/{run_id}/status"),
        ("GET", re.compile(r"/runs/(?P<run_id>[^/]+)/tasks"), "/runs/{run_id}/tasks"),
        ("GET", re.compile(r"/runs/(?P<run_id>[^/]+)/tasks/(?P<task_id>[^/]+)"), "/runs/{run_id}/tasks/{task_id}"),
        ("POST", re.compile(r"/runs/(?P<run_id>[^/]+)/cancel"), "/runs/{run_id}/cancel"),
    )

    def _serve_wes(self, request: HttpRequest, relative: str) -> Reply:
        path = urlsplit(relative).path.rstrip("/") or "/"
        template: str | None = None
        params: dict[str, str] = {}
        path_known = False
        for method, pattern, candidate in self._ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            path_known = True
            if method == request.method:
                template = candidate
                params = {key: unquote(value) for key, value in match.groupdict().items()}
                break
        if template is None:
            return (
                problem_json(405, "The method is not allowed for the requested URL.")
                if path_known
                else problem_json(404)
            )
        if not self._authorized(request):
            return self._send(request, self._unauthorized(template))
        override = self._override(request, relative)
        if override is not None:
            return override
        handlers: dict[str, Callable[..., _Answer]] = {
            "/service-info": self._service_info,
            "/runs": self._list_runs if request.method == "GET" else self._submit,
            "/runs/{run_id}": self._run_log,
            "/runs/{run_id}/status": self._status,
            "/runs/{run_id}/tasks": self._list_tasks,
            "/runs/{run_id}/tasks/{task_id}": self._task,
            "/runs/{run_id}/cancel": self._cancel,
        }
        handler = handlers[template]
        with self._lock:
            answer = handler(request, **params)
        if answer.template is None:
            answer.template = template
        return self._send(request, answer)

    def _send(self, request: HttpRequest, answer: _Answer) -> Reply:
        if answer.conforming and self._validating and answer.template is not None:
            errors = spec.spec_errors(answer.template, request.method, answer.status, answer.body)
            with self._lock:
                self.validated += 1
                self._violations.extend(
                    f"{request.method} {request.path} -> {answer.status}: {error}" for error in errors
                )
        return Reply(
            status=answer.status,
            body=json.dumps(answer.body).encode("utf-8"),
            content_type=answer.content_type,
            headers=answer.headers,
        )

    # -- routes (called with the lock held) ------------------------------------------------------

    def _service_info(self, request: HttpRequest) -> _Answer:
        if self.service_info is not None:
            return _Answer(200, self.service_info)
        counts: dict[str, int] = {}
        for run in self.runs.values():
            counts[str(run.get("state"))] = counts.get(str(run.get("state")), 0) + 1
        return _Answer(
            200,
            {
                "id": "org.ga4gh.fake-wes",
                "name": "Fake WES",
                "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
                "description": "A fake WES server for wesbot's tests",
                "organization": {"name": "wesbot tests", "url": "https://example.org"},
                "version": "1.1.0",
                "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.0", "v1.1", "v1.2"]}},
                "supported_wes_versions": ["1.1.0"],
                "supported_filesystem_protocols": ["file", "http", "https"],
                "workflow_engine_versions": {"cwltool": {"workflow_engine_version": ["3.1"]}},
                "default_workflow_engine_parameters": [],
                "system_state_counts": counts,
                "auth_instructions_url": "https://example.org/auth",
                "tags": {},
            },
        )

    def _summary(self, run: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {"run_id": run["run_id"], "state": run.get("state")}
        if not self.summaries:
            return item
        raw_log, raw_request = run.get("run_log"), run.get("request")
        run_log: dict[str, Any] = raw_log if isinstance(raw_log, dict) else {}
        request: dict[str, Any] = raw_request if isinstance(raw_request, dict) else {}
        for key in ("start_time", "end_time"):
            if run_log.get(key) is not None:
                item[key] = run_log[key]
        item["tags"] = dict(request.get("tags") or {})
        return item

    def _list_runs(self, request: HttpRequest) -> _Answer:
        def snapshot() -> list[dict[str, Any]]:
            items = [self._summary(run) for run in self.runs.values()]
            items += [self._summary({"run_id": ghost, "state": "RUNNING"}) for ghost in self.ghosts]
            return items[::-1] if self.newest_first else items

        page = self._paginate("runs", snapshot, request.query)
        if isinstance(page, _Answer):
            return page
        items, token, quirky = page
        body: dict[str, Any] = {self.list_key: items}
        if token is not _MISSING:
            body["next_page_token"] = token
        return _Answer(200, body, conforming=not quirky and self.list_key == "runs")

    def _paginate(
        self, scope: str, snapshot: Callable[[], list[dict[str, Any]]], query: dict[str, list[str]]
    ) -> tuple[list[dict[str, Any]], Any, bool] | _Answer:
        """(page items, next token or _MISSING, quirky) or a 400 answer."""
        raw_size: str | None = next(iter(query.get("page_size", [])), None)
        size = self.page_size_default
        if raw_size is not None:
            try:
                size = int(raw_size)
            except ValueError:
                return _Answer(400, {"msg": f"page_size must be an integer, not {raw_size!r}", "status_code": 400})
            if size < 1:
                return _Answer(400, {"msg": "page_size must be positive", "status_code": 400})
        size = max(1, min(size, self.max_page_size))
        token = (query.get("page_token") or [""])[0]
        style = self.end_token_style
        final: Any = {"empty": "", "null": None, "missing": _MISSING}.get(style, "")
        if self.ignore_paging:
            return snapshot(), final, style == "null"
        if token:
            entry = self._tokens.get(token)
            if entry is None or entry.scope != scope:
                return _Answer(400, {"msg": f"invalid page_token {token!r}", "status_code": 400})
            items, offset = entry.items, entry.offset
        else:
            items, offset = snapshot(), 0
        page = items[offset : offset + size]
        if offset + size < len(items):
            return page, self._new_token(scope, items, offset + size), False
        if style == "repeat":
            return page, token or self._new_token(scope, items, offset), False
        if style == "empty_page" and page:
            return page, self._new_token(scope, items, len(items)), False
        return page, final, style == "null"

    def _new_token(self, scope: str, items: list[dict[str, Any]], offset: int) -> str:
        token = secrets.token_urlsafe(9)
        self._tokens[token] = _PageToken(scope, items, offset)
        return token

    def _read_state(self, run_id: str) -> str | None:
        """The state a status or log read sees, advancing a CANCELING countdown."""
        run = self.runs[run_id]
        pending = self._pending_cancel.get(run_id)
        if pending is not None:
            if pending <= 0:
                run["state"] = "CANCELED"
                del self._pending_cancel[run_id]
            else:
                self._pending_cancel[run_id] = pending - 1
        state: str | None = run.get("state")
        return state

    def _not_found(self, run_id: str) -> _Answer:
        return _Answer(404, {"msg": f"run {run_id} not found", "status_code": 404})

    def _status(self, request: HttpRequest, run_id: str) -> _Answer:
        if run_id not in self.runs:
            if self.ghost_running:
                if run_id not in self.ghosts:
                    self.ghosts.append(run_id)
                return _Answer(200, {"run_id": run_id, "state": "RUNNING"})
            return self._not_found(run_id)
        return _Answer(200, {"run_id": run_id, "state": self._read_state(run_id)})

    def _tasks_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}/tasks"

    def _run_log(self, request: HttpRequest, run_id: str) -> _Answer:
        if run_id not in self.runs:
            if run_id in self.ghosts:
                return _Answer(500, {"msg": "An unexpected error occurred.", "status_code": 500})
            return self._not_found(run_id)
        self._read_state(run_id)
        body = json.loads(json.dumps(self.runs[run_id]))  # a deep copy, as the client would see it
        if self.tasks_endpoint and "task_logs_url" not in body:
            body["task_logs_url"] = self._tasks_url(run_id)
        if not self.inline_task_logs:
            body.pop("task_logs", None)
        return _Answer(200, body)

    def _tasks_missing(self) -> _Answer:
        status = self.tasks_missing_status
        if status == 404:
            body = json.loads(problem_json(404).body)
            return _Answer(404, body, conforming=False, content_type="application/problem+json")
        return _Answer(status, {"msg": _reason(status), "status_code": status}, conforming=False)

    def _list_tasks(self, request: HttpRequest, run_id: str) -> _Answer:
        if not self.tasks_endpoint:
            return self._tasks_missing()
        if run_id not in self.runs:
            return self._not_found(run_id)

        def snapshot() -> list[dict[str, Any]]:
            tasks = self.runs[run_id].get("task_logs") or []
            copied: list[dict[str, Any]] = json.loads(json.dumps(tasks))
            return copied

        page = self._paginate(f"tasks:{run_id}", snapshot, request.query)
        if isinstance(page, _Answer):
            return page
        items, token, quirky = page
        body: dict[str, Any] = {"task_logs": items}
        if token is not _MISSING:
            body["next_page_token"] = token
        return _Answer(200, body, conforming=not quirky)

    def _task(self, request: HttpRequest, run_id: str, task_id: str) -> _Answer:
        if not self.tasks_endpoint:
            return self._tasks_missing()
        if run_id not in self.runs:
            return self._not_found(run_id)
        for task in self.runs[run_id].get("task_logs") or []:
            if isinstance(task, dict) and str(task.get("id")) == task_id:
                return _Answer(200, json.loads(json.dumps(task)))
        return _Answer(404, {"msg": f"task {task_id} not found in run {run_id}", "status_code": 404})

    def _cancel(self, request: HttpRequest, run_id: str) -> _Answer:
        if run_id not in self.runs:
            if run_id in self.ghosts:
                return _Answer(200, {"run_id": run_id})
            return self._not_found(run_id)
        self.cancels.append(run_id)
        behavior = self.cancel_behavior
        state = self.runs[run_id].get("state")
        if behavior == "null":
            return _Answer(200, None, conforming=False)
        if behavior == "forbidden_if_finished" and state in TERMINAL_STATES:
            return _Answer(403, {"msg": f"run {run_id} has already finished ({state})", "status_code": 403})
        if behavior != "noop" and state not in TERMINAL_STATES and run_id not in self._pending_cancel:
            self.runs[run_id]["state"] = "CANCELING"
            self._pending_cancel[run_id] = self.canceling_reads
        return _Answer(200, {"run_id": run_id})

    def _submit(self, request: HttpRequest) -> _Answer:
        fields = parse_form(request)
        run_id = uuid.uuid4().hex
        run_request: dict[str, Any] = {}
        for key in (
            "workflow_url",
            "workflow_type",
            "workflow_type_version",
            "workflow_engine",
            "workflow_engine_version",
        ):
            if isinstance(fields.get(key), str):
                run_request[key] = fields[key]
        for key in ("workflow_params", "tags", "workflow_engine_parameters"):
            value = fields.get(key)
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if value is not None:
                run_request[key] = value
        self.submissions.append(fields)
        self.add_run(run_id, self.submit_state, request=run_request)
        return _Answer(200, {"run_id": run_id})


def parse_form(request: HttpRequest) -> dict[str, Any]:
    """The fields of a multipart, urlencoded or JSON body (files: {"filename", "content"})."""
    content_type = request.header("Content-Type") or ""
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                fields.setdefault(name + "[]", []).append({"filename": filename, "content": data})
            else:
                fields[name] = data.decode("utf-8", "replace")
        return fields
    if content_type.startswith("application/json"):
        try:
            decoded = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {key: values[-1] for key, values in parse_qs(request.body.decode("utf-8", "replace")).items()}
