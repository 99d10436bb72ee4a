"""manifest.yml: valid against the community schema, and every command and button it enables has a listener."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
import yaml
from slack_bolt import App, BoltRequest, BoltResponse

from tests.fakes.spec import repo_root, shared_dir
from wesbot.commands import SUBCOMMANDS
from wesbot.slack.app import ALL_ACTIONS, COMMANDS, Deps, register

MANIFEST = repo_root() / "manifest.yml"


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return data


def schema_path() -> Path:
    path = shared_dir() / "slack-manifest-schema" / "slack-app-manifest.schema.json"
    if not path.exists():
        message = f"{path} not found: manifest validation needs ../shared next to the project"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_manifest_is_valid_against_the_schema() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema)
    errors = sorted(validator.iter_errors(manifest()), key=str)
    assert errors == [], [e.message for e in errors]


def test_the_schema_does_reject_a_broken_manifest() -> None:
    """The validation above can fail: a typo in a key is caught."""
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    broken = manifest()
    broken["settings"]["socket_mode_enabeld"] = True
    assert list(jsonschema.Draft4Validator(schema).iter_errors(broken))


def test_socket_mode_by_default_and_interactivity_on() -> None:
    settings = manifest()["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True


def test_scopes_are_only_what_wesbot_uses() -> None:
    assert manifest()["oauth_config"]["scopes"]["bot"] == [
        "commands", "chat:write", "chat:write.public", "files:write", "channels:history", "groups:history",
        "channels:read", "groups:read", "im:read", "mpim:read", "usergroups:read", "users:read", "links:read",
        "links:write"]
    # Every scope has its reason written next to it.
    text = MANIFEST.read_text(encoding="utf-8")
    comments = [row.strip() for row in text.splitlines() if row.strip().startswith("#")]
    for scope in manifest()["oauth_config"]["scopes"]["bot"]:
        assert any(f"# {scope}" in c or f" {scope}:" in c or f"# {scope}:" in c for c in comments), scope


def _listeners() -> list[Any]:
    app = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        register(app, Deps.single(wes=None, host="h", pool=pool))  # type: ignore[arg-type]
    return list(app._listeners)


def _matched(body: str) -> bool:
    """True when one of wesbot's listeners matches this request body."""
    request = BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
    return any(listener.matches(req=request, resp=BoltResponse(status=200)) for listener in _listeners())


def test_every_declared_command_has_a_listener() -> None:
    declared = [c["command"] for c in manifest()["features"]["slash_commands"]]
    assert declared and set(declared) == set(COMMANDS)
    for command in declared:
        assert _matched(urlencode({"command": command, "text": "help", "team_id": "T1", "user_id": "U1"})), command
    assert not _matched(urlencode({"command": "/other", "text": "", "team_id": "T1", "user_id": "U1"}))


def test_every_button_action_has_a_listener() -> None:
    for action in (*ALL_ACTIONS, "wes_run:details", "wes_run:tasks", "wes_run:cancel"):
        payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
                   "actions": [{"action_id": action, "block_id": "b", "value": "status r", "type": "button"}]}
        assert _matched(urlencode({"payload": json.dumps(payload)})), action


def test_usage_hint_names_every_subcommand() -> None:
    hint = manifest()["features"]["slash_commands"][0]["usage_hint"]
    for sub in SUBCOMMANDS:
        assert sub.name in hint, sub.name
