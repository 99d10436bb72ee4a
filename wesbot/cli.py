"""The ``wesbot`` command: ``serve`` runs the bot, ``ask`` runs one /wes command on the terminal."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from . import __version__
from .cancel import Cancelers
from .commands import SUBCOMMANDS
from .config import DEFAULT_DB, ConfigError, Settings, environment, load_settings
from .core import run_text
from .slack.poster import SlackPoster
from .store.cancels import CancelStore
from .store.health import StorageHealth, describe_storage_error
from .store.watch import WatchStore
from .store.watches import WatchesStore
from .textview import render_text
from .watcher import build_watcher
from .wes.client import WesClient
from .wes.logs import LogFetcher

if TYPE_CHECKING:
    from slack_sdk import WebClient

logger = logging.getLogger("wesbot")

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and failed (WES error, unknown run, usage mistake)
EXIT_CONFIG = 2  # settings missing or malformed, or bad command-line arguments

# Lookups run on this many threads; more wait in a queue. Acks never wait for them.
LOOKUP_THREADS = 32
# SIGTERM: the watcher finishes its current step (posts in flight) within this, or they stay in the outbox.
WATCHER_JOIN_SECONDS = 2.0


# A response_url lets anyone who has it answer in the channel for 30 minutes: a credential. Its value after the
# key (in a dict's repr, JSON or a form body), and any URL on Slack's hooks host (plain or form-encoded).
_RESPONSE_URLS = re.compile(
    r"(?P<key>response_url[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
    r"|https?(?::|%3A)(?://|%2F%2F)hooks\.slack\.com[^\s\"'&,}]*", re.IGNORECASE)


def _redact_response_urls(text: str) -> str:
    return _RESPONSE_URLS.sub(lambda m: (m.group("key") or "") + "[redacted]", text)


class RedactSecrets(logging.Filter):
    """Defence in depth: replace any configured secret, and any response_url, that would reach a log line."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _redact_response_urls(message) if "response_url" in message or "hooks" in message else message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(settings: Settings | None, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if settings is not None:
        handler.addFilter(RedactSecrets(settings.secrets()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO; keep that for --log-level debug.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)


def wes_client(settings: Settings) -> WesClient:
    deadline = settings.wes_timeout
    return WesClient(settings.wes_url, auth=settings.wes_auth, token=settings.wes_token,
                     timeout=min(10.0, deadline), connect_timeout=min(5.0, deadline), deadline=deadline)


def log_fetcher(settings: Settings) -> LogFetcher:
    return LogFetcher(settings.wes_url, auth=settings.wes_auth, token=settings.wes_token,
                      allowed_hosts=settings.log_hosts)


def _settings(args: argparse.Namespace, **kwargs: bool) -> Settings:
    try:
        return load_settings(environment(), **kwargs)
    except ConfigError as error:
        print("wesbot: cannot start, the configuration has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_ask(args: argparse.Namespace) -> int:
    settings = _settings(args)
    setup_logging(settings, args.log_level or "warning")
    with wes_client(settings) as wes, log_fetcher(settings) as logs:
        result = run_text(" ".join(args.text), wes, logs=logs)
        if args.json:
            print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        else:
            print(render_text(result, host=wes.host), file=sys.stdout if result.ok else sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    http_mode = bool(args.http)
    settings = _settings(args, need_slack=True, http_mode=http_mode)
    http_mode = http_mode or not settings.socket_mode
    setup_logging(settings, args.log_level or "info")

    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from .server import serve_http, serve_socket_mode
    from .slack.app import Deps, build_app
    from .slack.gate import response_origins
    from .store import open_db
    from .store.db import record_wes_url

    db = open_db(settings.db_path)
    previous = record_wes_url(db, settings.wes_url)
    if previous:
        logger.warning("WESBOT_DB was last used with another WES server; now using %s", settings.wes_url)
    db.close()
    # Built right after the open: it remembers which file that was, to notice one deleted or replaced later.
    storage = StorageHealth(settings.db_path)
    store = WatchStore(settings.db_path)
    wes = wes_client(settings)
    pool = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="wesbot-lookup")
    logs = log_fetcher(settings)
    poster = slack_poster(settings)  # thread-safe: the watcher's sender and the cancel clicks share it
    stop = threading.Event()
    watcher = None if args.no_watcher else build_watcher(settings, store, wes, poster, logs=logs, stop=stop)
    cancels = CancelStore(store, settings.wes_url)
    watches = WatchesStore(store)
    client = slack_client(settings)
    deps = Deps(wes=wes, host=wes.host, pool=pool, store=store, subscription_days=settings.subscription_days,
                wake=watcher.wake.set if watcher else None, logs=logs, cancels=cancels,
                cancelers=Cancelers(settings.cancelers, resolve_group=lambda group: list(
                    client.usergroups_users_list(usergroup=group).get("users") or [])),
                cancel_timeout=settings.cancel_timeout, poster=poster, watches=watches,
                response_origins=response_origins(settings.slack_api_url), db_path=settings.db_path)
    try:
        app = build_app(settings, deps, http_mode=http_mode)
    except (BoltError, SlackApiError) as error:
        # Bolt checks the bot token with auth.test at start-up.
        reason = getattr(getattr(error, "response", None), "data", {}) or {}
        detail = reason.get("error") if isinstance(reason, dict) else None
        print(f"wesbot: Slack did not accept SLACK_BOT_TOKEN ({detail or type(error).__name__})", file=sys.stderr)
        return EXIT_CONFIG
    watcher_thread = None
    if watcher is not None:  # SIGTERM sets ``stop``: the watcher stops between steps, with the server
        watcher_thread = threading.Thread(target=watcher.run, name="wesbot-watcher", daemon=True)
        watcher_thread.start()
    try:
        if http_mode:
            port = args.port if args.port is not None else int(os.environ.get("PORT") or 3000)
            serve_http(app, pool, host=args.host, port=port, stop=stop,
                       signing_secret=settings.slack_signing_secret or "", problems=storage.check)
        else:
            assert settings.slack_app_token is not None
            serve_socket_mode(app, pool, app_token=settings.slack_app_token, stop=stop)
    finally:
        stop.set()
        if watcher is not None and watcher_thread is not None:
            watcher.wake.set()
            watcher_thread.join(WATCHER_JOIN_SECONDS)
        wes.close()
        logs.close()
        poster.close()
    return EXIT_OK


def slack_client(settings: Settings) -> WebClient:
    from slack_sdk import WebClient

    return WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)


def slack_poster(settings: Settings) -> SlackPoster:
    assert settings.slack_bot_token is not None
    return SlackPoster(settings.slack_bot_token, settings.slack_api_url)


def cmd_watch(args: argparse.Namespace) -> int:
    settings = _settings(args, need_slack=True, need_app=False)
    setup_logging(settings, args.log_level or "info")
    from .server import install_stop_handlers
    from .store import open_db

    open_db(settings.db_path).close()
    store = WatchStore(settings.db_path)
    with wes_client(settings) as wes, log_fetcher(settings) as logs, slack_poster(settings) as poster:
        watcher = build_watcher(settings, store, wes, poster, logs=logs)
        install_stop_handlers(watcher.stop, raise_in_main=False, also=watcher.wake)
        watcher.run()
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from .results import AuditResult
    from .store import open_db

    open_db(settings.db_path).close()
    rows = CancelStore(WatchStore(settings.db_path), settings.wes_url).recent_audit(args.run_id, limit=args.limit)
    result = AuditResult(command=None, run_id=args.run_id, rows=rows)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(result, host=""))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wesbot",
        description="Slack chat-ops for workflow runs on GA4GH WES servers. Settings come from the environment "
        "(and a .env file in the working directory): WES_URL, WES_AUTH or WES_TOKEN, SLACK_BOT_TOKEN, "
        "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode), SLACK_API_URL, WESBOT_DB.",
    )
    parser.add_argument("--version", action="version", version=f"wesbot {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("WESBOT_LOG_LEVEL"),
                        choices=["debug", "info", "warning", "error"],
                        help="log verbosity (default: $WESBOT_LOG_LEVEL, else info for serve, warning for ask)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="run the bot",
        description="Run the bot. Uses Socket Mode when SLACK_APP_TOKEN is set, HTTP mode otherwise or with --http. "
        "In HTTP mode Slack's requests go to POST /slack/events and GET /healthz answers 200 while healthy. "
        "SIGTERM stops it within 5 seconds.",
    )
    serve.add_argument("--http", action="store_true", help="serve HTTP (request URLs) even if SLACK_APP_TOKEN is set")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="HTTP mode: port (default $PORT or 3000)")
    serve.add_argument("--no-watcher", action="store_true",
                       help="do not run the watcher in this process (run `wesbot watch` separately)")
    serve.set_defaults(func=cmd_serve)

    watch = sub.add_parser(
        "watch", help="run only the watcher: post to Slack when watched runs end",
        description="Run the watcher alone (it also runs inside `wesbot serve` unless --no-watcher). It polls the "
        "runs subscribed to with /wes subscribe every WESBOT_POLL_SECONDS (default 30; WESBOT_POLL_CONCURRENCY "
        "reads at once, default 16) and posts when they end. Subscriptions expire after WESBOT_SUBSCRIPTION_DAYS "
        "(default 14). Several watcher processes may share one WESBOT_DB: only the one holding the lease posts, "
        "and another takes over within WESBOT_LEASE_SECONDS (default 30) if it dies. Needs SLACK_BOT_TOKEN, "
        "WES_URL and its credentials. SIGTERM stops it within 5 seconds.",
    )
    watch.set_defaults(func=cmd_watch)

    audit = sub.add_parser(
        "audit", help="print the audit trail of cancel attempts",
        description="Print recent cancel attempts from WESBOT_DB, most recent first: when, who (Slack user id), "
        "which run, its state before, and the outcome (requested, denied, already-finished, already-requested, "
        "wes-error, confirmed-canceled, ended-otherwise, no-effect).",
    )
    audit.add_argument("run_id", nargs="?", metavar="RUN_ID", help="only this run")
    audit.add_argument("--limit", type=int, default=50, help="how many rows (default 50)")
    audit.add_argument("--json", action="store_true", help="print JSON, for scripts")
    audit.set_defaults(func=cmd_audit)

    usage_lines = "\n".join(f"  {s.usage.removeprefix('/wes ')}\n      {s.summary.replace('`', '')}"
                            for s in SUBCOMMANDS)
    ask = sub.add_parser(
        "ask", help="run a /wes command on the terminal, without Slack",
        description="Run the same command as `/wes TEXT` against WES and print the answer. "
        "Exits 1 when the command failed, 2 on a configuration problem. Commands:\n" + usage_lines,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ask.add_argument("--json", action="store_true", help="print the parsed result as JSON, for scripts")
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
