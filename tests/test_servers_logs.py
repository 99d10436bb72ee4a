"""Credentials never cross servers: each server's log reader, as `wesbot serve` builds it, sends its credentials
to its own WES host only, reads its own log hosts without them, and refuses a host listed for another server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_wes import FakeWes
from wesbot.assemble import log_fetcher
from wesbot.config import Settings, load_settings
from wesbot.wes.logs import LogUnavailable

PASSWORD = "lab-secret-pw"
TOKEN = "cloud-secret-token"


@pytest.fixture
def servers() -> Iterator[tuple[FakeWes, FakeWes, FakeWes]]:
    """lab (basic auth), cloud (bearer token), and a log host that lab lists."""
    with FakeWes(auth=("alice", PASSWORD)) as lab, FakeWes(auth=TOKEN) as cloud, FakeWes() as logs:
        yield lab, cloud, logs


def settings_for(tmp_path: Path, lab: FakeWes, cloud: FakeWes, logs: FakeWes) -> Settings:
    logs_host = logs.root_url.removeprefix("http://")
    (tmp_path / "wesbot.toml").write_text(
        f'[servers.lab]\nurl = "{lab.url}"\nauth_env = "LAB_AUTH"\nlog_hosts = ["{logs_host}"]\n\n'
        f'[servers.cloud]\nurl = "{cloud.url}"\ntoken_env = "CLOUD_TOKEN"\n', encoding="utf-8")
    return load_settings({"LAB_AUTH": f"alice:{PASSWORD}", "CLOUD_TOKEN": TOKEN}, cwd=tmp_path)


def authorizations(server: FakeWes) -> list[str | None]:
    return [next((v for k, v in r.headers.items() if k.lower() == "authorization"), None) for r in server.requests]


def test_each_server_reads_its_own_logs_with_its_own_credentials_only(
        servers: tuple[FakeWes, FakeWes, FakeWes], tmp_path: Path) -> None:
    lab, cloud, logs = servers
    settings = settings_for(tmp_path, lab, cloud, logs)
    on_logs = logs.add_file("task.err", "line one\nlab's task failed\n")
    on_lab = lab.add_file("run.err", "lab's own log\n")
    on_cloud = cloud.add_file("run.err", "cloud's own log\n")
    with log_fetcher(settings, settings.server("lab")) as lab_logs, \
            log_fetcher(settings, settings.server("cloud")) as cloud_logs:
        assert "lab's own log" in lab_logs.tail(on_lab, what="stderr").text
        assert "lab's task failed" in lab_logs.tail(on_logs, what="stderr").text
        assert "cloud's own log" in cloud_logs.tail(on_cloud, what="stderr").text
        # A host listed for lab is not allowed for cloud; lab may not read on cloud's host, nor cloud on lab's.
        for reader, url in ((cloud_logs, on_logs), (lab_logs, on_cloud), (cloud_logs, on_lab)):
            with pytest.raises(LogUnavailable, match="not allowed"):
                reader.tail(url, what="stderr")
    assert set(authorizations(lab)) == {lab_auth()}
    assert set(authorizations(cloud)) == {f"Bearer {TOKEN}"}
    assert set(authorizations(logs)) == {None}  # another host: no credentials at all


def lab_auth() -> str:
    return "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
