"""The ``wesbot`` command: ``serve`` runs the bot, ``ask`` runs one /wes command on the terminal."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import os
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from http.client import HTTPException
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__, metrics
from .assemble import ServerParts, build_servers, held_lines, log_fetcher, report_held, wes_client
from .cancel import Cancelers
from .causes import causes
from .commands import UsageError, parse
from .config import DEFAULT_DB, ConfigError, Settings, environment, load_settings, parse_metrics_port
from .core import ServerEntry, run_text
from .logsetup import LOG_LEVELS, library_lines_dropped, setup_logging
from .logsetup import RedactSecrets as RedactSecrets  # re-exported: it lived here before logsetup.py
from .results import Result, ServersResult, TimelineResult
from .runtimeline import filename
from .servers import ServerConfig, UnknownServer
from .slack.poster import REFUSED_TOKEN_ERRORS, SlackPoster
from .store.health import StorageHealth, describe_storage_error
from .textview import render_text
from .watcher import Fleet

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from .slack.deps import Deps

logger = logging.getLogger("wesbot")

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and failed (WES error, unknown run, usage mistake)
EXIT_CONFIG = 2  # settings missing or malformed, or bad command-line arguments

# Lookups run on this many threads; more wait in a queue. Acks never wait for them.
LOOKUP_THREADS = 32
# SIGTERM: the watcher finishes its current step (posts in flight) within this, or they stay in the outbox.
WATCHER_JOIN_SECONDS = 2.0



def _settings(args: argparse.Namespace, *, need_slack: bool = False, http_mode: bool = False,
              need_app: bool = True) -> Settings:
    try:
        return load_settings(environment(), need_slack=need_slack, http_mode=http_mode, need_app=need_app)
    except ConfigError as error:
        if len(error.problems) == 1:
            _fail(f"cannot start: {error.problems[0]}")
        print("wesbot: cannot start, the configuration has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _chosen_server(settings: Settings, name: str | None) -> ServerConfig:
    """``--server NAME``'s server (one line and exit 2 for an unknown name); the only one without a name.
    With several and none named, wesbot does not guess: a run id may exist on more than one server, and asking
    each is not safe (the reference server creates a run for any id it is asked the status of)."""
    if name is None:
        if len(settings.servers) > 1:
            names = ", ".join(sorted(server.name for server in settings.servers))
            _fail(f"several WES servers are configured ({names}): name one with --server NAME")
        return settings.servers[0]
    try:
        return settings.server(name)
    except UnknownServer as error:
        _fail(str(error))


def _fail(sentence: str, secrets: Sequence[str] = ()) -> NoReturn:
    """Stop start-up with one line on stderr (never a traceback) and exit code 2."""
    print(f"wesbot: {RedactSecrets(secrets).redact(sentence)}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def _port(raw: str, name: str) -> int:
    """A TCP port from ``--port`` or ``$PORT``, checked before anything connects."""
    port = int(raw) if raw.strip().isdigit() else 0
    if not 1 <= port <= 65535:
        _fail(f"{name} must be a port number from 1 to 65535 (got {raw[:20]!r})")
    return port


def _http_port(args: argparse.Namespace, http_mode: bool) -> int | None:
    """The port to serve HTTP on (``--port``, else ``$PORT``, else 3000); None in Socket Mode."""
    port = _port(args.port, "--port") if args.port is not None else None
    if not http_mode:
        return None
    return port if port is not None else _port(os.environ.get("PORT") or "3000", "PORT")


def _listen_problem(error: OSError, host: str, port: int) -> str:
    if isinstance(error, socket.gaierror):
        return f"cannot listen on --host {host[:100]!r}: that name does not resolve; use an address of this machine"
    if error.errno == errno.EADDRINUSE:
        return (f"port {port} is already in use on {host}: stop what holds it (`ss -ltnp 'sport = :{port}'` shows "
                "it; another wesbot?), or choose another port with --port or $PORT")
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed to listen on port {port}: ports below 1024 need privileges; choose one from 1024 up"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}:{port}: {host} is not an address of this machine; check --host"
    return f"cannot listen on {host}:{port} ({error.strerror or type(error).__name__})"


def _check_listen(host: str, port: int) -> None:
    """Bind the HTTP port once, before connecting anywhere, so that a port in use is one line now rather than a
    traceback after Slack and the watcher have started (waitress binds it again the same way)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        _fail(_listen_problem(error, host, port))


# Slack's answers that mean the token itself is wrong, not the network or the server.
_TOKEN_FIXES = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token (xoxb-...) again from OAuth & Permissions at api.slack.com/apps",
    "SLACK_APP_TOKEN": "copy an app-level token (xapp-..., scope connections:write) from Basic Information at "
                       "api.slack.com/apps",
}


def _network_reason(chain: list[BaseException]) -> str | None:
    """Why a connection failed, in a few words; None when no error in ``chain`` is a network one."""
    import ssl

    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, socket.gaierror):
            return "its host name does not resolve"
        if isinstance(error, TimeoutError):
            return "timed out"
        if isinstance(error, ssl.SSLCertVerificationError):
            return "its TLS certificate is not trusted"
        if isinstance(error, ssl.SSLError):
            return "TLS failed"
    network = next((e for e in chain if isinstance(e, OSError | HTTPException)), None)
    if network is None:
        return None
    return getattr(network, "strerror", None) or type(network).__name__


def _slack_problem(error: BaseException, *, api_url: str, token_name: str, call: str) -> str:
    """One sentence for a Slack call that failed at start-up: Bolt's auth.test, or Socket Mode's
    apps.connections.open. Only Slack's error code is shown, never its body."""
    chain = causes(error)
    response = next((r for r in (getattr(e, "response", None) for e in chain) if r is not None), None)
    if response is not None:
        data = getattr(response, "data", None)
        code = str(data.get("error") or "") if isinstance(data, dict) else ""
        status = getattr(response, "status_code", None)
        if code in REFUSED_TOKEN_ERRORS:
            return f"Slack did not accept {token_name} ({code}): {_TOKEN_FIXES[token_name]}"
        if code.startswith("Received a response in a non-JSON format"):
            return (f"SLACK_API_URL {api_url} answered {call} with HTTP {status} and no JSON: it is not Slack's Web "
                    "API (unset SLACK_API_URL for Slack's own)")
        return f"Slack refused {call} ({code or f'HTTP {status}'}); try again in a minute"
    reason = _network_reason(chain)
    if reason is not None:
        return f"Slack at {api_url} could not be reached ({reason}): check SLACK_API_URL, the network and any proxy"
    return f"Slack could not be set up ({type(error).__name__}: {str(error)[:200]})"


@contextmanager
def _slack_start_errors(settings: Settings, token_name: str, call: str) -> Iterator[None]:
    """Turn a Slack call failing at start-up into one line and exit code 2."""
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackClientError

    try:
        yield
    except (BoltError, SlackClientError, OSError, HTTPException) as error:
        _fail(_slack_problem(error, api_url=settings.slack_api_url, token_name=token_name, call=call),
              settings.secrets())


def _asks_for_servers(text: str) -> bool:
    try:
        return parse(text).name == "servers"
    except UsageError:
        return False


def _ask_servers(args: argparse.Namespace, settings: Settings, text: str) -> int:
    """``wesbot ask servers``: every configured server, one client each; the default is ``--server NAME``'s,
    or the only one."""
    chosen = _chosen_server(settings, args.server) if args.server or len(settings.servers) == 1 else None
    setup_logging(settings, args.log_level, default="warning")
    with ExitStack() as stack:
        clients = [stack.enter_context(wes_client(settings, server)) for server in settings.servers]
        entries = [ServerEntry(name=server.name, wes=client, is_default=server is chosen)
                   for server, client in zip(settings.servers, clients, strict=True)]
        result = run_text(text, clients[0], servers=entries)
    if isinstance(result, ServersResult):
        result = dataclasses.replace(result, held=held_lines(settings))
    _print(args, result, host=clients[0].host)
    return EXIT_OK if result.ok else EXIT_FAILED


def _print(args: argparse.Namespace, result: Result, *, host: str) -> None:
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(result, host=host), file=sys.stdout if result.ok else sys.stderr)


def _subcommand(text: str) -> str | None:
    """The subcommand ``text`` names; None when it is a usage mistake (answered by running it)."""
    try:
        return parse(text).name
    except UsageError:
        return None


def _write_picture(args: argparse.Namespace, result: TimelineResult) -> int:
    """``ask timeline --out FILE.png``: the picture, written to the file (never over a directory); without
    ``--out``, a hint that it writes it. A file that cannot be written is one line and exit 1."""
    if args.out is None:
        if not args.json:
            print("(add --out FILE.png to write the picture)")
        return EXIT_OK
    path = Path(args.out).expanduser()
    if path.is_dir():
        print(f"wesbot: {args.out} is a directory: name the file, e.g. --out {path / filename(result.run.run_id)}",
              file=sys.stderr)
        return EXIT_FAILED
    picture = result.picture
    try:
        path.write_bytes(picture.png)
    except OSError as error:
        print(f"wesbot: could not write the picture to {args.out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {args.out} ({picture.width}x{picture.height} px, {picture.bars} bars)", file=sys.stderr)
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    settings = _settings(args)
    text = " ".join(args.text)
    if args.out is not None and _subcommand(text) not in (None, "timeline"):
        print("wesbot: --out FILE.png is for `wesbot ask timeline RUN_ID`: no other command draws a picture",
              file=sys.stderr)
        return EXIT_FAILED
    if _asks_for_servers(text):
        return _ask_servers(args, settings, text)
    setup_logging(settings, args.log_level, default="warning")
    server = _ask_server(settings, args.server, text)
    with wes_client(settings, server) as wes, log_fetcher(settings, server) as logs:
        result = run_text(text, wes, logs=logs)
        _print(args, result, host=wes.host if len(settings.servers) == 1 else f"{server.name} ({wes.host})")
    if isinstance(result, TimelineResult):
        return _write_picture(args, result)
    return EXIT_OK if result.ok else EXIT_FAILED


def _ask_server(settings: Settings, name: str | None, text: str) -> ServerConfig:
    """The server ``wesbot ask`` goes to: ``--server NAME`` (before the command or in it), the only one, else
    the one server whose run list shows the command's run (read from GET /runs only, as in Slack)."""
    try:
        command = parse(text)
    except UsageError:
        return _chosen_server(settings, name or settings.servers[0].name)  # the usage mistake is answered there
    name = name or command.server
    if name is not None or len(settings.servers) == 1 or not command.run_id:
        return _chosen_server(settings, name)
    from .routing import locate

    with ExitStack() as stack:
        clients = {server.name: stack.enter_context(wes_client(settings, server)) for server in settings.servers}
        located = locate(command.run_id, clients)
    if len(located.found) == 1:
        return settings.server(located.found[0])
    where = (f"run {command.run_id[:80]} is listed by {', '.join(located.found)}" if located.found
             else f"run {command.run_id[:80]} is not in the recent runs of any server")
    unread = f" (could not read {', '.join(located.unreadable)})" if located.unreadable else ""
    _fail(f"{where}{unread}: name one with --server NAME ({', '.join(s.name for s in settings.servers)})")


def cmd_serve(args: argparse.Namespace) -> int:
    http_mode = bool(args.http)
    settings = _settings(args, need_slack=True, http_mode=http_mode)
    http_mode = http_mode or not settings.socket_mode
    port = _http_port(args, http_mode)
    setup_logging(settings, args.log_level, default="info")
    if port is not None:
        _check_listen(args.host, port)
    from .check import preflight

    if not preflight(settings):  # `wesbot check`'s items, before connecting: one line per fatal problem
        return EXIT_CONFIG
    _serve_metrics(args, settings)

    from .server import serve_http, serve_socket_mode
    from .slack.app import build_app
    from .slack.home import EndedRuns, HomePublisher
    from .store import open_db

    open_db(settings.db_path).close()
    # Built right after the open: it remembers which file that was, to notice one deleted or replaced later.
    storage = StorageHealth(settings.db_path)
    pool = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="wesbot-lookup")
    poster = slack_poster(settings)  # thread-safe: the watchers' senders and the cancel clicks share it
    stop = threading.Event()
    with ExitStack() as resources:
        resources.callback(poster.close)
        ended = EndedRuns()  # whose runs ended, from the watchers' delivery: their Home tabs are refreshed
        parts = build_servers(settings, poster, stop, resources, watch=not args.no_watcher, on_ended=ended)
        held = report_held(settings)
        metrics.current().track_stores([(part.store, part.watches, part.wes.host) for part in parts])
        deps = _slack_deps(settings, parts, pool, poster)
        deps.held = [row.describe() for row in held]
        deps.home = ended.home = HomePublisher.for_deps(deps, slack_client(settings))
        # Bolt checks the bot token with auth.test; a failure is one line, without slack_sdk's own line per try.
        with _slack_start_errors(settings, "SLACK_BOT_TOKEN", "auth.test"), library_lines_dropped("slack_sdk"):
            app = build_app(settings, deps, http_mode=http_mode)
        fleet = Fleet([part.watcher for part in parts if part.watcher is not None], stop)
        fleet.start()  # SIGTERM sets ``stop``: the watchers stop between steps, with the server
        try:
            if http_mode:
                assert port is not None
                serve_http(app, pool, host=args.host, port=port, stop=stop,
                           signing_secret=settings.slack_signing_secret or "", problems=storage.check)
            else:
                assert settings.slack_app_token is not None
                with _slack_start_errors(settings, "SLACK_APP_TOKEN", "apps.connections.open"):
                    serve_socket_mode(app, pool, app_token=settings.slack_app_token, stop=stop)
        finally:
            stop.set()
            fleet.join(WATCHER_JOIN_SECONDS)
    return EXIT_OK


def _slack_deps(settings: Settings, parts: list[ServerParts], pool: ThreadPoolExecutor, poster: SlackPoster) -> Deps:
    """What the Slack listeners need: each server's parts, and what they share."""
    from .slack.deps import Deps, ServerDeps
    from .slack.gate import response_origins
    from .slack.owners import OwnerDirectory
    from .store.servers import ChannelServers

    client = slack_client(settings)

    def resolve_group(group: str) -> list[str]:
        return list(client.usergroups_users_list(usergroup=group).get("users") or [])

    servers = [ServerDeps(name=part.config.name, wes=part.wes, host=part.wes.host, store=part.store, logs=part.logs,
                          cancels=part.cancels, watches=part.watches, wake=part.wake, run_url=part.config.run_url,
                          cancelers=Cancelers(part.config.cancelers, resolve_group=resolve_group),
                          owner_tag=part.config.owner_tag)
               for part in parts]
    return Deps(servers=servers, pool=pool, subscription_days=settings.subscription_days,
                cancel_timeout=settings.cancel_timeout, poster=poster,
                response_origins=response_origins(settings.slack_api_url), db_path=settings.db_path,
                channel_servers=ChannelServers(parts[0].store),
                owners=OwnerDirectory(poster.user_by_email) if any(p.config.owner_tag for p in parts) else None,
                config_channels={channel: s.name for s in settings.servers for channel in s.channels})


def slack_client(settings: Settings) -> WebClient:
    from slack_sdk import WebClient

    return WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)


def slack_poster(settings: Settings) -> SlackPoster:
    assert settings.slack_bot_token is not None
    return SlackPoster(settings.slack_bot_token, settings.slack_api_url)


def _metrics_port(value: str) -> tuple[str, int] | None:
    try:
        return parse_metrics_port(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _serve_metrics(args: argparse.Namespace, settings: Settings) -> None:
    """GET /metrics on ``--metrics-port`` (else $WESBOT_METRICS_PORT), if either is set; a port that cannot be
    bound stops start-up with one line."""
    listen = args.metrics_port or settings.metrics_listen
    if listen is None:
        return
    host, port = listen
    try:
        metrics.start_server(host, port)
    except OSError as error:
        _fail(f"cannot serve metrics on {host}:{port} ({error.strerror or type(error).__name__}): choose another "
              "port with --metrics-port or $WESBOT_METRICS_PORT")
    logger.info("metrics on http://%s:%d/metrics", host, port)


def cmd_watch(args: argparse.Namespace) -> int:
    settings = _settings(args, need_slack=True, need_app=False)
    setup_logging(settings, args.log_level, default="info")
    _serve_metrics(args, settings)
    from .server import install_stop_handlers
    from .slack.home import EndedRuns, HomePublisher
    from .store import open_db

    open_db(settings.db_path).close()
    stop = threading.Event()
    with ExitStack() as resources, slack_poster(settings) as poster:
        ended = EndedRuns()  # whose runs ended: their Home tabs are refreshed (from the store only)
        parts = build_servers(settings, poster, stop, resources, on_ended=ended)
        ended.home = HomePublisher.for_parts(parts, slack_client(settings))
        report_held(settings)
        metrics.current().track_stores([(part.store, part.watches, part.wes.host) for part in parts])
        fleet = Fleet([part.watcher for part in parts if part.watcher is not None], stop)
        install_stop_handlers(stop, raise_in_main=False, also=parts[0].watcher.wake if parts[0].watcher else None)
        fleet.run()
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """The audit trail of every server, from the database alone: no WES or Slack setting is needed."""
    from pathlib import Path

    from .results import AuditResult
    from .store import open_db
    from .store.cancels import every_audit

    db_path = environment().get("WESBOT_DB") or DEFAULT_DB
    if not Path(db_path).expanduser().is_file():
        _fail(f"there is no database at {db_path}: set WESBOT_DB to the file wesbot serve uses")
    db = open_db(db_path)
    try:
        rows = every_audit(db, args.run_id, limit=args.limit)
    finally:
        db.close()
    result = AuditResult(command=None, run_id=args.run_id, rows=rows)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(result, host=""))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from .check import run_check

    try:
        settings = load_settings(environment(), need_slack=True, http_mode=bool(args.http))
    except ConfigError as error:
        return run_check(error.problems, json_out=args.json)
    setup_logging(settings, args.log_level, default="warning")
    return run_check(settings, json_out=args.json)


def _add_metrics_port(parser: argparse.ArgumentParser, more: str = "") -> None:
    parser.add_argument("--metrics-port", type=_metrics_port, default=None, metavar="[HOST:]PORT",
                        help="serve Prometheus metrics on GET http://HOST:PORT/metrics (default $WESBOT_METRICS_PORT; "
                        "HOST is 127.0.0.1 unless given, e.g. 0.0.0.0:9464)" + (f"; {more}" if more else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wesbot",
        description="Slack chat-ops for workflow runs on GA4GH WES servers. Settings come from the environment "
        "(and a .env file in the working directory): WES_URL, WES_AUTH or WES_TOKEN (or several servers in "
        "WESBOT_CONFIG, default ./wesbot.toml), SLACK_BOT_TOKEN, "
        "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode), SLACK_API_URL, WESBOT_DB.",
    )
    parser.add_argument("--version", action="version", version=f"wesbot {__version__}")
    log_help = ("log verbosity (default: $WESBOT_LOG_LEVEL, else info for serve and watch, warning for ask); debug "
                "is wesbot's own detail, debug-all the libraries' too. $WESBOT_LOG_FORMAT=json logs one JSON object "
                "a line")
    parser.add_argument("--log-level", default=None, choices=LOG_LEVELS, help=log_help)
    # The same option after the subcommand too (`wesbot ask status r1 --log-level debug`); SUPPRESS keeps a
    # value given before the subcommand when none is given after it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS, help=log_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", parents=[common], help="run the bot",
        description="Run the bot. Uses Socket Mode when SLACK_APP_TOKEN is set, HTTP mode otherwise or with --http. "
        "In HTTP mode Slack's requests go to POST /slack/events and GET /healthz answers 200 while healthy. "
        "SIGTERM stops it within 5 seconds.",
    )
    serve.add_argument("--http", action="store_true", help="serve HTTP (request URLs) even if SLACK_APP_TOKEN is set")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", default=None, help="HTTP mode: port (default $PORT or 3000)")
    serve.add_argument("--no-watcher", action="store_true",
                       help="do not run the watcher in this process (run `wesbot watch` separately)")
    _add_metrics_port(serve, "HTTP mode serves GET /metrics on --port as well")
    serve.set_defaults(func=cmd_serve)

    watch = sub.add_parser(
        "watch", parents=[common], help="run only the watcher: post to Slack when watched runs end",
        description="Run the watcher alone (it also runs inside `wesbot serve` unless --no-watcher). It polls the "
        "runs subscribed to with /wes subscribe every WESBOT_POLL_SECONDS (default 30; WESBOT_POLL_CONCURRENCY "
        "reads at once, default 16) and posts when they end. Subscriptions expire after WESBOT_SUBSCRIPTION_DAYS "
        "(default 14). Several watcher processes may share one WESBOT_DB: only the one holding the lease posts, "
        "and another takes over within WESBOT_LEASE_SECONDS (default 30) if it dies. Needs SLACK_BOT_TOKEN, "
        "WES_URL and its credentials. SIGTERM stops it within 5 seconds.",
    )
    _add_metrics_port(watch)
    watch.set_defaults(func=cmd_watch)

    audit = sub.add_parser(
        "audit", parents=[common], help="print the audit trail of cancel attempts",
        description="Print recent cancel attempts from WESBOT_DB, most recent first: when, who (Slack user id), "
        "which run, its state before, and the outcome (requested, denied, already-finished, already-requested, "
        "wes-error, confirmed-canceled, ended-otherwise, no-effect).",
    )
    audit.add_argument("run_id", nargs="?", metavar="RUN_ID", help="only this run")
    audit.add_argument("--limit", type=int, default=50, help="how many rows (default 50)")
    audit.add_argument("--json", action="store_true", help="print JSON, for scripts")
    audit.set_defaults(func=cmd_audit)

    check = sub.add_parser(
        "check", parents=[common], help="check the deployment: settings, WES servers, Slack, the database",
        description="Check everything `wesbot serve` needs, one line per item: ok, warn (works anyway) or FAIL "
        "with the fix. Items: the configuration; each WES server (the base URL, GET /service-info: version and "
        "engines, credentials with GET /runs?page_size=1, each timed); Slack (auth.test: team and bot user; the "
        "scopes granted against manifest.yml's; in Socket Mode apps.connections.open); the database WESBOT_DB "
        "(writable, migrations, WAL mode, the watcher lease). Changes nothing but one health-probe row. Exits 0 "
        "when nothing failed, 1 when something did, 2 on a configuration problem. `serve` runs the same checks "
        "when it starts.",
    )
    check.add_argument("--http", action="store_true", help="check what `serve --http` needs (no SLACK_APP_TOKEN)")
    check.add_argument("--json", action="store_true",
                       help="print a JSON list of {item, status: ok|warn|fail, detail, fix}, for scripts")
    check.set_defaults(func=cmd_check)

    from .results import HelpResult

    ask = sub.add_parser(
        "ask", parents=[common], help="run a /wes command on the terminal, without Slack",
        description="Run the same command as `/wes TEXT` against WES and print the answer. "
        "Exits 1 when the command failed, 2 on a configuration problem.\n\n"
        + render_text(HelpResult(command=None), host=""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ask.add_argument("--json", action="store_true", help="print the parsed result as JSON, for scripts")
    ask.add_argument("-s", "--server", default=None, metavar="NAME",
                     help="the WES server to ask, by its name in wesbot.toml (default: the only one, or the one "
                     "whose run list shows the command's run)")
    ask.add_argument("--out", default=None, metavar="FILE.png",
                     help="timeline: write the picture of the run's tasks to this file")
    ask.add_argument("text", nargs="+", metavar="TEXT", help="the command, e.g. status RUN_ID")
    ask.set_defaults(func=cmd_ask)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except (sqlite3.Error, OSError) as error:
        failed = _storage_failure(error)
        if failed is None:
            raise
        return failed
    return code


def _storage_failure(error: BaseException) -> int | None:
    """A storage fault on the terminal is one sentence and exit 1, not a traceback; None: not one, let it raise."""
    sentence = describe_storage_error(error, environment().get("WESBOT_DB") or DEFAULT_DB)
    if sentence is None:
        return None
    print(f"wesbot: {sentence}", file=sys.stderr)
    return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
