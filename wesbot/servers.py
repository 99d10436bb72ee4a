"""The WES servers wesbot talks to: one from ``WES_URL``, or several named in a TOML file.

One server stays as simple as it always was: ``WES_URL`` with ``WES_AUTH`` or ``WES_TOKEN`` is the server
named ``default`` (or ``WES_NAME``). Several come from ``WESBOT_CONFIG`` (default ``./wesbot.toml`` when it
exists), one ``[servers.NAME]`` table each::

    [servers.prod]
    url = "https://wes.prod.example.org/ga4gh/wes/v1"
    auth_env = "PROD_WES_AUTH"      # the name of an environment variable holding user:password
    # token_env = "PROD_WES_TOKEN"  # or one holding a bearer token
    log_hosts = ["logs.prod.example.org"]
    cancelers = ["U0123ABCD", "S0OPS"]
    channels = ["C0PROD"]           # channels where this server is the default
    poll_seconds = 30
    run_url = "https://ui.prod.example.org/runs/{run_id}"   # the Open button's page of a run

Secrets never live in the file, only the names of the variables that hold them. A setting left out falls
back to the global variable (``WESBOT_LOG_HOSTS``, ``WESBOT_CANCELERS``, ``WESBOT_POLL_SECONDS``,
``WESBOT_RUN_URL``).
:func:`load_servers` reports every problem as one line naming the file, the server and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cancel import parse_cancelers
from .config import _check_url, _Reader, _wes_credentials, _wes_url, parse_owner_tag, parse_run_url, parse_user_password
from .wes.logs import parse_allowed_hosts

DEFAULT_CONFIG = "wesbot.toml"
DEFAULT_NAME = "default"
ENVIRONMENT = "environment"  # ServerConfig.source of the server from WES_URL

SERVER_NAME = re.compile(r"[a-z0-9-]{1,20}")
NAME_RULE = "a server name is 1 to 20 of a-z, 0-9 and -"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
POLL_RANGE = (0.1, 86400.0)  # WESBOT_POLL_SECONDS's

_KEYS = ("url", "auth_env", "token_env", "log_hosts", "cancelers", "channels", "poll_seconds", "run_url",
         "owner_tag")
# Keys that would hold a secret: refused, with where the secret goes instead.
_SECRET_KEYS = {"auth": "auth_env", "password": "auth_env", "user": "auth_env", "token": "token_env",
                "bearer": "token_env"}


class UnknownServer(LookupError):
    """No configured server has this name; the message lists the names that are."""

    def __init__(self, name: str, names: list[str]) -> None:
        super().__init__(f"no WES server is named {name[:40]!r}: the servers are {', '.join(names)}")
        self.name = name


@dataclass(frozen=True, kw_only=True)
class ServerDefaults:
    """The global settings each server falls back to."""

    log_hosts: frozenset[str] = frozenset()
    cancelers: tuple[str, ...] = ()
    poll_seconds: float = 30.0
    run_url: str | None = None
    owner_tag: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """One WES server: where it is, its credentials and its own settings."""

    name: str
    url: str
    # Secrets are left out of repr() so that a logged ServerConfig leaks nothing.
    auth: tuple[str, str] | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    log_hosts: frozenset[str] = frozenset()
    cancelers: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    poll_seconds: float = 30.0
    # The template of a run's page ("https://ui.example.org/runs/{run_id}"), for the Open button; None: none.
    run_url: str | None = None
    # The run tag naming who launched a run (owner_tag, WESBOT_OWNER_TAG): whom its messages mention; None: nobody.
    owner_tag: str | None = None
    # Where it was configured: ENVIRONMENT, or the file's name as given (for messages: "check ...").
    source: str = ENVIRONMENT
    # The variable holding its credentials (WES_AUTH, PROD_WES_AUTH ...); None without credentials.
    credential_env: str | None = None

    @property
    def url_name(self) -> str:
        """Where its URL is set, for messages: ``WES_URL`` or ``wesbot.toml: servers.prod.url``."""
        return "WES_URL" if self.source == ENVIRONMENT else f"{self.source}: servers.{self.name}.url"


def load_servers(env: Mapping[str, str], *, cwd: Path,
                 defaults: ServerDefaults | None = None) -> tuple[list[ServerConfig], list[str]]:
    """``(servers, problems)``: from the file ``WESBOT_CONFIG`` (or ``cwd/wesbot.toml``) when there is one,
    else from ``WES_URL``. Every problem is one line; the servers are only meaningful when there is none."""
    defaults = defaults or ServerDefaults()
    reader = _Reader(env)
    named = reader.get("WESBOT_CONFIG")
    label = named or DEFAULT_CONFIG
    path = (cwd / Path(named).expanduser()) if named else cwd / DEFAULT_CONFIG
    if named is None and not path.is_file():
        return [_from_environment(reader, defaults)], reader.problems
    if reader.get("WES_URL") is not None:
        return [], [f"WES_URL is set and {label} names the servers too: configure the servers in one place, "
                    f"either unset WES_URL (and WES_AUTH/WES_TOKEN) or remove {label}"]
    table = _read_file(path, label, named, reader.problems)
    if table is None:
        return [], reader.problems
    servers = _FileReader(env, label, defaults, reader.problems).servers(table)
    return servers, reader.problems


def _from_environment(reader: _Reader, defaults: ServerDefaults) -> ServerConfig:
    url = _wes_url(reader)
    auth, token = _wes_credentials(reader)
    name = reader.get("WES_NAME") or DEFAULT_NAME
    if not SERVER_NAME.fullmatch(name):
        reader.problems.append(f"WES_NAME: {NAME_RULE} (got {name[:40]!r})")
    return ServerConfig(name=name, url=url, auth=auth, token=token, log_hosts=defaults.log_hosts,
                        cancelers=defaults.cancelers, poll_seconds=defaults.poll_seconds, run_url=defaults.run_url,
                        owner_tag=defaults.owner_tag,
                        credential_env="WES_AUTH" if auth else "WES_TOKEN" if token else None)


def _read_file(path: Path, label: str, named: str | None, problems: list[str]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        problems.append(f"WESBOT_CONFIG: there is no file {str(path)[:200]!r}" if named
                        else f"{label}: the file disappeared while being read")
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{label}: not valid TOML: {str(error).splitlines()[0][:200]}")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{label}: cannot be read ({getattr(error, 'strerror', None) or type(error).__name__})")
    return None


class _FileReader:
    """Reads the ``[servers.NAME]`` tables of one file, appending one line per problem to ``problems``."""

    def __init__(self, env: Mapping[str, str], label: str, defaults: ServerDefaults, problems: list[str]) -> None:
        self.env = env
        self.label = label
        self.defaults = defaults
        self.problems = problems

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{self.label}: {where}: {text}")

    def servers(self, table: dict[str, Any]) -> list[ServerConfig]:
        for key in table:
            if key != "servers":
                self.problem(key, "unknown key: the file holds [servers.NAME] tables only")
        tables = table.get("servers")
        if not isinstance(tables, dict) or not tables:
            self.problem("servers", "no server is named: add a [servers.NAME] table with its url")
            return []
        servers = []
        for name, values in tables.items():
            if not SERVER_NAME.fullmatch(name):
                self.problem(f"servers.{name[:40]}", NAME_RULE)
            elif not isinstance(values, dict):
                self.problem(f"servers.{name}", "must be a table: [servers.NAME] with url = ...")
            else:
                servers.append(self.server(name, values))
        self.check_channels(servers)
        return servers

    def server(self, name: str, values: dict[str, Any]) -> ServerConfig:
        where = f"servers.{name}"
        for key in values:
            if key in _SECRET_KEYS:
                self.problem(f"{where}.{key}", "secrets never go in the file: put the secret in an environment "
                             f"variable and name it with {_SECRET_KEYS[key]}")
            elif key not in _KEYS:
                self.problem(f"{where}.{key[:40]}", f"unknown key (the keys are {', '.join(_KEYS)})")
        url = self.string(where, values, "url")
        if "url" not in values:
            self.problem(f"{where}.url", "is missing: the base URL of the WES API, e.g. "
                         "https://wes.example.org/ga4gh/wes/v1")
        elif url is not None:
            url = _check_url(f"{self.label}: {where}.url", url, self.problems, secrets="auth_env or token_env")
        auth, token, credential_env = self.credentials(where, values)
        defaults = self.defaults
        return ServerConfig(
            name=name, url=url or "", auth=auth, token=token, source=self.label, credential_env=credential_env,
            log_hosts=self.listed(where, values, "log_hosts", parse_allowed_hosts, defaults.log_hosts),
            cancelers=self.listed(where, values, "cancelers", parse_cancelers, defaults.cancelers),
            channels=self.listed(where, values, "channels", _parse_channels, ()),
            poll_seconds=self.poll_seconds(where, values),
            run_url=self.text(where, values, "run_url", parse_run_url, defaults.run_url),
            owner_tag=self.text(where, values, "owner_tag", parse_owner_tag, defaults.owner_tag),
        )

    def string(self, where: str, values: dict[str, Any], key: str) -> str | None:
        value = values.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(f"{where}.{key}", f"must be a string (got {_type_name(value)})")
            return None
        if not value.strip():
            self.problem(f"{where}.{key}", "is empty")
            return None
        return value.strip()

    def credentials(self, where: str, values: dict[str, Any]) -> tuple[tuple[str, str] | None, str | None,
                                                                        str | None]:
        """``(auth, token, the variable's name)`` from the variables named by auth_env or token_env."""
        auth_env = self.variable_name(where, values, "auth_env")
        token_env = self.variable_name(where, values, "token_env")
        if auth_env and token_env:
            self.problem(where, "auth_env and token_env are both set: set only one of them")
            return None, None, None
        variable = auth_env or token_env
        if variable is None:
            return None, None, None
        raw = self.env.get(variable, "").strip()
        if not raw:
            self.problem(f"{where}.{'auth_env' if auth_env else 'token_env'}", f"{variable} is not set")
            return None, None, None
        if token_env:
            return None, raw, variable
        auth = parse_user_password(raw)
        if auth is None:
            self.problem(f"{where}.auth_env", f"{variable} must be user:password, as in curl --user")
        return auth, None, variable

    def variable_name(self, where: str, values: dict[str, Any], key: str) -> str | None:
        name = self.string(where, values, key)
        if name is not None and not _ENV_NAME.fullmatch(name):
            # Never echo it: a secret written here by mistake would end up in the log.
            self.problem(f"{where}.{key}", "must be the name of an environment variable (letters, digits and _), "
                         "not the secret itself")
            return None
        return name

    def listed(self, where: str, values: dict[str, Any], key: str, parse: Callable[[str | None], Any],
               default: Any) -> Any:
        """A list of strings, read by ``parse`` (the global variable's parser) as if comma-separated."""
        value = values.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
            self.problem(f"{where}.{key}", f"must be a list of strings, e.g. [\"a\", \"b\"] (got {_type_name(value)})")
            return default
        try:
            return parse(",".join(value))
        except ValueError as error:
            self.problem(f"{where}.{key}", str(error))
            return default

    def poll_seconds(self, where: str, values: dict[str, Any]) -> float:
        value = values.get("poll_seconds")
        if value is None:
            return self.defaults.poll_seconds
        low, high = POLL_RANGE
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            self.problem(f"{where}.poll_seconds", f"must be a number from {low:g} to {high:g} (got {value!r:.20})")
            return self.defaults.poll_seconds
        return float(value)

    def text(self, where: str, values: dict[str, Any], key: str, parse: Callable[[str | None], str | None],
             default: str | None) -> str | None:
        """A string setting, read by ``parse`` (the global variable's parser), else the global one."""
        if key not in values:
            return default
        value = values[key]
        if not isinstance(value, str):
            self.problem(f"{where}.{key}", f"must be a string (got {_type_name(value)})")
            return default
        try:
            return parse(value)
        except ValueError as error:
            self.problem(f"{where}.{key}", str(error))
            return default

    def check_channels(self, servers: list[ServerConfig]) -> None:
        """A channel has one default server."""
        owner: dict[str, str] = {}
        for server in servers:
            for channel in server.channels:
                if channel in owner:
                    self.problem(f"servers.{server.name}.channels", f"{channel} is already the default channel of "
                                 f"servers.{owner[channel]}: a channel has one default server")
                else:
                    owner[channel] = server.name


def _parse_channels(value: str | None) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    for entry in ids:
        if not _CHANNEL_ID.fullmatch(entry):
            raise ValueError(f"{entry[:40]!r} is not a Slack channel id (C…, as in the channel's details)")
    return ids


def _type_name(value: object) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
