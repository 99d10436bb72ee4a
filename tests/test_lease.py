"""The watcher's lease: one holder at a time, and a restart on the same host takes over from a dead pid at once.

Every lease below is taken at t=0 for 30 s; "before expiry" asks at t=1, "after expiry" at t=31. This host is
"here" and this process pid 200; pid 100 is dead, every other pid alive.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlite_utils import Database

from wesbot.store import migrations
from wesbot.store.leases import LeaseHolder, Leases, pid_alive, this_host
from wesbot.store.watch import WatchStore

LEASE, PERIOD = "watcher", 30.0
HERE, ME, DEAD = "here", 200, 100

MakeLeases = Callable[..., Leases]


@pytest.fixture
def store() -> WatchStore:
    return WatchStore(memory=True)


@pytest.fixture
def leases(store: WatchStore) -> MakeLeases:
    """Leases over the test's database, as seen from one process: this one unless told otherwise."""

    def make(host: str = HERE, pid: int = ME) -> Leases:
        return Leases(lambda: store.db, store.transaction, host=host, pid=pid, alive=lambda p: p != DEAD)

    return make


def written_by_an_older_wesbot(store: WatchStore, owner: str, expires_at: float) -> None:
    """What wesbot wrote before leases had a host and a pid."""
    with store.transaction() as db:
        db.execute("INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)", [LEASE, owner, expires_at])


# (why, the holder's host and pid or None for no holder, who asks, when, taken?)
RULES = [
    ("a free lease is taken", None, "me", 1, True),
    ("the holder renews its own lease", (HERE, ME), "holder", 1, True),
    ("another live process on this host keeps it", (HERE, 101), "me", 1, False),
    ("... until it expires", (HERE, 101), "me", 31, True),
    ("a dead pid on this host is taken over at once", (HERE, DEAD), "me", 1, True),
    ("a holder on another host keeps it, however dead its pid looks here", ("there", DEAD), "me", 1, False),
    ("... until it expires", ("there", DEAD), "me", 31, True),
    ("an earlier owner in this same process keeps it (our pid is alive)", (HERE, ME), "me", 1, False),
]


@pytest.mark.parametrize(("why", "holder", "asker", "now", "taken"), RULES, ids=[r[0] for r in RULES])
def test_who_may_take_the_lease(leases: MakeLeases, why: str, holder: tuple[str, int] | None, asker: str,
                                now: float, taken: bool) -> None:
    if holder is not None:
        host, pid = holder
        assert leases(host, pid).acquire(LEASE, "holder", now=0, period=PERIOD)
    assert leases().acquire(LEASE, asker, now=now, period=PERIOD) is taken
    expected = asker if taken else "holder"
    assert leases().holder(LEASE) == (expected, now + PERIOD if taken else PERIOD)


@pytest.mark.parametrize(("now", "taken"), [(1, False), (29.9, False), (31, True)])
def test_a_row_from_an_older_wesbot_gets_its_full_period(store: WatchStore, leases: MakeLeases, now: float,
                                                         taken: bool) -> None:
    written_by_an_older_wesbot(store, "old", expires_at=PERIOD)
    assert leases().acquire(LEASE, "me", now=now, period=PERIOD) is taken


def test_every_acquire_and_renewal_records_the_holders_host_and_pid(store: WatchStore, leases: MakeLeases) -> None:
    written_by_an_older_wesbot(store, "me", expires_at=PERIOD)
    assert leases().acquire(LEASE, "me", now=1, period=PERIOD)  # renewing an old row fills them in
    assert leases().info(LEASE) == LeaseHolder(owner="me", expires_at=31, host=HERE, pid=ME)
    assert leases("here", 300).acquire(LEASE, "me", now=2, period=PERIOD)  # the same owner, restarted elsewhere
    assert leases().info(LEASE) == LeaseHolder(owner="me", expires_at=32, host=HERE, pid=300)


def test_a_refused_acquire_changes_nothing(leases: MakeLeases) -> None:
    assert leases("there", 7).acquire(LEASE, "holder", now=0, period=PERIOD)
    assert not leases().acquire(LEASE, "me", now=1, period=PERIOD)
    assert leases().info(LEASE) == LeaseHolder(owner="holder", expires_at=PERIOD, host="there", pid=7)


def test_release_frees_the_lease_at_once_but_only_for_its_holder(leases: MakeLeases) -> None:
    assert leases("there", 7).acquire(LEASE, "holder", now=0, period=PERIOD)
    leases().release(LEASE, "me")  # not ours: nothing happens
    assert not leases().acquire(LEASE, "me", now=1, period=PERIOD)
    leases("there", 7).release(LEASE, "holder")
    assert leases().acquire(LEASE, "me", now=1, period=PERIOD)


def test_no_holder_yet() -> None:
    store = WatchStore(memory=True)
    assert store.leases.holder(LEASE) is None and store.leases.info(LEASE) is None


def test_the_store_records_this_host_and_process() -> None:
    store = WatchStore(memory=True)
    assert store.leases.acquire(LEASE, "me", now=0, period=PERIOD)
    assert store.leases.holder(LEASE) == ("me", PERIOD)
    holder = store.leases.info(LEASE)
    assert holder == LeaseHolder(owner="me", expires_at=PERIOD, host=this_host(), pid=os.getpid())
    assert holder.host is not None and holder.host.startswith(socket.gethostname())
    store.leases.release(LEASE, "me")
    assert store.leases.holder(LEASE) == ("me", 0)


def test_upgrading_keeps_the_old_holder_and_its_full_period(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    old = Database(path)
    migrations.apply(old, stop_before="m005_add_lease_host_and_pid")
    old.execute("INSERT INTO leases (name, owner, expires_at) VALUES (?, 'old', ?)", [LEASE, PERIOD])
    old.conn.commit()
    old.close()
    store = WatchStore(path)
    assert store.leases.info(LEASE) == LeaseHolder(owner="old", expires_at=PERIOD, host=None, pid=None)
    dead_everywhere = Leases(lambda: store.db, store.transaction, alive=lambda pid: False)
    assert not dead_everywhere.acquire(LEASE, "me", now=1, period=PERIOD)


def test_pid_alive_tells_a_running_process_from_a_reaped_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid is gone (a zombie, not yet reaped, would still count as alive)
    assert pid_alive(os.getpid())
    assert not pid_alive(child.pid)
    assert pid_alive(1)  # init: someone else's process (PermissionError) unless we are root, alive either way
    assert pid_alive(0)  # a process group, not a process: cannot tell, so alive


def test_this_host_names_the_pid_namespace_so_containers_sharing_a_host_name_differ() -> None:
    namespace = os.readlink("/proc/self/ns/pid") if os.path.exists("/proc/self/ns/pid") else None
    if namespace is None:
        pytest.skip("no /proc/self/ns/pid on this system: the host name alone names the host")
    assert this_host() == f"{socket.gethostname()} {namespace}"
