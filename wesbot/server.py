"""Running the bot: HTTP mode (waitress, a production WSGI server) or Socket Mode, and a clean SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from .metrics import Metrics, current
from .slack.gate import MAX_BODY_BYTES, guard

logger = logging.getLogger("wesbot.server")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
# SIGTERM must end the process within 5 seconds: in-flight lookups get this long to finish.
DRAIN_SECONDS = 3.0

StartResponse = Callable[..., Any]


class Stopping(Exception):
    """Raised in the main thread by the SIGTERM/SIGINT handler to leave the server loop."""


Problems = Callable[[], list[str]]


def _no_problems() -> list[str]:
    return []


def make_wsgi(app: App, healthy: Callable[[], bool], signing_secret: str, *, problems: Problems = _no_problems,
              metrics: Metrics | None = None) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """POST /slack/events goes to Bolt once its signature verifies (see ``slack.gate``); GET /healthz answers
    200 while healthy, else 503 with what is wrong (``problems``: the storage's, one sentence a line, so that
    a probe's log says it); GET /metrics is Prometheus's (``metrics``, the process's by default: no
    secret is ever in them, so it needs no credentials); anything else is 404."""
    bolt = guard(SlackRequestHandler(app, path=EVENTS_PATH), signing_secret)

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return _health(start_response, ["stopping"] if not healthy() else problems())
        if path == METRICS_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            body = (metrics or current()).exposition()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
            return [body]
        if path == EVENTS_PATH:
            return bolt(environ, start_response)
        return _plain(start_response, "404 Not Found", b"not found\n")

    return wsgi


def _health(start_response: StartResponse, problems: list[str]) -> Iterable[bytes]:
    if not problems:
        return _plain(start_response, "200 OK", b"ok\n")
    return _plain(start_response, "503 Service Unavailable", "".join(f"{p}\n" for p in problems).encode())


def _plain(start_response: StartResponse, status: str, body: bytes) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def install_stop_handlers(stop: threading.Event, *, raise_in_main: bool, also: threading.Event | None = None) -> None:
    """SIGTERM and SIGINT set ``stop`` (and ``also``); with ``raise_in_main`` they also break the server loop."""

    def handler(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        already = stop.is_set()
        stop.set()
        if also is not None:
            also.set()
        if raise_in_main and not already:
            raise Stopping()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def drain(pool: ThreadPoolExecutor, seconds: float = DRAIN_SECONDS) -> bool:
    """Let in-flight lookups finish for up to ``seconds``; drop queued ones. True when all finished."""
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + seconds
    threads = list(getattr(pool, "_threads", ()))
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    return not any(thread.is_alive() for thread in threads)


def serve_http(app: App, pool: ThreadPoolExecutor, *, host: str, port: int, stop: threading.Event,
               signing_secret: str, ready: Callable[[str, int], None] | None = None,
               problems: Problems = _no_problems) -> None:
    """Serve HTTP mode with waitress until SIGTERM/SIGINT; ``problems`` makes /healthz answer 503."""
    from waitress import create_server  # imported here: Socket Mode does not need it

    wsgi = make_wsgi(app, healthy=lambda: not stop.is_set(), signing_secret=signing_secret, problems=problems)
    # A few threads are plenty: listeners only ack here; lookups run on ``pool``. Waitress refuses a body over
    # the gate's limit before buffering it (its own default is 1 GB).
    server = create_server(wsgi, host=host, port=port, threads=8, ident="wesbot",
                           max_request_body_size=MAX_BODY_BYTES)
    actual_port = server.effective_port
    logger.info("wesbot listening on http://%s:%s%s (health: %s, metrics: %s)", host, actual_port, EVENTS_PATH,
                HEALTH_PATH, METRICS_PATH)
    if ready is not None:
        ready(host, actual_port)
    install_stop_handlers(stop, raise_in_main=False)
    try:
        _run_until(server, stop)
    finally:
        stop.set()
        server.close()
        server.task_dispatcher.shutdown(timeout=1)
        _finish(pool)


def _run_until(server: Any, stop: threading.Event, tick: float = 0.2) -> None:
    """waitress's event loop, one pass at a time until ``stop`` is set.

    Not ``server.run()`` with an exception raised from the signal handler: a SIGTERM that lands while waitress
    is closing a connection is caught by waitress ("uncaptured python exception") and the loop goes on, so the
    process ran until SIGKILL. Here the handler only sets ``stop``; the wait in ``loop`` returns on the signal
    (or within ``tick``) and the loop sees it. ``_map`` and ``adj`` are waitress's own, as ``run()`` uses them."""
    while not stop.is_set():
        server.asyncore.loop(timeout=tick, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)


def serve_socket_mode(app: App, pool: ThreadPoolExecutor, *, app_token: str, stop: threading.Event) -> None:
    """Connect over Socket Mode (slack_sdk's built-in client) and run until SIGTERM/SIGINT."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    install_stop_handlers(stop, raise_in_main=False)
    handler = SocketModeHandler(app, app_token=app_token, web_client=app.client)
    handler.connect()  # type: ignore[no-untyped-call]
    logger.info("wesbot connected to Slack over Socket Mode")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        handler.close()  # type: ignore[no-untyped-call]
        _finish(pool)


def _finish(pool: ThreadPoolExecutor) -> None:
    if not drain(pool):
        logger.warning("lookups still running after %.0f s; exiting without them", DRAIN_SECONDS)
        logging.shutdown()
        os._exit(0)
    logger.info("wesbot stopped")
