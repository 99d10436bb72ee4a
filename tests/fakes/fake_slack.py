"""A fake Slack: Web API, response_url sink and Socket Mode server, all on loopback.

::

    with FakeSlack() as slack:
        client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
        client.chat_postMessage(channel="C123", text="hi")
        assert slack.calls_to("chat.postMessage")[0]["args"]["text"] == "hi"

        socket_client = SocketModeClient(app_token=APP_TOKEN, web_client=client)
        socket_client.connect()               # apps.connections.open -> ws://127.0.0.1:PORT/link
        slack.wait_connected()
        envelope_id = slack.send_envelope("slash_commands", slash_command_payload("status r1"))
        ack = slack.wait_for_ack(envelope_id)
        socket_client.close()                 # close the client before the fake

The Web API answers ``POST {api_url}{method}`` with JSON or form bodies (as slack_sdk sends them).
Errors are injected per method with ``fail_next``, ``rate_limit_next`` and ``status_next``; ``slow_next`` makes a
call take effect at once but answer late.

File uploads take the three steps of slack_sdk's ``files_upload_v2``: ``files.getUploadURLExternal`` (filename,
length) answers a ``file_id`` and an ``upload_url`` on this fake's own loopback server
(``{root_url}/upload/{file_id}``), which stores the POSTed bytes (``inject("upload", ...)`` makes the next POST
fail), and ``files.completeUploadExternal`` (files, channel_id, thread_ts, initial_comment) shares them: a message
with ``files`` in ``messages`` (so ``conversations.replies`` shows it), and a record in ``uploads`` (file id ->
filename, title, channel_id, thread_ts, initial_comment, content, completed), which ``shared_files()`` lists.

What ``wesbot check`` looks at (constructor arguments, and attributes that may be changed at any time):

- ``scopes``: the bot scopes granted, sent as Slack does in the ``x-oauth-scopes`` header of every
  successful bot-token call (``auth.test`` included); default: manifest.yml's ``oauth_config.scopes.bot``
  (:func:`manifest_bot_scopes`).
- ``auth_error``: when set (e.g. ``"invalid_auth"``), every ``auth.test`` answers ``{"ok": false, "error": ...}``,
  whatever the token: Bolt's start-up check and ``wesbot check`` both see a refused bot token.
- ``connections_error``: when set (e.g. ``"invalid_auth"``), every ``apps.connections.open`` answers that error
  instead of ``{"ok": true, "url": ws_url}``.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict, TypeVar
from urllib.parse import urlencode

import yaml  # type: ignore[import-untyped]
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from .fake_wes import HttpRequest, LoopbackHTTPServer, Reply, json_reply, parse_form, reply

__all__ = [
    "APP_ID",
    "APP_TOKEN",
    "BOT_TOKEN",
    "SIGNING_SECRET",
    "TEAM_ID",
    "FakeSlack",
    "SlackCall",
    "block_actions_payload",
    "close_socket_mode_client",
    "events_api_payload",
    "form_body",
    "manifest_bot_scopes",
    "signed_request_headers",
    "slash_command_payload",
]

BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-1-test"
SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T0001"
APP_ID = "A0001"
UNREACHABLE_RESPONSE_URL = "http://127.0.0.1:9/respond/unused"  # loopback, refused at once

_JSON_FIELDS = ("blocks", "attachments", "metadata", "files")
T = TypeVar("T")


@functools.cache
def manifest_bot_scopes() -> tuple[str, ...]:
    """The bot scopes manifest.yml (at the project root) asks for, in its order."""
    manifest = yaml.safe_load((Path(__file__).resolve().parents[2] / "manifest.yml").read_text(encoding="utf-8"))
    return tuple(manifest["oauth_config"]["scopes"]["bot"])


class SlackCall(TypedDict):
    """One Web API call the fake received."""

    method: str
    args: dict[str, Any]  # query, form and JSON fields merged; blocks/attachments decoded from JSON
    token: str | None  # from "Authorization: Bearer ...", else the "token" field
    status: int  # the HTTP status served
    response: Any  # the JSON body served (None when it was not JSON)


class FakeSlack:
    """Fake Slack Web API (``api_url``), response_url sink (``response_url(name)``) and Socket Mode.

    Token check: ``bot_token`` is required on every method but ``apps.connections.open``, which needs
    ``app_token``; None accepts any token. A wrong token gets ``invalid_auth``, none ``not_authed``.
    Data the methods serve can be edited: ``channels``, ``users`` (id -> dict), ``usergroups``
    (id -> user ids); ``messages`` (ts -> message dict with "channel") holds what was posted; ``home_views``
    (user id -> view) the Home tab last published for each user (``views.publish``).
    """

    def __init__(
        self,
        *,
        bot_token: str | None = BOT_TOKEN,
        app_token: str | None = APP_TOKEN,
        team_id: str = TEAM_ID,
        team: str = "Fake Team",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        app_id: str = APP_ID,
        send_hello: bool = True,
        ws_ping_interval: float | None = 0.2,
        scopes: Sequence[str] | None = None,
        auth_error: str | None = None,
        connections_error: str | None = None,
    ) -> None:
        """``ws_ping_interval``: how often the Socket Mode server pings its clients. The pings also wake
        slack_sdk's builtin client, whose receive loop otherwise only notices close() after its 3 s
        socket timeout. ``scopes``, ``auth_error`` and ``connections_error``: see the module docstring."""
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.send_hello = send_hello
        self.ws_ping_interval = ws_ping_interval
        self.scopes: list[str] = list(manifest_bot_scopes() if scopes is None else scopes)
        self.auth_error = auth_error
        self.connections_error = connections_error

        self.channels: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.connections_opened = 0
        self.home_views: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}

        self._cond = threading.Condition(threading.RLock())
        self._calls: list[SlackCall] = []
        self._responses: list[tuple[str, Any]] = []
        self._acks: list[dict[str, Any]] = []
        self._ws_received: list[Any] = []
        self._ws_sent: list[dict[str, Any]] = []
        self._connections: list[ServerConnection] = []
        self._injected: dict[str, deque[Reply]] = {}
        self._slow: dict[str, deque[float]] = {}
        self._stopping = threading.Event()  # cuts a slow answer short
        self._ts_counter = 0
        self._ts_base = int(time.time())

        self._http = LoopbackHTTPServer(self._serve)
        self._ws_server: Server | None = None
        self._ws_thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._http.start()
        if self._ws_server is None:
            self._ws_server = serve(
                self._ws_handler,
                "127.0.0.1",
                0,
                process_request=self._ws_process_request,
                compression=None,
                close_timeout=1,
                ping_interval=self.ws_ping_interval,
            )
            self._ws_thread = threading.Thread(
                target=self._ws_server.serve_forever, daemon=True, name="fake-slack-socket-mode"
            )
            self._ws_thread.start()

    def stop(self) -> None:
        """Close Socket Mode connections (close code 1001), then stop both servers.

        Close a SocketModeClient first: one still connected would try to reconnect.
        """
        self._stopping.set()
        server, thread = self._ws_server, self._ws_thread
        if server is not None and thread is not None:
            server.shutdown()
            thread.join()
            self._ws_server = self._ws_thread = None
        self._http.stop()

    @property
    def root_url(self) -> str:
        return self._http.root_url

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/``: the ``base_url`` for slack_sdk's WebClient."""
        return self.root_url + "/api/"

    @property
    def ws_port(self) -> int:
        if self._ws_server is None:
            raise RuntimeError("the fake Slack is not started")
        return int(self._ws_server.socket.getsockname()[1])

    @property
    def ws_url(self) -> str:
        """What apps.connections.open answers: ``ws://127.0.0.1:WSPORT/link``."""
        return f"ws://127.0.0.1:{self.ws_port}/link"

    def response_url(self, name: str = "default") -> str:
        """A response_url whose POSTs are recorded in ``responses`` as (name, json)."""
        return f"{self.root_url}/respond/{name}"

    # -- records and waiting ---------------------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call["method"] == method]

    @property
    def responses(self) -> list[tuple[str, Any]]:
        """(name, body) of every POST to a response_url; body is the decoded JSON (or the text)."""
        with self._cond:
            return list(self._responses)

    def responses_to(self, name: str) -> list[Any]:
        return [body for response_name, body in self.responses if response_name == name]

    def shared_files(self) -> list[dict[str, Any]]:
        """Every file shared with files.completeUploadExternal, in order: its record in ``uploads`` with its
        ``file_id``."""
        with self._cond:
            done = [{"file_id": file_id, **record} for file_id, record in self.uploads.items() if record["completed"]]
        return sorted(done, key=lambda record: float(record["completed"]))

    def wait_for_shared_files(self, count: int = 1, timeout: float = 3.0) -> list[dict[str, Any]]:
        """The first ``count`` shared files, waiting for them."""
        return self.wait_for(lambda: found if len(found := self.shared_files()) >= count else None, timeout,
                             f"{count} shared file(s)")[:count]

    @property
    def acks(self) -> list[dict[str, Any]]:
        """Socket Mode acknowledgements received: ``{"envelope_id", "payload"?}``."""
        with self._cond:
            return list(self._acks)

    @property
    def ws_received(self) -> list[Any]:
        """Every Socket Mode message received from clients (decoded JSON, or the raw text)."""
        with self._cond:
            return list(self._ws_received)

    @property
    def ws_sent(self) -> list[dict[str, Any]]:
        """Every Socket Mode message sent to clients (hello, envelopes, disconnects)."""
        with self._cond:
            return list(self._ws_sent)

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 3.0, what: str = "the condition") -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every recorded event); return its value.

        Raises AssertionError after ``timeout`` seconds.
        """
        with self._cond:
            result = self._cond.wait_for(predicate, timeout)
        if not result:
            raise AssertionError(f"FakeSlack: timed out after {timeout}s waiting for {what}")
        return result

    def wait_for_call(self, method: str, *, count: int = 1, timeout: float = 3.0) -> SlackCall:
        """The ``count``-th call to ``method``, waiting for it."""
        calls = self.wait_for(
            lambda: found if len(found := self.calls_to(method)) >= count else None,
            timeout,
            f"{count} call(s) to {method} (calls so far: {[call['method'] for call in self.calls]})",
        )
        return calls[count - 1]

    def wait_for_response(self, name: str | None = None, *, count: int = 1, timeout: float = 3.0) -> Any:
        """The body of the ``count``-th POST to response_url ``name`` (any name when None)."""

        def matching() -> list[Any] | None:
            bodies = [body for key, body in self.responses if name is None or key == name]
            return bodies if len(bodies) >= count else None

        return self.wait_for(matching, timeout, f"{count} POST(s) to response_url {name or '(any)'}")[count - 1]

    def wait_for_ack(self, envelope_id: str, timeout: float = 3.0) -> dict[str, Any]:
        """The acknowledgement of envelope ``envelope_id`` (``{"envelope_id", "payload"?}``)."""

        def find() -> dict[str, Any] | None:
            return next((ack for ack in self.acks if ack.get("envelope_id") == envelope_id), None)

        return self.wait_for(find, timeout, f"the ack of envelope {envelope_id}")

    def wait_connected(self, timeout: float = 3.0) -> None:
        """Wait until a Socket Mode client is connected (and has been sent hello)."""
        self.wait_for(lambda: bool(self._open_connections()), timeout, "a Socket Mode connection")

    def wait_disconnected(self, timeout: float = 3.0) -> None:
        self.wait_for(lambda: not self._open_connections(), timeout, "no Socket Mode connection")

    # -- error injection -------------------------------------------------------------------------

    def inject(self, method: str, answer: Reply, count: int = 1) -> None:
        """Serve ``answer`` to the next ``count`` calls to ``method`` (``"respond/NAME"`` for a
        response_url)."""
        with self._cond:
            self._injected.setdefault(method, deque()).extend([answer] * count)

    def clear_injected(self, method: str) -> None:
        """Forget what is still injected for ``method``: it answers normally again."""
        with self._cond:
            self._injected.pop(method, None)

    def fail_next(self, method: str, error: str = "not_in_channel", count: int = 1) -> None:
        """The next call(s) to ``method`` answer ``{"ok": false, "error": error}`` (HTTP 200)."""
        self.inject(method, json_reply(200, {"ok": False, "error": error}), count)

    def rate_limit_next(self, method: str, retry_after: int = 1, count: int = 1) -> None:
        """The next call(s) to ``method`` answer HTTP 429 with ``Retry-After``."""
        answer = Reply(
            status=429,
            body=json.dumps({"ok": False, "error": "ratelimited"}).encode(),
            content_type="application/json",
            headers={"Retry-After": str(retry_after)},
        )
        self.inject(method, answer, count)

    def slow_next(self, method: str, seconds: float, count: int = 1) -> None:
        """The next call(s) to ``method`` do what they do at once (recorded in ``calls``), but answer only after
        ``seconds``: what a process killed while it waits for Slack's answer has done, unknowingly."""
        with self._cond:
            self._slow.setdefault(method, deque()).extend([seconds] * count)

    def status_next(self, method: str, status: int = 500, body: Any = "", count: int = 1) -> None:
        """The next call(s) to ``method`` answer HTTP ``status`` with ``body`` (text by default)."""
        content_type = None if not isinstance(body, str | bytes) else "text/plain; charset=utf-8"
        self.inject(method, reply(status, body, content_type), count)

    # -- HTTP ------------------------------------------------------------------------------------

    def _serve(self, request: HttpRequest) -> Reply:
        route = request.route
        if route.startswith("/api/"):
            return self._serve_api(request, route[len("/api/") :])
        if route.startswith("/respond/"):
            return self._serve_response_url(request, route[len("/respond/") :])
        if route.startswith("/upload/"):
            return self._serve_upload(request, route[len("/upload/") :])
        return reply(404, "Not Found", "text/plain")

    def _serve_upload(self, request: HttpRequest, file_id: str) -> Reply:
        """An upload URL (files.getUploadURLExternal's): the POSTed body is the file's content, kept in ``uploads``."""
        answer = self._take_injected("upload")
        with self._cond:
            record = self.uploads.get(file_id)
            if answer is None:
                if request.method != "POST" or record is None:
                    answer = reply(404, "Not Found", "text/plain")
                else:
                    record["content"] = request.body
                    record["authorization"] = request.header("Authorization")
                    answer = reply(200, f"OK - {len(request.body)}", "text/plain")
            self._cond.notify_all()
        return answer

    def _take_injected(self, key: str) -> Reply | None:
        with self._cond:
            queue = self._injected.get(key)
            return queue.popleft() if queue else None

    def _serve_api(self, request: HttpRequest, method: str) -> Reply:
        args: dict[str, Any] = {key: values[-1] for key, values in request.query.items()}
        args.update(parse_form(request))
        for key in _JSON_FIELDS:
            value = args.get(key)
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    args[key] = json.loads(value)
                except ValueError:
                    pass
        authorization = request.header("Authorization") or ""
        token = authorization[len("Bearer ") :].strip() if authorization.startswith("Bearer ") else None
        if token is None and isinstance(args.get("token"), str):
            token = args["token"]

        answer = self._take_injected(method)
        if answer is None:
            with self._cond:
                body = self._check_token(method, token) or self._api(method, args)
                scopes = ",".join(self.scopes)
            answer = json_reply(200, body)
            if body.get("ok") is True and method != "apps.connections.open":
                answer = replace(answer, headers={"x-oauth-scopes": scopes})
        try:
            served = json.loads(answer.body) if answer.body else None
        except ValueError:
            served = None
        with self._cond:
            self._calls.append(SlackCall(method=method, args=args, token=token, status=answer.status, response=served))
            self._cond.notify_all()
            slow = self._slow.get(method)
            delay = slow.popleft() if slow else 0.0
        if delay:
            self._stopping.wait(delay)
        return answer

    def _check_token(self, method: str, token: str | None) -> dict[str, Any] | None:
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if expected is None:
            return None
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token != expected:
            return {"ok": False, "error": "invalid_auth"}
        return None

    def _serve_response_url(self, request: HttpRequest, name: str) -> Reply:
        text = request.body.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        answer = self._take_injected(f"respond/{name}") or reply(200, "ok", "text/html")
        with self._cond:
            self._responses.append((name, body))
            self._cond.notify_all()
        return answer

    # -- Web API methods (called with the lock held) ---------------------------------------------

    def _api(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.unfurl": self._unfurl,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_by_email,
            "usergroups.users.list": self._usergroup_users,
            "apps.connections.open": self._connections_open,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }
        handler = handlers.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(args)

    def _next_ts(self) -> str:
        self._ts_counter += 1
        return f"{self._ts_base}.{self._ts_counter:06d}"

    def _connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.connections_error:
            return {"ok": False, "error": self.connections_error}
        return {"ok": True, "url": self.ws_url}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.auth_error:
            return {"ok": False, "error": self.auth_error}
        return {
            "ok": True,
            "url": "https://fake-team.slack.com/",
            "team": self.team,
            "user": "wesbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _message(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "text": args.get("text", ""),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata", "reply_broadcast"):
            if args.get(key) is not None:
                message[key] = args[key]
        return message

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(args.get(key) for key in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message = self._message(args, ts)
        self.messages[ts] = {**message, "channel": channel}
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_found"}
        if not any(args.get(key) for key in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        ts, channel = str(args.get("ts") or ""), args.get("channel")
        stored = self.messages.get(ts)
        if stored is None or stored["channel"] != channel:
            return {"ok": False, "error": "message_not_found"}
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in args:
                stored[key] = args[key]
        message = {key: value for key, value in stored.items() if key != "channel"}
        return {"ok": True, "channel": channel, "ts": ts, "text": stored.get("text", ""), "message": message}

    def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        ts, channel = str(args.get("ts") or ""), args.get("channel")
        stored = self.messages.get(ts)
        if stored is None or stored["channel"] != channel:
            return {"ok": False, "error": "message_not_found"}
        del self.messages[ts]
        return {"ok": True, "channel": channel, "ts": ts}

    def _unfurl(self, args: dict[str, Any]) -> dict[str, Any]:
        """chat.unfurl: ``channel`` and ``ts`` (or ``unfurl_id`` and ``source``), and ``unfurls`` (a JSON object of
        url -> {"blocks": ...}, or the same as a string); recorded in ``calls`` like every call."""
        unfurls = args.get("unfurls")
        if isinstance(unfurls, str):
            try:
                unfurls = json.loads(unfurls)
            except ValueError:
                return {"ok": False, "error": "invalid_unfurls"}
        if not (args.get("channel") and args.get("ts")) and not (args.get("unfurl_id") and args.get("source")):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(unfurls, dict) or not unfurls:
            return {"ok": False, "error": "invalid_unfurls"}
        return {"ok": True}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        """A user's Home tab: ``user_id`` and ``view`` (a JSON object, or the same as a string), checked as Slack
        checks it (slack_sdk's view and block models: a home view of 1 to 100 valid blocks), kept in
        ``home_views`` and answered back with an id and a hash."""
        user_id, view = args.get("user_id"), args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return {"ok": False, "error": "invalid_arguments"}
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        try:
            model = View(type="home", blocks=view.get("blocks"), private_metadata=view.get("private_metadata"),
                         callback_id=view.get("callback_id"), external_id=view.get("external_id"))
            model.validate_json()
            for block in model.blocks or []:
                block.validate_json()
        except (SlackObjectFormationError, TypeError, KeyError) as error:
            return {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": [str(error)]}}
        self.home_views[str(user_id)] = view
        self._ts_counter += 1
        return {"ok": True, "view": {"id": f"V{self._ts_counter:08d}", "team_id": self.team_id, "type": "home",
                                     "blocks": view.get("blocks") or [], "private_metadata": "", "callback_id": "",
                                     "state": {"values": {}}, "hash": f"{self._ts_base}.{uuid.uuid4().hex[:8]}",
                                     "app_id": self.app_id, "bot_id": self.bot_id}}

    def _get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        """Step 1 of an upload: ``filename`` and ``length`` (a positive whole number) give a file id and the URL
        its bytes go to."""
        filename, length = args.get("filename"), str(args.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        self._ts_counter += 1
        file_id = f"F{self._ts_counter:08d}"
        self.uploads[file_id] = {"filename": filename, "length": int(length), "content": None, "title": None,
                                 "channel_id": None, "thread_ts": None, "initial_comment": None, "completed": None}
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.root_url}/upload/{file_id}"}

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        """Step 3: ``files`` (a JSON list of {id, title}) whose bytes were uploaded, shared in ``channel_id`` (in
        the thread of ``thread_ts``) with ``initial_comment``; the channel must be one the bot is in."""
        files = args.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) and f.get("id") for f in files):
            return {"ok": False, "error": "invalid_arguments"}
        records = [self.uploads.get(str(f["id"])) for f in files]
        if any(record is None or record["completed"] for record in records):
            return {"ok": False, "error": "file_not_found"}
        if any(record is not None and record["content"] is None for record in records):
            return {"ok": False, "error": "file_upload_incomplete"}
        channel = args.get("channel_id")
        if channel and self.channels.get(channel, {}).get("is_member", True) is False:
            return {"ok": False, "error": "not_in_channel"}
        ts = self._next_ts()
        shown = []
        for f, record in zip(files, records, strict=True):
            assert record is not None
            record.update(title=f.get("title") or record["filename"], channel_id=channel,
                          thread_ts=args.get("thread_ts"), initial_comment=args.get("initial_comment"),
                          completed=ts)
            shown.append({"id": str(f["id"]), "title": record["title"], "name": record["filename"]})
        if channel:
            message = self._message({"text": args.get("initial_comment") or "", "thread_ts": args.get("thread_ts")},
                                    ts)
            self.messages[ts] = {**message, "channel": channel, "files": shown}
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shown]}

    def _listed(self, message: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in message.items() if k != "channel"}
        if str(args.get("include_all_metadata", "")).lower() not in ("true", "1"):
            shown.pop("metadata", None)
        return shown

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel (and thread replies sent to it), newest first, after ``oldest``."""
        channel = args.get("channel")
        oldest = float(args.get("oldest") or 0)
        limit = int(args.get("limit") or 100)
        found = [m for ts, m in self.messages.items() if m["channel"] == channel and float(ts) > oldest
                 and (not m.get("thread_ts") or str(m.get("reply_broadcast", "")).lower() == "true")]
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        return {"ok": True, "messages": [self._listed(m, args) for m in found[:limit]], "has_more": False}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, then its replies, oldest first."""
        channel, ts = args.get("channel"), str(args.get("ts") or "")
        parent = self.messages.get(ts)
        if parent is None or parent["channel"] != channel:
            return {"ok": False, "error": "thread_not_found"}
        replies = sorted((m for m in self.messages.values() if m["channel"] == channel and m.get("thread_ts") == ts),
                         key=lambda m: float(m["ts"]))
        return {"ok": True, "messages": [self._listed(m, args) for m in [parent, *replies]], "has_more": False}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = args.get("channel")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        channel = self.channels.get(channel_id) or {
            "id": channel_id,
            "name": f"channel-{channel_id.lower()}",
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": True,
        }
        return {"ok": True, "channel": channel}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        user = self.users.get(user_id) or {
            "id": user_id,
            "team_id": self.team_id,
            "name": user_id.lower(),
            "real_name": f"User {user_id}",
            "tz": "UTC",
            "is_bot": False,
            "deleted": False,
            "profile": {"display_name": user_id.lower(), "real_name": f"User {user_id}"},
        }
        return {"ok": True, "user": user}

    def _users_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        """``users.lookupByEmail`` over ``users`` (each user's ``profile.email``)."""
        email = str(args.get("email") or "").lower()
        for user in self.users.values():
            if email and str((user.get("profile") or {}).get("email") or "").lower() == email:
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    # -- Socket Mode -----------------------------------------------------------------------------

    def _ws_process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # slack_sdk's builtin client asks for "/link?" (an empty query): accept any query.
        if request.path.split("?")[0] != "/link":
            return connection.respond(404, "Not Found\n")
        return None

    def _open_connections(self) -> list[ServerConnection]:
        with self._cond:
            return list(self._connections)

    def _ws_send(self, connection: ServerConnection, message: dict[str, Any]) -> None:
        connection.send(json.dumps(message))
        with self._cond:
            self._ws_sent.append(message)
            self._cond.notify_all()

    def _ws_handler(self, connection: ServerConnection) -> None:
        try:
            if self.send_hello:
                self._ws_send(
                    connection,
                    {
                        "type": "hello",
                        "num_connections": 1,
                        "debug_info": {
                            "host": "applink-fake",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    },
                )
            with self._cond:
                self._connections.append(connection)
                self.connections_opened += 1
                self._cond.notify_all()
            for raw in connection:
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                try:
                    message: Any = json.loads(text)
                except ValueError:
                    message = text
                with self._cond:
                    self._ws_received.append(message)
                    if isinstance(message, dict) and "envelope_id" in message:
                        self._acks.append(message)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._cond.notify_all()

    def _current_connection(self, timeout: float) -> ServerConnection:
        self.wait_connected(timeout)
        return self._open_connections()[-1]

    def send_envelope(
        self,
        type_: str,
        payload: dict[str, Any],
        envelope_id: str | None = None,
        accepts_response_payload: bool = True,
        *,
        timeout: float = 3.0,
    ) -> str:
        """Send a Socket Mode envelope to the newest connection (waiting for one); its envelope_id.

        ``type_``: ``"slash_commands"``, ``"interactive"`` or ``"events_api"``.
        """
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        self._ws_send(self._current_connection(timeout), envelope)
        return envelope_id

    def send_raw(self, message: dict[str, Any], *, timeout: float = 3.0) -> None:
        """Send any JSON message to the newest Socket Mode connection."""
        self._ws_send(self._current_connection(timeout), message)

    def send_disconnect(self, reason: str = "refresh_requested", *, timeout: float = 3.0) -> None:
        """Ask the client to reconnect, as Slack does before it rotates a connection."""
        self.send_raw({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}, timeout=timeout)

    def close_connections(self, code: int = 1001, reason: str = "") -> None:
        """Close every Socket Mode connection (the client may reconnect through apps.connections.open)."""
        for connection in self._open_connections():
            connection.close(code, reason)


def close_socket_mode_client(client: Any) -> None:
    """``client.close()`` for slack_sdk's builtin SocketModeClient, minus its wait of up to 1 s.

    Its message loop polls ``client.message_queue`` with a 1 s timeout; ``None`` items, which it skips,
    wake it up so that it sees it is closed. It also closes a session that a reconnect racing with
    close() left open (slack_sdk leaks that socket). Works as well for ``SocketModeHandler(...).client``.
    """
    closer = threading.Thread(target=client.close, name="close-socket-mode-client")
    closer.start()
    queue = getattr(client, "message_queue", None)
    while closer.is_alive():
        if queue is not None:
            queue.put(None)
        closer.join(0.02)
    # A reconnect that was in flight during close() (its threads are joined by now) may have installed
    # a new session after close() disconnected the old one: close that one too.
    session = getattr(client, "current_session", None)
    if session is not None and session.is_active():
        session.close()


# ---------------------------------------------------------------------------------------------------
# payloads


def slash_command_payload(
    text: str,
    *,
    command: str = "/wes",
    user_id: str = "U123",
    user_name: str = "alice",
    channel_id: str = "C123",
    channel_name: str = "general",
    team_id: str = TEAM_ID,
    team_domain: str = "fake-team",
    response_url: str = UNREACHABLE_RESPONSE_URL,
    trigger_id: str | None = None,
    api_app_id: str = APP_ID,
    token: str = "verification-token",
) -> dict[str, str]:
    """The form fields Slack sends for a slash command (also the payload of a slash_commands envelope)."""
    return {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or f"{int(time.time())}.{uuid.uuid4().hex[:12]}",
    }


def block_actions_payload(
    action_id: str,
    value: str,
    *,
    user_id: str = "U123",
    user_name: str = "alice",
    channel_id: str = "C123",
    channel_name: str = "general",
    response_url: str = UNREACHABLE_RESPONSE_URL,
    block_id: str = "actions",
    message_ts: str = "1700000000.000100",
    message: dict[str, Any] | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    token: str = "verification-token",
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """An interactive ``block_actions`` payload: one button click with ``action_id`` and ``value``."""
    action_ts = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or f"{int(time.time())}.{uuid.uuid4().hex[:12]}",
        "team": {"id": team_id, "domain": "fake-team"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": message or {"type": "message", "user": "UBOT", "ts": message_ts, "text": "", "bot_id": "BBOT"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": action_ts,
            }
        ],
    }


def events_api_payload(
    event: dict[str, Any],
    *,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    event_id: str | None = None,
    token: str = "verification-token",
) -> dict[str, Any]:
    """An ``event_callback`` body (HTTP) / ``events_api`` envelope payload wrapping ``event``."""
    return {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": "UBOT", "is_bot": True, "is_enterprise_install": False}],
    }


def form_body(payload: Mapping[str, Any]) -> bytes:
    """The urlencoded HTTP body Slack sends: the fields of a slash command, or, for an interactive
    payload (one with a "type" and no "command"), ``payload=<json>``."""
    if "type" in payload and "command" not in payload:
        return urlencode({"payload": json.dumps(payload)}).encode("utf-8")
    return urlencode({key: str(value) for key, value in payload.items()}).encode("utf-8")


def signed_request_headers(
    body: bytes,
    signing_secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    *,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """Headers that make ``body`` pass Bolt's request verification with ``signing_secret``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {
        "X-Slack-Signature": signature,
        "X-Slack-Request-Timestamp": stamp,
        "Content-Type": content_type,
    }
