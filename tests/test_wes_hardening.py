"""Hardening of WesClient against hostile WES servers, end to end against the loopback fake WES."""

from __future__ import annotations

import base64

import pytest

from tests.fakes.fake_wes import FakeWes, Reply
from wesbot.config import Settings
from wesbot.wes.client import WesClient
from wesbot.wes.errors import WesHTTPError, WesProtocolError

USER, PASSWORD = "user", "secretpass"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with FakeWes(validate=False) as wes:
        wes.add_run("r1", "RUNNING")
        wes.overrides["/runs/r1/status"] = Reply(200, b"[" * 100_000 + b"]" * 100_000, "application/json")
        with WesClient(wes.url, retries=0) as client, pytest.raises(WesProtocolError, match="nested too deeply"):
            client.get_status("r1")


def test_echoed_basic_authorization_is_masked() -> None:
    with FakeWes(validate=False, auth=(USER, PASSWORD)) as wes:
        wes.add_run("r1", "RUNNING")
        echo = f"bad header: Authorization: Basic {BASIC}"
        wes.overrides["/runs/r1/status"] = Reply(500, echo.encode(), "text/plain")
        with WesClient(wes.url, auth=(USER, PASSWORD), retries=0) as client, \
                pytest.raises(WesHTTPError) as info:
            client.get_status("r1")
    message = str(info.value)
    assert "500" in message and "***" in message
    assert BASIC not in message and PASSWORD not in message


def test_settings_secrets_include_the_base64_form() -> None:
    settings = Settings(wes_url="http://127.0.0.1/", wes_auth=(USER, PASSWORD))
    assert BASIC in settings.secrets()
    assert PASSWORD in settings.secrets()
