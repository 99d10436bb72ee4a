"""Which runs were unfurled in which channel, and when (SQLite), per WES server: a run's link unfurls at most
once per channel per :data:`WINDOW` seconds (GitHub's app has the same rule), across restarts and across
processes sharing the database."""

from __future__ import annotations

from .base import Store

# Half an hour: a run pasted again in the same channel within it is not unfurled again.
WINDOW = 1800.0
# How many expired rows one claim deletes, so that a claim stays cheap however many have piled up.
PRUNE_BATCH = 100


class Unfurls:
    def __init__(self, store: Store) -> None:
        self.store = store

    def claim(self, run_id: str, channel_id: str, *, now: float, window: float = WINDOW) -> bool:
        """Take the right to unfurl ``run_id`` in ``channel_id`` now: True when it was not unfurled there in the
        last ``window`` seconds (the claim is then recorded), False otherwise. Atomic: of two processes
        claiming at once, one gets True. A claim stored more than ``window`` ahead of ``now`` (the wall clock
        was set back) no longer counts. Expired rows of this server go in the same transaction, a batch at a
        time."""
        with self.store.transaction() as db:
            server_id = self.store.server_id
            db.execute(
                "DELETE FROM unfurls WHERE rowid IN (SELECT rowid FROM unfurls WHERE server_id = ? AND at <= ? "
                f"LIMIT {PRUNE_BATCH})", [server_id, now - window])
            return db.execute(
                "INSERT INTO unfurls (server_id, run_id, channel_id, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (server_id, run_id, channel_id) DO UPDATE SET at = excluded.at "
                "WHERE unfurls.at <= ? OR unfurls.at > ?",
                [server_id, run_id, channel_id, now, now - window, now + window]).rowcount == 1

    def release(self, run_id: str, channel_id: str, *, at: float) -> None:
        """Give back the claim made at ``at`` (nothing was unfurled after all: an unknown run, a server that
        cannot be read), so that the next link to the run may unfurl; a later claim is left alone."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM unfurls WHERE server_id = ? AND run_id = ? AND channel_id = ? AND at = ?",
                       [self.store.server_id, run_id, channel_id, at])
