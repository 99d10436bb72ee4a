"""Settings, read once from the environment (and a ``.env`` file in the working directory).

Everything is validated before anything connects: :func:`load_settings` collects *every* problem and
raises one :class:`ConfigError` with one line per problem, each naming its variable. Secret values are
never part of a message, a ``repr`` or a log line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlsplit

from .cancel import parse_cancelers
from .logsetup import LOG_FORMATS, LOG_LEVELS
from .wes.logs import parse_allowed_hosts
from .wes.secrets import secret_forms

if TYPE_CHECKING:
    from .servers import ServerConfig

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DB = "wesbot.db"

_T = TypeVar("_T")


class ConfigError(Exception):
    """The settings are missing or malformed. ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)
class Settings:
    wes_url: str
    # Secrets are left out of repr() so that a logged Settings object leaks nothing.
    wes_auth: tuple[str, str] | None = field(default=None, repr=False)
    wes_token: str | None = field(default=None, repr=False)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    db_path: str = DEFAULT_DB
    # WESBOT_LOG_HOSTS: hosts other than the WES server's whose log URLs wesbot may read (without credentials).
    log_hosts: frozenset[str] = frozenset()
    # WESBOT_CANCELERS: Slack user (U…) and user-group (S…) ids who may cancel; empty means anyone.
    cancelers: tuple[str, ...] = ()
    cancel_timeout: float = 600.0
    # WESBOT_WES_TIMEOUT: the most one WES call may take, retries and a slow server's answer included.
    wes_timeout: float = 15.0
    poll_seconds: float = 30.0
    poll_concurrency: int = 16
    subscription_days: float = 14.0
    lease_seconds: float = 30.0
    digest_after: int = 5
    # WESBOT_TIMELINE_MIN_TASKS: a subscribed run's end notification with at least this many tasks carries the run's
    # timeline picture in its thread; 0: never.
    timeline_min_tasks: int = 5
    # WESBOT_LOG_LEVEL (None: the command's default; --log-level wins) and WESBOT_LOG_FORMAT; see wesbot.logsetup.
    log_level: str | None = None
    log_format: str = "text"
    # WESBOT_METRICS_PORT ([HOST:]PORT, HOST 127.0.0.1 by default): where Socket Mode and `wesbot watch` serve
    # /metrics (HTTP mode serves it on its own port too). None: not served there.
    metrics_listen: tuple[str, int] | None = None
    # WESBOT_RUN_URL: the template of a run's page in a web UI ("https://ui.example.org/runs/{run_id}"), for the
    # Open button; each server's own (run_url in wesbot.toml) wins. None: no Open button.
    run_url: str | None = None
    # WESBOT_OWNER_TAG: the run tag that names who launched a run (an email address or a Slack user id), whom the
    # channel-watch notifications, deadline alerts and reports mention; each server's owner_tag wins.
    owner_tag: str | None = None
    # Every WES server (see wesbot.servers). wes_url, wes_auth, wes_token, log_hosts, cancelers and poll_seconds
    # above are the first one's. Left empty, it is that one server, named "default".
    servers: tuple[ServerConfig, ...] = ()

    def __post_init__(self) -> None:
        if not self.servers:
            from .servers import ServerConfig

            credential = "WES_AUTH" if self.wes_auth else "WES_TOKEN" if self.wes_token else None
            only = ServerConfig(name="default", url=self.wes_url, auth=self.wes_auth, token=self.wes_token,
                                log_hosts=self.log_hosts, cancelers=self.cancelers, poll_seconds=self.poll_seconds,
                                run_url=self.run_url, owner_tag=self.owner_tag, credential_env=credential)
            object.__setattr__(self, "servers", (only,))

    def server(self, name: str) -> ServerConfig:
        """The server named ``name``; :class:`wesbot.servers.UnknownServer` (naming the others) if none is."""
        from .servers import UnknownServer

        for server in self.servers:
            if server.name == name:
                return server
        raise UnknownServer(name, [server.name for server in self.servers])

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def wes_credential_name(self) -> str | None:
        """Which variable holds the first server's credentials, for error messages ("check WES_AUTH")."""
        return self.servers[0].credential_env

    def secrets(self) -> list[str]:
        """Every form of every secret value, every server's included (see :mod:`wesbot.wes.secrets`), so that
        log filters can redact them."""
        forms = secret_forms(auth=self.wes_auth, token=self.wes_token,
                             others=(self.slack_bot_token, self.slack_app_token, self.slack_signing_secret))
        for server in self.servers:
            forms += secret_forms(auth=server.auth, token=server.token)
        return sorted(set(forms), key=len, reverse=True)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE`` lines, ``export`` prefixes, ``#`` comments, quoted values.

    Deliberately small: no variable expansion and no multi-line values.
    """
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export ") :].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if key:
            values[key] = value
    return values


def environment(environ: Mapping[str, str] | None = None, dotenv: Path | None = None) -> dict[str, str]:
    """The process environment over the ``.env`` file in the working directory (the environment wins)."""
    merged = read_dotenv(dotenv if dotenv is not None else Path.cwd() / ".env")
    merged.update(os.environ if environ is None else environ)
    return merged


def _check_url(name: str, value: str, problems: list[str], *, secrets: str = "WES_AUTH or WES_TOKEN") -> str:
    """``value`` without its trailing slash; a problem naming ``name`` unless it is a plain http(s) base URL.
    ``secrets``: where the credentials go instead of the URL."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{name} must be an http:// or https:// URL with a host (got {value[:80]!r})")
    elif parts.username or parts.password:
        # Never echo the value: it holds a credential.
        problems.append(f"{name} must not contain credentials; put them in {secrets}")
    elif parts.query or parts.fragment:
        problems.append(f"{name} must be a base URL without ?query or #fragment")
    return value.rstrip("/")


RUN_ID_FIELD = "{run_id}"


def parse_run_url(value: str | None) -> str | None:
    """A run-link template (``WESBOT_RUN_URL``, a server's ``run_url``): an http(s) URL with ``{run_id}`` in it.
    None when unset; ValueError (one sentence) when it is not one."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    parts = urlsplit(value.replace(RUN_ID_FIELD, "x"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL (got {value[:80]!r})")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials: it is shown to everyone in the channel")
    if RUN_ID_FIELD not in value:
        raise ValueError(f"must contain {RUN_ID_FIELD}, where the run id goes, "
                         "e.g. https://ui.example.org/runs/{run_id}")
    return value


_TAG_KEY = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")


def parse_owner_tag(value: str | None) -> str | None:
    """The run tag that names who launched a run (``WESBOT_OWNER_TAG``, a server's ``owner_tag``): a tag key.
    None when unset; ValueError when it is not one."""
    if value is None or not value.strip():
        return None
    if not _TAG_KEY.fullmatch(value.strip()):
        raise ValueError(f"must be a tag key: 1 to 100 of letters, digits and _ . : / - (got {value[:40]!r})")
    return value.strip()


def run_link(template: str | None, run_id: str) -> str | None:
    """The page of run ``run_id``: ``template`` with ``{run_id}`` replaced by the id, URL-quoted (an id from WES
    cannot add a path, a query or a host). None without a template."""
    if template is None:
        return None
    return template.replace(RUN_ID_FIELD, quote(run_id, safe=""))


class _Reader:
    """The environment being read, and every problem found so far.

    Each reader below takes one, reads one group of settings and appends what is wrong to ``problems``
    instead of raising, so that :func:`load_settings` can report every problem at once."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        """The value of ``name``; None when unset or blank (an empty line in ``.env`` means unset)."""
        value = self.env.get(name, "").strip()
        return value or None

    def number(self, name: str, default: float, low: float, high: float, *, integer: bool = False) -> float:
        """A number from ``low`` to ``high``; ``default`` when unset, or (with a problem) when out of range."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"{name} must be {kind} from {low:g} to {high:g} (got {raw[:20]!r})")
            return default
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        """One of ``choices`` (given in any case, returned in lower case); None when unset or (with a problem)
        not one of them."""
        raw = self.get(name)
        if raw is None or raw.lower() in choices:
            return None if raw is None else raw.lower()
        self.problems.append(f"{name} must be one of {', '.join(choices)} (got {raw[:20]!r})")
        return None

    def listed(self, name: str, parse: Callable[[str | None], _T], default: _T) -> _T:
        """A comma-separated list, read by ``parse``, which raises ValueError naming the bad entry."""
        try:
            return parse(self.get(name))
        except ValueError as error:
            self.problems.append(f"{name}: {error}")
            return default


def _wes_url(env: _Reader) -> str:
    wes_url = env.get("WES_URL")
    if wes_url is None:
        env.problems.append(
            "WES_URL is not set: the base URL of the WES API, e.g. https://wes.example.org/ga4gh/wes/v1"
        )
        return ""
    return _check_url("WES_URL", wes_url, env.problems)


def parse_user_password(value: str) -> tuple[str, str] | None:
    """``user:password`` (as curl --user takes it) as a pair; None when there is no colon or no user."""
    user, sep, password = value.partition(":")
    return (user, password) if sep and user else None


def _wes_credentials(env: _Reader) -> tuple[tuple[str, str] | None, str | None]:
    """``(WES_AUTH as (user, password), WES_TOKEN)``: at most one of them may be set."""
    wes_auth: tuple[str, str] | None = None
    raw_auth = env.get("WES_AUTH")
    if raw_auth is not None:
        wes_auth = parse_user_password(raw_auth)
        if wes_auth is None:
            env.problems.append("WES_AUTH must be user:password, as in curl --user")
    wes_token = env.get("WES_TOKEN")
    if raw_auth is not None and wes_token is not None:
        env.problems.append("WES_AUTH and WES_TOKEN are both set: set only one of them")
    return wes_auth, wes_token


def _slack_tokens(
    env: _Reader, *, need_slack: bool, http_mode: bool, need_app: bool
) -> tuple[str | None, str | None, str | None]:
    """``(bot token, app token, signing secret)``. The app token is dropped when serving HTTP, since its
    presence is what selects Socket Mode (:attr:`Settings.socket_mode`)."""
    bot_token = env.get("SLACK_BOT_TOKEN")
    app_token = env.get("SLACK_APP_TOKEN")
    signing_secret = env.get("SLACK_SIGNING_SECRET")
    if need_slack:
        _check_bot_token(env, bot_token)
        if need_app:
            _check_app_credentials(env, app_token, signing_secret, http_mode=http_mode)
    if app_token is not None and not app_token.startswith("xapp-"):
        env.problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    return bot_token, app_token if not (need_slack and http_mode) else None, signing_secret


def _check_bot_token(env: _Reader, bot_token: str | None) -> None:
    if bot_token is None:
        env.problems.append("SLACK_BOT_TOKEN is not set: the bot token (xoxb-...) from your Slack app's OAuth page")
    elif not bot_token.startswith("xoxb-"):
        env.problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")


def _check_app_credentials(env: _Reader, app_token: str | None, signing_secret: str | None, *, http_mode: bool) -> None:
    """What receiving Slack's requests needs: a signing secret over HTTP, an app-level token in Socket Mode."""
    if http_mode:
        if signing_secret is None:
            env.problems.append("SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests")
    elif app_token is None:
        env.problems.append(
            "SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-...); "
            "or run `wesbot serve --http`"
        )


def _slack_api_url(env: _Reader) -> str:
    """SLACK_API_URL (tests point it at a fake Web API), with the trailing slash slack_sdk expects."""
    raw = env.get("SLACK_API_URL")
    if raw is None:
        return DEFAULT_SLACK_API_URL
    return _check_url("SLACK_API_URL", raw, env.problems) + "/"


def _db_path(env: _Reader) -> str:
    """WESBOT_DB; its folder must exist, so that a typo is reported now rather than at the first write."""
    db_path = env.get("WESBOT_DB") or DEFAULT_DB
    parent = Path(db_path).expanduser().resolve().parent
    if not parent.is_dir():
        env.problems.append(f"WESBOT_DB: the folder {str(parent)[:200]!r} does not exist")
    return db_path


def parse_metrics_port(value: str | None) -> tuple[str, int] | None:
    """``[HOST:]PORT`` as (host, port); the host is 127.0.0.1 unless given (``0.0.0.0:9464`` for every
    interface: the metrics carry no secret, but need not be public). ValueError says what is wrong."""
    if value is None or not value.strip():
        return None
    host, _, port = value.strip().rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"must be a port from 1 to 65535, or HOST:PORT (got {value[:40]!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def load_settings(
    env: Mapping[str, str],
    *,
    need_slack: bool = False,
    http_mode: bool = False,
    need_app: bool = True,
    cwd: Path | None = None,
) -> Settings:
    """Validate the environment, and the servers' file if there is one (see :mod:`wesbot.servers`; ``cwd`` is
    where ``./wesbot.toml`` is looked for, the working directory by default). ``need_slack`` for ``serve`` and
    ``watch``; ``http_mode`` when serving HTTP; ``need_app`` is False for ``watch``, which posts with the bot
    token but receives nothing."""
    from .servers import ServerDefaults, load_servers

    reader = _Reader(env)
    # The groups are read in this order so that the problems are listed in it, the servers' first.
    bot_token, app_token, signing_secret = _slack_tokens(
        reader, need_slack=need_slack, http_mode=http_mode, need_app=need_app
    )
    slack_api_url = _slack_api_url(reader)
    db_path = _db_path(reader)
    poll_seconds = reader.number("WESBOT_POLL_SECONDS", 30.0, 0.1, 86400)
    poll_concurrency = int(reader.number("WESBOT_POLL_CONCURRENCY", 16, 1, 256, integer=True))
    subscription_days = reader.number("WESBOT_SUBSCRIPTION_DAYS", 14.0, 0.00001, 3650)
    lease_seconds = reader.number("WESBOT_LEASE_SECONDS", 30.0, 1, 3600)
    digest_after = int(reader.number("WESBOT_DIGEST_AFTER", 5, 1, 1000, integer=True))
    timeline_min_tasks = int(reader.number("WESBOT_TIMELINE_MIN_TASKS", 5, 0, 100_000, integer=True))
    cancelers: tuple[str, ...] = reader.listed("WESBOT_CANCELERS", parse_cancelers, ())
    cancel_timeout = reader.number("WESBOT_CANCEL_TIMEOUT", 600.0, 1, 86400)
    wes_timeout = reader.number("WESBOT_WES_TIMEOUT", 15.0, 1, 600)
    log_hosts: frozenset[str] = reader.listed("WESBOT_LOG_HOSTS", parse_allowed_hosts, frozenset())
    log_level = reader.choice("WESBOT_LOG_LEVEL", LOG_LEVELS)
    log_format = reader.choice("WESBOT_LOG_FORMAT", LOG_FORMATS) or "text"
    metrics_listen = reader.listed("WESBOT_METRICS_PORT", parse_metrics_port, None)
    run_url = reader.listed("WESBOT_RUN_URL", parse_run_url, None)
    owner_tag = reader.listed("WESBOT_OWNER_TAG", parse_owner_tag, None)
    servers, server_problems = load_servers(
        env, cwd=Path.cwd() if cwd is None else cwd,
        defaults=ServerDefaults(log_hosts=log_hosts, cancelers=cancelers, poll_seconds=poll_seconds,
                                run_url=run_url, owner_tag=owner_tag),
    )
    if server_problems or reader.problems:
        raise ConfigError(server_problems + reader.problems)
    first = servers[0]
    return Settings(
        servers=tuple(servers),
        wes_url=first.url,
        wes_auth=first.auth,
        wes_token=first.token,
        cancelers=first.cancelers,
        log_hosts=first.log_hosts,
        poll_seconds=first.poll_seconds,
        cancel_timeout=cancel_timeout,
        wes_timeout=wes_timeout,
        poll_concurrency=poll_concurrency,
        subscription_days=subscription_days,
        lease_seconds=lease_seconds,
        digest_after=digest_after,
        timeline_min_tasks=timeline_min_tasks,
        log_level=log_level,
        log_format=log_format,
        metrics_listen=metrics_listen,
        run_url=first.run_url,
        owner_tag=first.owner_tag,
        slack_bot_token=bot_token,
        slack_app_token=app_token,
        slack_signing_secret=signing_secret,
        slack_api_url=slack_api_url,
        db_path=db_path,
    )
