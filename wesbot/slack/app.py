"""The Bolt app: ``/wes`` and its buttons, wired to the command core.

Every listener is split in two, the way Bolt's lazy listeners are meant to be used:
- the *ack* part runs in the request's own thread, touches nothing slow, and answers Slack at once
  (help and usage mistakes are answered right in the ack);
- the *lazy* part runs on wesbot's lookup pool, calls WES, and answers through ``respond``
  (the response_url), so a slow WES server can never delay the acknowledgement of another request.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltResponse, Respond
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient

from .. import observe
from ..cancel import confirm as confirm_cancel
from ..commands import SUBCOMMANDS, Command, UsageError, parse
from ..config import Settings
from ..core import execute, list_servers
from ..results import ErrorResult, Result, TimelineResult
from ..runtimeline import filename
from ..servers import UnknownServer
from ..store.health import describe_storage_error
from .blocks import (
    ACTION_CANCEL,
    ACTION_KEEP,
    ACTION_PAGE,
    ACTION_RUN,
    ACTION_SHARE,
    Message,
    code,
    error_message,
    help_message,
    pin_server,
)
from .cards import ACTION_OPEN, cancel_announcement
from .deps import Deps, ServerDeps
from .files import Uploaded, refusal, upload_png
from .gate import response_url_allowed
from .home import HOME_ACTIONS, HOME_EVENT, HomeListeners
from .owners import resolve_owners
from .replies import cancel_message, merge, render
from .unfurl import listeners as unfurl_listeners

logger = logging.getLogger("wesbot.slack")

SLASH_COMMAND = "/wes"
# Kept in one place so that a test can check that every command in manifest.yml has a listener.
COMMANDS = (SLASH_COMMAND,)
ACTIONS = (ACTION_RUN, ACTION_PAGE, ACTION_SHARE)
# Every action id wesbot's messages carry (the cancel buttons have their own listeners).
ALL_ACTIONS = (*ACTIONS, ACTION_CANCEL, ACTION_KEEP, ACTION_OPEN)
# Set in a request's context once it passed verification and the response_url check.
CHECKED = "wesbot_checked"


def new_error_id() -> str:
    return uuid.uuid4().hex[:8]


def storage_apology(error: BaseException, db_path: str | None, error_id: str) -> str | None:
    """What to say instead of "something went wrong" when ``error`` is a storage fault: the user (often the
    operator) can act on "the disk is full"; None for any other error."""
    sentence = describe_storage_error(error, db_path)
    return None if sentence is None else f"{sentence} (error id {error_id})"


def _sorry(error: BaseException, db_path: str | None, error_id: str) -> str:
    return (storage_apology(error, db_path, error_id) or f"Sorry, something went wrong (error id {error_id})") + "."


def _looking_up(command: Command) -> str:
    if command.run_id:
        return f"Looking up run {code(command.run_id, 80)}…"
    return "Asking the WES server…"


class _SlowNotice:
    """Shows an interim "Looking up…" message when the answer takes longer than ``after`` seconds."""

    def __init__(self, send: Callable[[], None], after: float) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._done = False
        self.shown = False
        self._timer = threading.Timer(after, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            try:
                self._send()
                self.shown = True
            except Exception:  # a failed interim message must not hide the real answer
                logger.warning("could not send the interim message", exc_info=True)

    def finish(self) -> bool:
        """Stop the timer; True when the interim message was shown (so the answer should replace it)."""
        self._timer.cancel()
        with self._lock:
            self._done = True
            return self.shown


def _safe_respond(respond: Respond, **kwargs: Any) -> None:
    """respond() that logs a failure (never the response_url, which is a credential) instead of raising."""
    try:
        response = respond(**kwargs)
        status = getattr(response, "status_code", 200)
        if status >= 400:
            logger.warning("Slack refused the reply (HTTP %s): %s", status, str(getattr(response, "body", ""))[:200])
    except Exception as error:
        logger.warning("could not send the reply to Slack: %s", type(error).__name__)


def answer(
    deps: Deps,
    command: Command,
    respond: Respond,
    *,
    user_id: str | None,
    channel_id: str | None = None,
    replace: bool = False,
    client: WebClient | None = None,
) -> Result:
    """Run ``command`` against the WES server it goes to and answer through ``respond``. Never raises.
    ``client`` (Bolt's) uploads what is a file: a shared ``/wes timeline``'s picture."""
    started = time.monotonic()

    def interim() -> None:
        respond(text=_looking_up(command), response_type="ephemeral", replace_original=replace)

    notice = _SlowNotice(interim, deps.slow_notice_after)
    host = deps.first.host
    try:
        answers = _run(deps, command, user_id=user_id, channel_id=channel_id)
        result, server = answers[0]
        host = server.host if server else host
        share = command.share and all(r.shareable for r, _ in answers)
        message = merge([_message(deps, r, s, shared_by=user_id if share else None) for r, s in answers],
                        [deps.label(s) if s else "" for _, s in answers])
        message = resolve_owners(message, deps.owners)  # a report names who started its runs
        picture = result if share and isinstance(result, TimelineResult) and len(answers) == 1 else None
    except Exception as error:
        # A bug in wesbot or a storage fault, not a user's or a server's doing: the traceback goes to the log,
        # with an id the user can quote; the user gets the id, and for a storage fault what is wrong.
        error_id = new_error_id()
        logger.exception("error %s while running %r", error_id, command.name)
        result = ErrorResult(
            command=command,
            kind="internal",
            message=storage_apology(error, deps.db_path, error_id)
            or f"sorry, something went wrong on wesbot's side (error id {error_id}); its log has the details",
        )
        share, picture = False, None
        message = render(result, host=host)
    shown = notice.finish()
    if picture is not None:
        result = _post_picture(client, picture, message, channel_id, respond, replace=shown or replace)
    elif share or result.announce:
        # Shared answers, and what changes what the whole channel hears (a watch, its default server).
        _safe_respond(respond, response_type="in_channel", replace_original=False, **message)
        if shown or replace:
            _safe_respond(respond, delete_original=True)
    else:
        _safe_respond(respond, response_type="ephemeral", replace_original=shown or replace, **message)
    observe.command(user_id, channel_id, command.name, host, _outcome(result), time.monotonic() - started)
    return result


def _post_picture(client: WebClient | None, result: TimelineResult, message: Message, channel_id: str | None,
                  respond: Respond, *, replace: bool) -> Result:
    """A shared ``/wes timeline`` (``--share``, or its "Post the picture" button): the picture goes to the channel
    with the answer's text as its comment (a file cannot be shown to one person). When Slack refuses, whoever asked
    is told why and what to do, to them alone; the result is then that error."""
    if client is None or not channel_id:
        uploaded = Uploaded(ok=False, error="no_client")
    else:
        uploaded = upload_png(client, channel_id, None, filename(result.run.run_id), result.picture.png,
                              str(message.get("text") or ""), title=f"Timeline of run {result.run.run_id[:200]}")
    if uploaded.ok:
        if replace:
            _safe_respond(respond, delete_original=True)  # the "Looking up…" notice
        return result
    sentence = refusal(uploaded.error)
    logger.info("could not post the timeline of %s in %s: %s", result.run.run_id, channel_id, uploaded.error)
    _safe_respond(respond, response_type="ephemeral", replace_original=replace, **error_message(sentence + "."))
    return ErrorResult(command=result.command, kind="slack", message=sentence)


def _run(deps: Deps, command: Command, *, user_id: str | None,
         channel_id: str | None) -> list[tuple[Result, ServerDeps | None]]:
    """The result of ``command`` and the server that gave it (None: no one server did); one per server for
    a command about every server (the channel's subscriptions, the audit trail) when none is named."""
    try:
        if command.name == "use":
            return [(deps.use(command, channel_id, user_id), None)]
        if command.name == "servers":
            listed = list_servers(command, deps.entries(channel_id))
            return [(dataclasses.replace(listed, held=list(deps.held)), None)]
        server, question = deps.route(command, channel_id)
    except UnknownServer as error:
        return [(ErrorResult(command=command, kind="usage", message=str(error),
                             usage="Usage: /wes SUBCOMMAND ... --server NAME (see /wes servers)"), None)]
    if question is not None:
        return [(question, None)]
    chosen = [server] if server is not None else list(deps.servers)
    return [(_execute_on(deps, s, command, user_id=user_id, channel_id=channel_id), s) for s in chosen]


def _execute_on(deps: Deps, server: ServerDeps, command: Command, *, user_id: str | None,
                channel_id: str | None) -> Result:
    if deps.several:
        command = dataclasses.replace(command, server=server.name)
    return execute(command, server.wes, deps.context(server, channel_id, user_id), server.logs)


def _message(deps: Deps, result: Result, server: ServerDeps | None, *, shared_by: str | None) -> Message:
    """The rendered answer; with several servers, naming its server, and its buttons bound to it."""
    if server is None:
        return render(result, host="", shared_by=shared_by)
    message: Message = render(result, host=deps.label(server), shared_by=shared_by, run_url=server.run_url)
    return pin_server(message, server.name) if deps.several else message


def _outcome(result: Result) -> str:
    """How a command ended, for its log line and metrics: ok, or the error's kind (usage, wes, internal)."""
    return "ok" if result.ok else str(getattr(result, "kind", "error"))


_WORDS = {word: sub.name for sub in SUBCOMMANDS for word in (sub.name, *sub.aliases)}


def _command_word(text: str) -> str:
    """The subcommand a text names, for metrics (a known name, never what was typed): else ``unknown``."""
    words = text.split()
    return _WORDS.get(words[0].lower(), "unknown") if words else "help"


def register(app: App, deps: Deps) -> None:
    """Register the ``/wes`` command, its buttons and the global error handler on ``app``."""
    listeners = _Listeners(deps)
    app.middleware(listeners.only_slack_response_urls)
    app.command(SLASH_COMMAND)(ack=listeners.ack_command, lazy=[listeners.run_command])
    app.action(ACTION_CANCEL)(ack=_ack_action, lazy=[listeners.run_cancel])
    app.action(ACTION_KEEP)(ack=_ack_action, lazy=[_run_keep])
    # The Open button is a link; Slack still sends its click, which only needs acknowledging.
    app.action(ACTION_OPEN)(_ack_action)
    for action_id in ACTIONS:
        # wes_run buttons carry the subcommand in their action_id (wes_run:details); the others are exact.
        # A "which server?" question's buttons add the server (wes_run:status:prod): unique in their block.
        matcher = re.compile(rf"^{re.escape(action_id)}(:[a-z]+(:[a-z0-9-]+)?)?$")
        app.action(matcher)(ack=_ack_action, lazy=[listeners.action_runner(action_id)])
    app.event("link_shared")(**unfurl_listeners(deps))  # run links unfurl (slack.unfurl)
    home = HomeListeners.for_deps(deps, app.client)  # the App Home tab (slack.home)
    app.event(HOME_EVENT)(ack=_ack_action, lazy=[home.run_home_opened])
    app.action(HOME_ACTIONS)(ack=_ack_action, lazy=[home.run_home_action])
    app.error(listeners.on_error)


def _reply(respond: Respond, message: Message) -> None:
    """An ephemeral answer below the message the user clicked, which stays as it was."""
    _safe_respond(respond, response_type="ephemeral", replace_original=False, **message)


def _invalid_button(respond: Respond, error: UsageError) -> None:
    _reply(respond, error_message("That button is no longer valid: " + error.message + "."))


def _channel_of(body: dict[str, Any]) -> str | None:
    """The channel a button was clicked in: a message's, else (in an ephemeral message) the container's."""
    channel_id: str | None = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return channel_id


def _ack_action(ack: Ack) -> None:
    """Every button is acknowledged at once with nothing; its lazy part answers through respond."""
    ack()


def _run_keep(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
    """The "Keep it running" button: the confirmation goes away, nothing else happens."""
    _safe_respond(respond, delete_original=True)


class _Listeners:
    """The listeners that need :class:`Deps`, as methods of one object holding them.

    Bolt injects the arguments each method names and skips ``self``; each ``ack_*`` only parses and
    acknowledges, and each ``run_*`` is registered as a lazy listener, so WES is only called off the request
    thread."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def only_slack_response_urls(self, body: dict[str, Any], context: dict[str, Any],
                                 next: Callable[[], BoltResponse]) -> BoltResponse:
        """Runs after Bolt's signature check: a response_url that is not Slack's is refused, never answered."""
        urls = [body.get("response_url")] if isinstance(body, dict) and "response_url" in body else []
        if not all(response_url_allowed(url, self.deps.response_origins) for url in urls):
            logger.warning("refused a payload whose response_url is not on Slack's hooks host")
            return BoltResponse(status=400, body="")
        context[CHECKED] = True
        return next()

    def ack_command(self, ack: Ack, command: dict[str, Any]) -> None:
        """Help and usage mistakes need no WES call, so they are answered right in the ack."""
        started = time.monotonic()
        text = command.get("text") or ""
        try:
            parsed = parse(text)
        except UsageError as error:
            # The same sentence as any other usage mistake (replies' one rule: capital first, one full stop).
            ack(response_type="ephemeral", **render(ErrorResult(command=None, message=error.message,
                                                                usage=error.usage, kind="usage"), host=""))
            self._observe_ack(command, _command_word(text), "usage", started)
            return
        if parsed.name == "help":
            ack(response_type="ephemeral", **help_message(parsed.topic))
            self._observe_ack(command, "help", "ok", started)
            return
        ack()

    def _observe_ack(self, command: dict[str, Any], name: str, outcome: str, started: float) -> None:
        observe.command(command.get("user_id"), command.get("channel_id"), name, self.deps.first.host, outcome,
                        time.monotonic() - started)

    def run_command(self, command: dict[str, Any], respond: Respond, client: WebClient | None = None) -> None:
        try:
            parsed = parse(command.get("text") or "")
        except UsageError:
            return  # answered in the ack
        if parsed.name == "help":
            return
        answer(self.deps, parsed, respond, user_id=command.get("user_id"), channel_id=command.get("channel_id"),
               client=client)

    def action_runner(self, action_id: str) -> Callable[..., None]:
        """The lazy listener of the ``action_id`` buttons, named after them (Bolt finds a lazy listener by name)."""

        def run_action(body: dict[str, Any], action: dict[str, Any], respond: Respond,
                       client: WebClient | None = None) -> None:
            self.run_action(action_id, body, action, respond, client)

        run_action.__name__ = f"run_{action_id}"
        return run_action

    def run_action(self, action_id: str, body: dict[str, Any], action: dict[str, Any], respond: Respond,
                   client: WebClient | None = None) -> None:
        """A lookup button. Its value is untrusted: it goes through the same parser as typed text."""
        try:
            parsed = parse(str(action.get("value") or ""))
        except UsageError as error:
            _invalid_button(respond, error)
            return
        if parsed.name == "help":
            _reply(respond, help_message(parsed.topic))
            return
        if action_id == ACTION_SHARE:
            parsed = dataclasses.replace(parsed, share=True)
        answer(self.deps, parsed, respond, user_id=(body.get("user") or {}).get("id"), channel_id=_channel_of(body),
               replace=action_id == ACTION_PAGE, client=client)

    def run_cancel(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        """The red "Cancel run" button: everything is checked again now, from who clicked, not from the button."""
        deps = self.deps
        started = time.monotonic()
        user_id = str((body.get("user") or {}).get("id") or "")
        channel_id = _channel_of(body)
        try:
            parsed = parse(str(action.get("value") or ""))
        except UsageError as error:
            _invalid_button(respond, error)
            return
        server = deps.server(parsed.server) if parsed.server else (None if deps.several else deps.first)
        if (parsed.name != "cancel" or parsed.run_id is None or server is None or server.cancels is None
                or server.cancelers is None):
            _reply(respond, error_message("That button is no longer valid."))
            return
        try:
            view = confirm_cancel(
                server.wes, run_id=parsed.run_id, user_id=user_id, channel_id=channel_id, cancelers=server.cancelers,
                store=server.cancels, now=time.time(), timeout=deps.cancel_timeout,
                response_url=body.get("response_url"),
                announce=self._announcer(channel_id, user_id, parsed.run_id, server))
        except Exception as error:
            error_id = new_error_id()
            logger.exception("error %s while cancelling", error_id)
            _reply(respond, error_message(_sorry(error, deps.db_path, error_id)))
            observe.cancel(user_id, channel_id, parsed.run_id, "internal", server=server.host,
                           seconds=time.monotonic() - started)
            return
        if server.wake is not None:
            server.wake()  # the watcher follows the cancel from now on
        message = cancel_message(view)
        _safe_respond(respond, response_type="ephemeral", replace_original=True,
                      **(pin_server(message, server.name) if deps.several else message))
        observe.cancel(user_id, channel_id, parsed.run_id, view.stage, server=server.host,
                       seconds=time.monotonic() - started)

    def _announcer(
        self, channel_id: str | None, user_id: str, run_id: str, server: ServerDeps
    ) -> Callable[[str], tuple[str | None, str | None]]:
        """How the cancel tells the channel who cancelled: ``announce(state_before) -> (ts, error)``."""

        def announce(state_before: str) -> tuple[str | None, str | None]:
            if self.deps.poster is None or not channel_id:
                return None, "no channel"
            where = server.name if self.deps.several else None
            # In the run's card thread when the channel watches it: one thread per run, not another post.
            card = server.store.subscriptions.card_of(run_id, channel_id) if server.store is not None else None
            result = self.deps.poster.post(channel_id, cancel_announcement(user_id, run_id, state_before, server=where),
                                           thread_ts=card)
            return (result.ts, None) if result.ok else (None, result.error or "error")

        return announce

    def on_error(self, error: Exception, body: dict[str, Any], context: dict[str, Any],
                 respond: Respond | None = None) -> BoltResponse | None:
        error_id = new_error_id()
        logger.error("error %s in a Slack listener", error_id, exc_info=error)
        # Only a request that passed verification and the response_url check is ever answered.
        if respond is not None and context.get(CHECKED) and isinstance(body, dict) and body.get("response_url"):
            _reply(respond, error_message(_sorry(error, self.deps.db_path, error_id)))
        return None


class _DropTokenNotice(logging.Filter):
    """Drops Bolt's "As you gave `client` as well, `token` will be unused." and nothing else.

    App(client=...) is the only way to give Bolt a WebClient on SLACK_API_URL, but Bolt also reads
    SLACK_BOT_TOKEN from the environment by itself, and warns on every start that this token (the very one
    the client carries) goes unused. No construction avoids that while the variable is set."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_TOKEN_NOTICE = _DropTokenNotice()


def build_app(settings: Settings, deps: Deps, *, http_mode: bool) -> App:
    """The Bolt app for ``settings``. It calls Slack's ``auth.test`` once to check the bot token."""
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    bolt_logger = logging.getLogger("wesbot.bolt")
    bolt_logger.addFilter(_TOKEN_NOTICE)  # once: addFilter ignores a filter already there
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=http_mode,
        process_before_response=True,
        listener_executor=deps.pool,
        logger=bolt_logger,
    )
    register(app, deps)
    return app
