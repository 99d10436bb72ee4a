"""A WES URL whose path is wrong (the /v1 left out) is reported as such, not as "run not found"."""

from __future__ import annotations

from tests.fakes.fake_wes import FakeWes
from wesbot.core import run_text
from wesbot.wes.client import WesClient


def test_a_missing_v1_is_reported_as_a_wrong_url_not_as_an_unknown_run(wes: FakeWes) -> None:
    wes.add_run("r1", "RUNNING")
    with WesClient(wes.url.removesuffix("/v1"), retries=0) as client:
        result = run_text("status r1", client)
    assert not result.ok
    message = result.message  # type: ignore[attr-defined]
    assert "answered 404 for GET /runs" in message and "check that WES_URL is the base URL" in message
    assert "not found" not in message


def test_an_unknown_run_on_a_right_url_is_still_not_found(wes: FakeWes) -> None:
    with WesClient(wes.url, retries=0) as client:
        result = run_text("status nope", client)
    assert "run nope not found on the WES server" in result.message  # type: ignore[attr-defined]
