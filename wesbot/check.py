"""``wesbot check``: is this deployment right? One line per item, the problem and its fix when it is not.

The items, in order (``--json`` gives the same as a list of ``{item, status, detail, fix}``):

- ``configuration``: the settings (:func:`wesbot.config.load_settings`), one line per problem;
- for each WES server, ``WES <host> URL`` (the base URL's shape), ``WES <host> service-info`` (reachable and
  readable: server, version, engines) and ``WES <host> credentials`` (``GET /runs?page_size=1``), each timed
  (``WES <name> (<host>) ...`` when several servers are configured, see :mod:`wesbot.servers`);
- ``Slack auth.test`` (team and bot user), ``Slack scopes`` (the ``x-oauth-scopes`` Slack returns, against
  :data:`MANIFEST_BOT_SCOPES`), and ``Slack Socket Mode`` (``apps.connections.open``; the socket is not opened)
  or ``Slack HTTP mode``;
- ``database`` (it takes a write), ``database migrations`` (applied against defined; none is applied),
  ``database WAL`` and ``watcher lease`` (who holds it, until when).

Each item is ``ok``, ``warn`` (worth knowing, works anyway) or ``fail``. ``wesbot check`` exits 0 when nothing
failed, 1 when something did, 2 on a configuration problem. ``wesbot serve`` runs the same checks before it
connects (:func:`preflight`): a ``fatal`` failure, without which it cannot work at all, stops it with one line;
the rest are logged as warnings. No line carries a credential: every one goes through the secrets' masker.

The check never changes the database, but for the health probe's one heartbeat row (a commit is the only
proof that the file takes writes). A file that does not exist yet is not created.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from sqlite_utils import Database

from .config import Settings
from .slack.poster import REFUSED_TOKEN_ERRORS
from .store.db import migrations
from .store.health import describe_storage_error
from .store.leases import LeaseHolder, Leases, this_host
from .watcher.loop import LEASE, lease_name
from .wes.client import WesClient
from .wes.errors import WesAuthError, WesError, WesHTTPError, WesUnreachable
from .wes.models import RunListPage, ServiceInfo
from .wes.secrets import Masker

__all__ = [
    "MANIFEST_BOT_SCOPES",
    "CheckResult",
    "Status",
    "WesServer",
    "check_database",
    "check_slack",
    "check_wes",
    "preflight",
    "run_check",
    "startup_checks",
    "wes_servers",
]

logger = logging.getLogger("wesbot.check")

# The bot scopes manifest.yml asks for (oauth_config.scopes.bot). manifest.yml is not part of the installed
# package, so they are kept here; tests/test_check.py fails when the two differ.
MANIFEST_BOT_SCOPES: tuple[str, ...] = (
    "commands",
    "chat:write",
    "chat:write.public",
    "files:write",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "usergroups:read",
    "users:read",
    "links:read",
    "links:write",
)
WES_BASE_PATH = "/ga4gh/wes/v1"
SLACK_TIMEOUT_SECONDS = 10.0
# The longest item name and detail (or fix) shown: what servers send is shortened to fit.
MAX_ITEM, MAX_DETAIL = 120, 400
# What Slack answers when it does not take a token.
_NETWORK_FIX = "check the network (and HTTPS_PROXY) from this host, and SLACK_API_URL (default https://slack.com/api/)"

# ``wesbot check``'s exit codes, the same as the other commands'.
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2

_T = TypeVar("_T")


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


_LABELS = {Status.OK: "ok", Status.WARN: "warn", Status.FAIL: "FAIL"}


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One item checked: ``detail`` says what was found (the problem, when not ok), ``fix`` what to do."""

    item: str
    status: Status
    detail: str
    fix: str | None = None
    # ``serve`` cannot work at all with this failure: it stops instead of logging a warning.
    fatal: bool = False
    # ``serve`` logs this at INFO instead of as a warning: expected on a first start (no database yet).
    expected_at_start: bool = False
    # What ``serve``'s start-up log says about what it serves (the WES server, the Slack team).
    serves: str | None = None

    @property
    def text(self) -> str:
        return self.detail + (f"; {self.fix}" if self.fix else "")

    def line(self) -> str:
        """``ok   ITEM: DETAIL``, ``warn ITEM: PROBLEM; FIX`` or ``FAIL ITEM: PROBLEM; FIX``."""
        return f"{_LABELS[self.status]:<4} {self.item}: {self.text}"

    def to_json(self) -> dict[str, str | None]:
        return {"item": self.item, "status": str(self.status), "detail": self.detail, "fix": self.fix}

    def masked(self, mask: Callable[[str], str]) -> CheckResult:
        """Every secret masked, then each field shortened (a secret cut in two would escape the mask)."""
        return replace(self, item=_clip(mask(self.item), MAX_ITEM), detail=_clip(mask(self.detail), MAX_DETAIL),
                       fix=None if self.fix is None else _clip(mask(self.fix), MAX_DETAIL),
                       serves=None if self.serves is None else _clip(mask(self.serves), MAX_DETAIL))


def _ok(item: str, detail: str, **kwargs: Any) -> CheckResult:
    return CheckResult(item=item, status=Status.OK, detail=detail, **kwargs)


def _warn(item: str, detail: str, fix: str | None = None, **kwargs: Any) -> CheckResult:
    return CheckResult(item=item, status=Status.WARN, detail=detail, fix=fix, **kwargs)


def _fail(item: str, detail: str, fix: str | None = None, **kwargs: Any) -> CheckResult:
    return CheckResult(item=item, status=Status.FAIL, detail=detail, fix=fix, **kwargs)


def _sentence(item: str, status: Status, sentence: str, **kwargs: Any) -> CheckResult:
    """A storage sentence ("what is wrong; what to do") as a result."""
    detail, _, fix = sentence.partition("; ")
    return CheckResult(item=item, status=status, detail=detail, fix=fix or None, **kwargs)


def _plain(value: object) -> str:
    """A value a server chose, on one line (it is shortened after masking: :meth:`CheckResult.masked`)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _timed(call: Callable[[], _T]) -> tuple[_T | WesError, int]:
    """``call()``'s value, or the WesError it raised, and the milliseconds it took."""
    started = time.monotonic()
    try:
        value: _T | WesError = call()
    except WesError as error:
        value = error
    return value, round((time.monotonic() - started) * 1000)


# --------------------------------------------------------------------------------------------------
# WES servers
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class WesServer:
    """One WES server to check, with its credentials and where they are configured (for the fixes)."""

    url: str
    auth: tuple[str, str] | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    timeout: float = 15.0
    name: str | None = None  # shown in the items when several servers are checked
    url_name: str = "WES_URL"  # where the URL is set: WES_URL, or "wesbot.toml: servers.prod.url"
    credential_env: str | None = None  # the variable holding the credentials: WES_AUTH, PROD_WES_AUTH ...

    @property
    def credential_name(self) -> str | None:
        if self.credential_env is not None:
            return self.credential_env
        return "WES_AUTH" if self.auth else "WES_TOKEN" if self.token else None

    @property
    def credential_fix(self) -> str:
        """How to give it credentials."""
        if self.url_name == "WES_URL":
            return "set WES_AUTH or WES_TOKEN"
        return f"name the variable holding them with auth_env or token_env in {self.url_name.removesuffix('.url')}"


def wes_servers(settings: Settings) -> list[WesServer]:
    """Every configured server, named when there are several."""
    several = len(settings.servers) > 1
    return [WesServer(url=server.url, auth=server.auth, token=server.token, timeout=settings.wes_timeout,
                      name=server.name if several else None, url_name=server.url_name,
                      credential_env=server.credential_env)
            for server in settings.servers]


def check_wes(server: WesServer) -> list[CheckResult]:
    """``URL``, ``service-info`` and ``credentials`` of one server. Nothing is retried: the check says what it
    sees. ``/runs`` is asked even after a failed service-info, unless the server could not be reached."""
    deadline = server.timeout
    with WesClient(server.url, auth=server.auth, token=server.token, timeout=min(10.0, deadline),
                   connect_timeout=min(5.0, deadline), deadline=deadline, retries=0) as client:
        name = f"WES {server.name} ({client.host})" if server.name else f"WES {client.host}"
        info, info_ms = _timed(client.service_info)
        runs: RunListPage | WesError | None = None
        runs_ms = 0
        if not isinstance(info, WesUnreachable):
            runs, runs_ms = _timed(lambda: client.list_runs(page_size=1))
    service = _service_result(f"{name} service-info", info, info_ms, runs, server, client.host)
    return [_url_result(f"{name} URL", server.url, service.status),
            service,
            _credentials_result(f"{name} credentials", runs, runs_ms, info, server)]


def _is_404(answer: object) -> bool:
    return isinstance(answer, WesHTTPError) and answer.status_code == 404


def _url_result(item: str, url: str, service: Status) -> CheckResult:
    path = urlsplit(url).path.rstrip("/")
    if path.endswith(WES_BASE_PATH):
        return _ok(item, f"the base path ends with {WES_BASE_PATH}")
    shown = f"the path is {path!r}" if path else "it has no path"
    if service is Status.OK:
        return _ok(item, f"{shown}, not the usual …{WES_BASE_PATH}, but service-info answered")
    return _warn(item, f"{shown}; WES base URLs usually end with {WES_BASE_PATH}")


def describe_service(info: ServiceInfo) -> str:
    """``Fake WES 1.1.0, WES API 1.1.0, engines cwltool 3.1``: what the server says it is."""
    name = _plain(info.name or "a WES server")
    parts = [f"{name} {_plain(info.version)}" if info.version else name]
    if info.supported_wes_versions:
        parts.append("WES API " + _plain(", ".join(info.supported_wes_versions)))
    engines = ", ".join(f"{engine} {version}" for engine, version in info.workflow_engine_versions.items())
    if not engines and info.workflow_type_versions:
        engines = "none listed; workflow types " + ", ".join(info.workflow_type_versions)
    parts.append(f"engines {_plain(engines or 'none listed')}")
    return ", ".join(parts)


def _service_result(item: str, info: ServiceInfo | WesError, ms: int, runs: object, server: WesServer,
                    host: str) -> CheckResult:
    url, url_name = server.url, server.url_name
    if isinstance(info, ServiceInfo):
        described = describe_service(info)
        return _ok(item, f"{described}, in {ms} ms", serves=f"WES server {host}: {described}")
    if isinstance(info, WesUnreachable):
        return _fail(item, str(info), f"check {url_name}, and that the server is up and reachable from this host")
    if isinstance(info, WesAuthError):
        return _warn(item, f"answered {info.status_code} in {ms} ms: this server shows service-info only with "
                     "accepted credentials (see the credentials line)")
    if _is_404(info):
        if isinstance(runs, RunListPage):
            return _warn(item, f"this server has no /service-info (404 in {ms} ms): its version and engines "
                         "are unknown; wesbot does not need them")
        shown = url if urlsplit(url).path.rstrip("/").endswith(WES_BASE_PATH) else f"{url}, without it"
        return _fail(item, f"GET /service-info answered 404 in {ms} ms",
                     f"{url_name} may be missing {WES_BASE_PATH} (it is {shown})")
    return _fail(item, str(info), f"check that {url_name} is the base URL of the WES API (usually ending with "
                 f"{WES_BASE_PATH})")


def _credentials_result(item: str, runs: RunListPage | WesError | None, ms: int, info: object,
                        server: WesServer) -> CheckResult:
    credential = server.credential_name
    if runs is None:
        return _warn(item, "not checked: the server could not be reached")
    if isinstance(runs, RunListPage):
        if credential is None:
            return _ok(item, f"GET /runs?page_size=1 answered in {ms} ms without credentials (none configured)")
        return _ok(item, f"GET /runs?page_size=1 accepted {credential} in {ms} ms")
    if isinstance(runs, WesAuthError):
        said = f" (the server said: {_plain(runs.server_message)})" if runs.server_message else ""
        if credential is None:
            return _fail(item, f"WES asks for credentials ({runs.status_code}){said}", server.credential_fix)
        fix = f"check {credential}" + (" (tokens expire)" if server.token else "")
        if runs.status_code == 403:
            return _fail(item, f"WES refused GET /runs with these credentials (403){said}",
                         fix + ": the account may not be allowed to list runs")
        return _fail(item, f"WES rejected the credentials ({runs.status_code}){said}", fix)
    if _is_404(runs) and _is_404(info):
        return _warn(item, "not checked: GET /runs answered 404 too (see service-info)")
    return _fail(item, f"GET /runs?page_size=1 failed: {runs}", f"check {server.url_name} and the WES server's logs")


# --------------------------------------------------------------------------------------------------
# Slack
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class _SlackAnswer:
    """One Web API call: its body when Slack said ok, else Slack's error code or why there was no answer."""

    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # Slack's "error" when ok is false
    problem: str | None = None  # no usable answer (network, HTTP status, not JSON)
    scopes: list[str] | None = None  # the x-oauth-scopes header, when sent
    ms: int = 0


def _slack_call(http: httpx.Client, api_url: str, method: str, token: str | None) -> _SlackAnswer:
    host = httpx.URL(api_url).netloc.decode("ascii", "replace")
    started = time.monotonic()
    try:
        response = http.post(api_url + method, headers={"Authorization": f"Bearer {token or ''}"})
    except httpx.HTTPError as error:
        reason = _plain(error) or type(error).__name__
        return _SlackAnswer(problem=f"could not reach Slack's Web API at {host} ({reason})")
    ms = round((time.monotonic() - started) * 1000)
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code != 200 or not isinstance(data, dict):
        what = f"HTTP {response.status_code}" if response.status_code != 200 else "something that is not JSON"
        return _SlackAnswer(problem=f"Slack's Web API at {host} answered {method} with {what}", ms=ms)
    header = response.headers.get("x-oauth-scopes")
    scopes = None if header is None else [scope.strip() for scope in header.split(",") if scope.strip()]
    if data.get("ok") is not True:
        return _SlackAnswer(error=_plain(data.get("error") or "unknown_error"), ms=ms)
    return _SlackAnswer(data=data, scopes=scopes, ms=ms)


def check_slack(settings: Settings) -> list[CheckResult]:
    """``auth.test`` with the bot token, the scopes it was granted, and Socket Mode's ``apps.connections.open``
    with the app token (the URL it answers is not opened)."""
    with httpx.Client(timeout=SLACK_TIMEOUT_SECONDS, follow_redirects=False) as http:
        auth = _slack_call(http, settings.slack_api_url, "auth.test", settings.slack_bot_token)
        results = [_auth_result(auth)]
        if results[0].status is Status.OK:
            results.append(_scopes_result(auth.scopes))
        else:
            results.append(_warn("Slack scopes", "not checked: auth.test failed"))
        if settings.socket_mode:
            opened = _slack_call(http, settings.slack_api_url, "apps.connections.open", settings.slack_app_token)
            results.append(_socket_result(opened))
        else:
            results.append(_ok("Slack HTTP mode", "Slack sends its requests to POST /slack/events, verified with "
                               "SLACK_SIGNING_SECRET (Slack calls in: nothing to check from here)"))
    return results


def _auth_result(answer: _SlackAnswer) -> CheckResult:
    item = "Slack auth.test"
    if answer.problem:
        return _fail(item, answer.problem, _NETWORK_FIX, fatal=True)
    if answer.error in REFUSED_TOKEN_ERRORS:
        return _fail(item, f"Slack refused SLACK_BOT_TOKEN ({answer.error})",
                     "copy the Bot User OAuth Token (xoxb-…) from your app's OAuth & Permissions page into "
                     "SLACK_BOT_TOKEN", fatal=True)
    if answer.error:
        return _fail(item, f"Slack answered auth.test with {answer.error}",
                     "look the error up in Slack's auth.test documentation", fatal=True)
    data = answer.data
    team, team_id = _plain(data.get("team") or "?"), _plain(data.get("team_id") or "?")
    user, user_id = _plain(data.get("user") or "?"), _plain(data.get("user_id") or "?")
    return _ok(item, f"team {team} ({team_id}), bot user {user} ({user_id}), in {answer.ms} ms",
               serves=f"Slack team {team} ({team_id}) as bot user {user} ({user_id})")


def _scopes_result(granted: list[str] | None) -> CheckResult:
    item = "Slack scopes"
    if granted is None:
        return _warn(item, "Slack did not say which scopes the token has (no x-oauth-scopes header)",
                     "compare the app's OAuth & Permissions page with manifest.yml")
    missing = [scope for scope in MANIFEST_BOT_SCOPES if scope not in granted]
    if missing:
        return _fail(item, f"the bot token lacks {', '.join(missing)}",
                     "reinstall the app with the scopes in manifest.yml (OAuth & Permissions, then Reinstall)")
    extra = [scope for scope in granted if scope not in MANIFEST_BOT_SCOPES]
    also = f" (and {', '.join(extra)}, which wesbot does not use)" if extra else ""
    return _ok(item, f"all {len(MANIFEST_BOT_SCOPES)} bot scopes manifest.yml asks for are granted{also}")


def _socket_result(answer: _SlackAnswer) -> CheckResult:
    item = "Slack Socket Mode"
    if answer.problem:
        return _fail(item, answer.problem, _NETWORK_FIX)
    if answer.error in REFUSED_TOKEN_ERRORS:
        return _fail(item, f"Slack refused SLACK_APP_TOKEN ({answer.error})",
                     "create an app-level token with the connections:write scope (Basic Information, App-Level "
                     "Tokens) and put it in SLACK_APP_TOKEN", fatal=True)
    if answer.error:
        return _fail(item, f"apps.connections.open answered {answer.error}",
                     "turn Socket Mode on in the app's settings (manifest.yml has socket_mode_enabled: true), "
                     "or run wesbot serve --http", fatal=True)
    return _ok(item, f"apps.connections.open gave a WebSocket URL in {answer.ms} ms (not opened)")


# --------------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class _DbState:
    """What the database file says, read without writing."""

    tables: frozenset[str]
    applied: list[str]
    pending: list[str]
    journal_mode: str
    # Each watcher lease asked about (one per server when there are several) and its holder, if any.
    leases: dict[str, LeaseHolder | None]
    lease_unreadable: bool = False


def check_database(path: str, leases: tuple[str, ...] = (LEASE,)) -> list[CheckResult]:
    """``database`` (takes a write), ``database migrations``, ``database WAL`` and a ``watcher lease`` item per
    lease in ``leases``. A file that does not exist yet is one warning (it is created at start-up), if its
    folder can take it."""
    file = Path(path).expanduser()
    if file.is_dir():
        return [_fail("database", f"WESBOT_DB {path} is a folder, not a file",
                      f"point WESBOT_DB at a file, e.g. {file / 'wesbot.db'}", fatal=True)]
    if not file.exists():
        folder = file.resolve().parent
        if os.access(folder, os.W_OK | os.X_OK):
            return [_warn("database", f"{path} does not exist yet", "it will be created at start-up",
                          expected_at_start=True)]
        return [_fail("database", f"{path} does not exist, and its folder {folder} does not take new files",
                      f"give the user running wesbot write access to {folder}", fatal=True)]
    try:
        state = _read_state(file, leases)
    except sqlite3.Error as error:
        sentence = describe_storage_error(error, path) or f"wesbot cannot read its database {path}: {_plain(error)}"
        return [_sentence("database", Status.FAIL, sentence, fatal=True)]
    return [_writable_result(path, state), _migrations_result(state), _wal_result(state),
            *(_lease_result(state, name) for name in leases)]


def _read_state(file: Path, names: tuple[str, ...]) -> _DbState:
    """Read through a connection that cannot write (``query_only``) and never creates the file (``mode=rw``:
    ``mode=ro`` would leave -wal and -shm files behind, owned by whoever ran the check)."""
    uri = "file:" + quote(str(file.resolve())) + "?mode=rw"
    with closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as conn:
        conn.execute("PRAGMA query_only = ON")
        db = Database(conn)
        tables = frozenset(db.table_names())
        applied = [migration.name for migration in migrations.applied(db)]
        pending = [migration.name for migration in migrations.pending(db)]
        journal_mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        leases: dict[str, LeaseHolder | None] = dict.fromkeys(names)
        unreadable = False
        if "leases" in tables:
            try:
                reader = Leases(lambda: db, lambda: nullcontext(db))
                leases = {name: reader.info(name) for name in names}
            except sqlite3.OperationalError:  # a leases table older than its host and pid columns
                unreadable = True
    return _DbState(tables=tables, applied=applied, pending=pending, journal_mode=journal_mode, leases=leases,
                    lease_unreadable=unreadable)


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The check reports storage problems itself: the health checker's own log line would say it twice."""
    log = logging.getLogger(name)
    was, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = was


def _writable_result(path: str, state: _DbState) -> CheckResult:
    item = "database"
    if "meta" not in state.tables:  # no wesbot tables yet: nothing to probe with; the file system must do
        folder = Path(path).expanduser().resolve().parent
        if os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK):
            return _warn(item, f"{path} has no wesbot tables yet", "they will be created at start-up")
        return _fail(item, f"{path} or its folder is read-only",
                     "give the user running wesbot write access to both", fatal=True)
    from .store.health import StorageHealth  # the probe commits one heartbeat row: the proof of a write

    with _quiet("wesbot.store"):
        problems = StorageHealth(path).check()
    if problems:
        return _sentence(item, Status.FAIL, problems[0], fatal=True)
    return _ok(item, f"{path} takes writes")


def _migrations_result(state: _DbState) -> CheckResult:
    item = "database migrations"
    names = _defined_names()
    defined = len(names)
    unknown = [name for name in state.applied if name not in names]
    if unknown:
        return _warn(item, f"applied migrations this wesbot does not know: {', '.join(unknown)}",
                     "the database was used by a newer wesbot; upgrade this one")
    if state.pending:
        return _warn(item, f"{len(state.pending)} of {defined} pending ({', '.join(state.pending)})",
                     "wesbot serve or watch applies them when it starts")
    latest = state.applied[-1] if state.applied else "none"
    return _ok(item, f"all {defined} applied (latest {latest})")


def _defined_names() -> list[str]:
    """The migrations this wesbot defines: all of them are pending on an empty database."""
    return [migration.name for migration in migrations.pending(Database(memory=True))]


def _wal_result(state: _DbState) -> CheckResult:
    if state.journal_mode == "wal":
        return _ok("database WAL", "journal mode wal")
    return _warn("database WAL", f"journal mode is {state.journal_mode}, not wal",
                 "wesbot switches it to WAL when it opens the file (WAL does not work on network file systems)")


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _lease_result(state: _DbState, name: str = LEASE, now: float | None = None) -> CheckResult:
    item = "watcher lease" + (f" of {name.partition(':')[2]}" if ":" in name else "")
    if state.lease_unreadable:
        return _warn(item, "not read: the leases table predates this wesbot's", "it is updated at start-up")
    holder = state.leases.get(name)
    if holder is None:
        return _ok(item, "no watcher has held it yet")
    where = "this host" if holder.host == this_host() else _plain(holder.host or "an unknown host")
    pid = f", pid {holder.pid}" if holder.pid is not None else ""
    who = f"{_plain(holder.owner)} on {where}{pid}"
    left = holder.expires_at - (time.time() if now is None else now)
    if left > 0:
        return _ok(item, f"held by {who}, for {_duration(left)} more")
    return _ok(item, f"free: last held by {who}, expired {_duration(left)} ago")


# --------------------------------------------------------------------------------------------------
# The command, and serve's start-up
# --------------------------------------------------------------------------------------------------

def startup_checks(settings: Settings) -> list[CheckResult]:
    """Every item but the configuration, secrets masked: each WES server, Slack, the database."""
    results: list[CheckResult] = []
    for server in wes_servers(settings):
        results += check_wes(server)
    results += check_slack(settings)
    several = len(settings.servers) > 1
    leases = tuple(lease_name(server.name if several else None) for server in settings.servers)
    results += check_database(settings.db_path, leases)
    mask = Masker(settings.secrets())
    return [result.masked(mask) for result in results]


def _configuration_ok(settings: Settings) -> CheckResult:
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
    names = [server.name for server in settings.servers]
    servers = f"{len(names)} WES servers ({', '.join(names)})" if len(names) > 1 else "1 WES server"
    return _ok("configuration", f"{mode}, {servers}, WESBOT_DB {settings.db_path}")


def run_check(settings_or_problems: Settings | Sequence[str], *, json_out: bool = False,
              out: TextIO | None = None) -> int:
    """``wesbot check``: print one line per item (or JSON); 0 when nothing failed, 1 when something did, 2 for
    configuration problems (``settings_or_problems`` is then ConfigError's list)."""
    if isinstance(settings_or_problems, Settings):
        results = [_configuration_ok(settings_or_problems), *startup_checks(settings_or_problems)]
        code = EXIT_FAILED if any(result.status is Status.FAIL for result in results) else EXIT_OK
    else:
        results = [_fail("configuration", problem) for problem in settings_or_problems]
        code = EXIT_CONFIG
    stream = out or sys.stdout
    if json_out:
        print(json.dumps([result.to_json() for result in results], indent=2, ensure_ascii=False), file=stream)
    else:
        for result in results:
            print(result.line(), file=stream)
    return code


def preflight(settings: Settings, *, err: TextIO | None = None) -> bool:
    """``serve``'s start-up checks. False after printing one line per fatal problem on stderr (the caller
    exits 2); else the other problems are logged as warnings and what it serves at INFO, and True."""
    results = startup_checks(settings)
    fatal = [result for result in results if result.fatal and result.status is Status.FAIL]
    for result in fatal:
        print(f"wesbot: cannot start: {result.item}: {result.text}", file=err or sys.stderr)
    if fatal:
        return False
    for result in results:
        if result.status is Status.OK:
            logger.debug("%s: %s", result.item, result.text)
        elif result.expected_at_start:
            logger.info("%s: %s", result.item, result.text)
        else:
            logger.warning("%s: %s", result.item, result.text)
    for result in results:
        if result.serves:
            logger.info("serving %s", result.serves)
    return True
