"""Cancelling a run: who may, the confirmation, the click, and the audit trail.

The one destructive action wesbot offers. It is done quickly, never by accident, and always visibly:
- ``/wes cancel RUN_ID`` (or a Cancel button) shows an ephemeral confirmation (:func:`prompt`);
- the "Cancel run" click (:func:`confirm`) checks again, at click time, who clicked (never what the button
  carries), the run's current state, and whether someone else already cancelled it, then POSTs the cancel
  exactly once (a primary key in SQLite arbitrates double clicks), and tells the channel;
- the watcher follows the run to its end and updates that channel message in place (``follow``).
Every attempt is one audit row.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .format import duration
from .store.cancels import Cancel, CancelStore
from .wes.errors import WesError, WesHTTPError
from .wes.models import RunLog, RunStatus, State, is_terminal, state_label

logger = logging.getLogger("wesbot.cancel")

CANCELER_ID = re.compile(r"^[UWS][A-Z0-9]{1,40}$")
GROUP_TTL = 300.0
DEFAULT_CANCEL_TIMEOUT = 600.0


class Cancelers:
    """Who may cancel: ``WESBOT_CANCELERS`` (user ids U…/W… and user-group ids S…), or anyone when unset.

    Groups are resolved with ``usergroups.users.list`` (scope ``usergroups:read``) and cached for a few
    minutes. If a group cannot be resolved, its members are refused (fail closed) and the reason is logged.
    """

    def __init__(self, ids: tuple[str, ...], resolve_group: Callable[[str], list[str]] | None = None,
                 *, ttl: float = GROUP_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ids = ids
        self._resolve = resolve_group
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def anyone(self) -> bool:
        return not self.ids

    def allowed(self, user_id: str) -> bool:
        if self.anyone or user_id in self.ids:
            return True
        return any(user_id in self._members(group) for group in self.ids if group.startswith("S"))

    def _members(self, group: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(group)
            if cached is not None and cached[0] > now:
                return cached[1]
        members: frozenset[str] = frozenset()
        if self._resolve is not None:
            try:
                members = frozenset(self._resolve(group))
            except Exception as error:
                logger.warning("could not resolve user group %s (%s); its members may not cancel for now", group,
                               type(error).__name__)
                return cached[1] if cached is not None else frozenset()
        with self._lock:
            self._cache[group] = (now + self._ttl, members)
        return members

    def describe(self) -> str:
        """Who may cancel, in mrkdwn (shown only in ephemeral messages, which notify no one)."""
        if self.anyone:
            return "anyone who can use /wes in this workspace"
        names = [f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in self.ids if CANCELER_ID.match(i)]
        return ", ".join(names)


def parse_cancelers(value: str | None) -> tuple[str, ...]:
    """``WESBOT_CANCELERS``: comma-separated ids. Raises ValueError naming a bad entry."""
    if not value or not value.strip():
        return ()
    ids = tuple(part.strip() for part in value.split(",") if part.strip())
    for entry in ids:
        if not CANCELER_ID.match(entry):
            raise ValueError(f"{entry[:40]!r} is not a Slack user id (U…) or user-group id (S…)")
    return ids


@dataclass(frozen=True, kw_only=True)
class CancelView:
    """What a cancel step has to say. ``stage`` picks the message; the rest fills it."""

    stage: str  # prompt | denied | already-finished | already-requested | requested | wes-error | kept
    run_id: str
    state: State = None
    workflow: str | None = None
    running_for: str | None = None
    who_may: str = ""
    by_user: str | None = None
    at: float | None = None
    detail: str | None = None
    # requested: the channel message could not be posted (the reason), so the canceller is told instead
    channel_error: str | None = None


class CancelWes(Protocol):
    """What the cancel flow needs of a WES client (``WesClient`` has all of it)."""

    def get_status(self, run_id: str) -> RunStatus: ...
    def get_run(self, run_id: str) -> RunLog: ...
    def cancel_run(self, run_id: str) -> str | None: ...


def _workflow(wes: CancelWes, run_id: str) -> tuple[str | None, str | None]:
    try:
        run = wes.get_run(run_id)
    except WesError:
        return None, None
    url = run.request.workflow_url
    running = duration(run.run_log.start_time, None) if run.run_log.start_time else None
    return (url.rsplit("/", 1)[-1] if url else None), running


def prompt(wes: CancelWes, *, run_id: str, user_id: str, channel_id: str | None, cancelers: Cancelers,
           store: CancelStore, now: float) -> CancelView:
    """``/wes cancel RUN_ID``: the confirmation, or why there is nothing to confirm. May raise WesError."""
    if not cancelers.allowed(user_id):
        store.audit(now=now, user_id=user_id, channel_id=channel_id, run_id=run_id, state_before=None,
                    outcome="denied")
        return CancelView(stage="denied", run_id=run_id, who_may=cancelers.describe())
    status = wes.get_status(run_id)
    if is_terminal(status.state):
        store.audit(now=now, user_id=user_id, channel_id=channel_id, run_id=run_id,
                    state_before=state_label(status.state), outcome="already-finished")
        return CancelView(stage="already-finished", run_id=run_id, state=status.state)
    workflow, running_for = _workflow(wes, run_id)
    return CancelView(stage="prompt", run_id=run_id, state=status.state, workflow=workflow, running_for=running_for,
                      who_may=cancelers.describe())


def confirm(wes: CancelWes, *, run_id: str, user_id: str, channel_id: str | None, cancelers: Cancelers,
            store: CancelStore, now: float, timeout: float, response_url: str | None,
            announce: Callable[[str], tuple[str | None, str | None]]) -> CancelView:
    """The "Cancel run" click, re-checked now: permission, current state, a cancel already in flight.

    ``announce(state_before)`` posts the in-channel message and returns (its ts, or the error why not).
    Never raises: every outcome is a :class:`CancelView` and an audit row.
    """
    if not cancelers.allowed(user_id):
        store.audit(now=now, user_id=user_id, channel_id=channel_id, run_id=run_id, state_before=None,
                    outcome="denied")
        return CancelView(stage="denied", run_id=run_id, who_may=cancelers.describe())
    try:
        status = wes.get_status(run_id)
    except WesError as error:
        store.audit(now=now, user_id=user_id, channel_id=channel_id, run_id=run_id, state_before=None,
                    outcome="wes-error", wes_status=getattr(error, "status_code", None), detail=str(error))
        return CancelView(stage="wes-error", run_id=run_id, detail=str(error))
    before = state_label(status.state)
    if is_terminal(status.state):
        store.audit(now=now, user_id=user_id, channel_id=channel_id, run_id=run_id, state_before=before,
                    outcome="already-finished")
        return CancelView(stage="already-finished", run_id=run_id, state=status.state)
    existing = store.claim(run_id=run_id, user_id=user_id, channel_id=channel_id, state_before=before, now=now,
                           deadline=now + timeout, response_url=response_url)
    if existing is not None:
        store.audit(now=now, user_id=user_id, channel_id=channel_id, run_id=run_id, state_before=before,
                    outcome="already-requested", detail=f"by {existing.user_id}")
        return CancelView(stage="already-requested", run_id=run_id, state=status.state, by_user=existing.user_id,
                          at=existing.requested_at)
    claim = store.get(run_id)
    audit_id = claim.audit_id if claim is not None and claim.audit_id else 0
    # From here on the claim and its "sending" audit row exist: if this process dies, recover() finishes.
    try:
        wes.cancel_run(run_id)
    except WesError as error:
        store.release(run_id)
        code = error.status_code if isinstance(error, WesHTTPError) else None
        store.set_audit_outcome(audit_id, "wes-error", str(error), wes_status=code)
        return CancelView(stage="wes-error", run_id=run_id, state=status.state, detail=str(error))
    store.set_audit_outcome(audit_id, "requested")
    ts, channel_error = announce(before)
    store.requested(run_id, audit_id=audit_id, now=now, message_ts=ts, message_error=channel_error)
    return CancelView(stage="requested", run_id=run_id, state=status.state, by_user=user_id, at=now,
                      channel_error=channel_error)


RESTARTED = "wesbot restarted while sending the cancel"


def recover(store: CancelStore, now: float, after: float = 120.0) -> int:
    """Take over the cancels a dead process started: claimed (and audited "sending") but never followed.

    Whether WES got the POST is not known, so the attempt is recorded as requested and followed like any
    other (the follow-up reads the run's state and records confirmed-canceled, no-effect…); if the channel
    was never told, delivery tells it (``CancelStore.to_announce``). A claim younger than ``after`` seconds
    may still be in flight (every WES call ends within ``WESBOT_WES_TIMEOUT``): left alone.
    """
    recovered = 0
    for cancel in store.stale_claims(now - after):
        if not store.adopt(cancel.run_id, now=now, message_ts=cancel.message_ts, message_error=cancel.message_error):
            continue
        if cancel.audit_id:
            store.set_audit_outcome(cancel.audit_id, "requested", RESTARTED)
        else:  # claimed before audit rows were written with the claim
            store.audit(now=cancel.requested_at, user_id=cancel.user_id, channel_id=cancel.channel_id,
                        run_id=cancel.run_id, state_before=cancel.state_before, outcome="requested", detail=RESTARTED)
        recovered += 1
    return recovered


def follow(cancel: Cancel, status: RunStatus | None, now: float) -> tuple[str, str | None] | None:
    """Decide a followed cancel: (outcome, final state) once the run ended or the deadline passed, else None."""
    state = None if status is None else status.state
    if status is not None and is_terminal(state):
        return ("confirmed-canceled" if str(state) == "CANCELED" else "ended-otherwise"), state_label(state)
    if now >= cancel.deadline:
        return "no-effect", (state_label(state) if status is not None else None)
    return None
