"""Issue 9, end to end: after ``kill -9``, a process restarted on the same host takes the lease at once,
instead of waiting out the dead one's period. Two real processes, one real SQLite file."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wesbot.store.watch import WatchStore

LEASE = "watcher"

# Holds the lease for ten minutes, says so, and sleeps: only SIGKILL will end it early.
HOLDER = """
import sys, time
from wesbot.store.watch import WatchStore
store = WatchStore(sys.argv[1])
assert store.leases.acquire("watcher", "crashed", now=time.time(), period=600)
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process on this host that holds the lease, and is stopped in any case at the end."""
    args = [sys.executable, "-c", HOLDER, str(tmp_path / "w.db")]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:  # closes the pipe, reaps the child
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
            yield proc
        finally:
            proc.kill()


def test_a_restart_on_the_same_host_takes_over_from_a_killed_holder_at_once(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    store = WatchStore(tmp_path / "w.db")
    assert not store.leases.acquire(LEASE, "restarted", now=time.time(), period=30)  # alive: it keeps the lease
    info = store.leases.info(LEASE)
    assert info is not None and (info.owner, info.pid) == ("crashed", holder.pid)
    holder.kill()  # kill -9
    holder.wait()  # reaped (by systemd, a shell, or here), so its pid is gone
    started = time.monotonic()
    assert store.leases.acquire(LEASE, "restarted", now=time.time(), period=30)  # 600 s before the fix
    assert time.monotonic() - started < 1
    info = store.leases.info(LEASE)
    assert info is not None and (info.owner, info.pid) == ("restarted", store.leases.pid)
