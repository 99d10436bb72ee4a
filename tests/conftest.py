"""Fixtures shared by the test modules: a fake WES server, a fake Slack Web API and a working directory,
each fresh for one test. A module that needs another kind (module-scoped, with auth) defines its own."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest

from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes


@pytest.fixture
def wes() -> Iterator[FakeWes]:
    """A fake WES 1.1 server on loopback; every answer it built the spec's way must have conformed."""
    with FakeWes() as fake:
        yield fake
        assert fake.spec_violations == []


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API on loopback (point SLACK_API_URL at ``slack.api_url``)."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def workdir() -> Iterator[str]:
    """A temporary directory for a bot process's database and log."""
    with tempfile.TemporaryDirectory(prefix="wesbot-test-") as path:
        yield path
