"""Fixtures shared by the test modules, each fresh for one test: a fake WES server and a fake Slack Web API on
loopback, a working directory; for the watcher's in-process tests, a fake clock, a store on a file and a
recording poster. A module that needs another kind (module-scoped, with auth) defines its own."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_wes import FakeWes
from tests.fakes.watching import FakeClock, RecordingPoster
from wesbot.store.watch import WatchStore


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


@pytest.fixture
def clock() -> FakeClock:
    """Wall and monotonic time that move only when the test says (``advance``, ``jump_wall``)."""
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> WatchStore:
    """The watcher's store on a fresh SQLite file."""
    return WatchStore(tmp_path / "w.db")


@pytest.fixture
def poster() -> RecordingPoster:
    """A Slack poster that records every post and answers like Slack, or as its ``script`` says."""
    return RecordingPoster()
