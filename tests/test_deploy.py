"""deploy/wesbot.service: the settings an operator relies on, and `systemd-analyze verify` where it exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.spec import repo_root
from wesbot.cli import WATCHER_JOIN_SECONDS, build_parser
from wesbot.server import DRAIN_SECONDS

UNIT = repo_root() / "deploy" / "wesbot.service"
STOP_PROMISE_SECONDS = 5  # the README and `wesbot serve --help`: SIGTERM stops it within 5 seconds


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as ``{section: {key: [values, in order]}}``: keys may repeat (SystemCallFilter=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a key=value line in a section: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values and len(values) == 1, (section, key, values)
    return values[0]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_it_runs_wesbot_serve_from_the_venv_with_the_env_file(unit: dict[str, dict[str, list[str]]]) -> None:
    assert one(unit, "Service", "Type") == "simple"
    exec_start = one(unit, "Service", "ExecStart")
    assert exec_start == "/opt/wesbot/.venv/bin/wesbot serve"
    # the subcommand it runs exists
    assert build_parser().parse_args(exec_start.split()[1:]).command == "serve"
    assert one(unit, "Service", "EnvironmentFile") == "/etc/wesbot/env"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert "network-online.target" in one(unit, "Unit", "After")
    assert "network-online.target" in one(unit, "Unit", "Wants")


def test_a_dedicated_user_and_the_database_in_the_state_directory(unit: dict[str, dict[str, list[str]]]) -> None:
    user = one(unit, "Service", "User")
    assert user not in ("", "root", "0")
    state = one(unit, "Service", "StateDirectory")
    assert state == "wesbot"
    environment = dict(item.split("=", 1) for item in unit["Service"]["Environment"])
    db = Path(environment["WESBOT_DB"])
    assert db == Path("/var/lib") / state / "wesbot.db"
    assert str(db.parent) in one(unit, "Service", "ReadWritePaths").split()
    assert one(unit, "Service", "WorkingDirectory") == str(db.parent)  # a stray relative path lands there too


def test_restarted_on_failure_and_given_time_to_stop(unit: dict[str, dict[str, list[str]]]) -> None:
    assert one(unit, "Service", "Restart") == "on-failure"
    assert seconds(one(unit, "Service", "RestartSec")) >= 1
    assert "RestartPreventExitStatus" not in unit["Service"]  # exit 2 includes "Slack unreachable": retry it
    stop = seconds(one(unit, "Service", "TimeoutStopSec"))
    assert DRAIN_SECONDS + WATCHER_JOIN_SECONDS <= STOP_PROMISE_SECONDS
    assert stop >= 3 * STOP_PROMISE_SECONDS  # comfortably above wesbot's own SIGTERM drain
    assert one(unit, "Service", "KillSignal") == "SIGTERM"


@pytest.mark.parametrize(("key", "value"), [
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("CapabilityBoundingSet", ""),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
])
def test_hardening(unit: dict[str, dict[str, list[str]]], key: str, value: str) -> None:
    assert one(unit, "Service", key) == value


def test_system_calls_are_filtered(unit: dict[str, dict[str, list[str]]]) -> None:
    filters = unit["Service"]["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert any(f.startswith("~") and "@privileged" in f for f in filters)


def test_systemd_analyze_verify_finds_nothing_wrong_with_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (install systemd to check the unit's syntax)")
    # verify insists that ExecStart's program exists: point it at this Python for the check only.
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={sys.executable} -m wesbot", UNIT.read_text(encoding="utf-8"))
    copy = tmp_path / "wesbot.service"
    copy.write_text(text, encoding="utf-8")
    out = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    # Only what systemd says about the unit's own text ("FILE:LINE: Unknown key ...") counts: a container without
    # systemd as PID 1, or a missing user or env file on this machine, are not the unit's fault.
    about_the_text = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith(f"{copy}:")]
    assert about_the_text == [], out.stdout + out.stderr


def test_the_verify_check_does_catch_a_typo(tmp_path: Path) -> None:
    """The filter above is not too loose: a misspelt key is reported as a line about the unit's text."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (install systemd to check the unit's syntax)")
    copy = tmp_path / "typo.service"
    copy.write_text(f"[Service]\nExecStart={sys.executable}\nProtectSytem=strict\n", encoding="utf-8")
    out = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    assert any(line.startswith(f"{copy}:3:") for line in (out.stdout + out.stderr).splitlines()), out.stderr
