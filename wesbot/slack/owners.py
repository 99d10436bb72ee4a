"""The person who started a run: named by a run tag (``WESBOT_OWNER_TAG``, e.g. ``owner``) holding an email
address or a Slack user id, and mentioned in channel-watch notifications, deadline alerts and reports.

Jobs never call Slack, so a job writes an email address as a placeholder (:func:`owner_mention`), and delivery
turns it into a mention just before posting (:func:`resolve_owners`, with ``users.lookupByEmail``, cached by
:class:`OwnerDirectory`). An address that matches no Slack user is named as text, never guessed. The placeholder
cannot come from WES text: every ``<`` from WES is escaped before it reaches a message.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .blocks import code, escape

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,40}")
_EMAIL = re.compile(r"[^@\s<>|&*_~`]{1,64}@[^@\s<>|&*_~`]{1,190}\.[A-Za-z]{2,24}")
_TOKEN = re.compile(r"<wesbot-owner\|([^<>|]{1,260})>")
CACHE_SECONDS = 3600.0


def owner_of(tags: Mapping[str, str] | None, owner_tag: str | None) -> str | None:
    """The raw value of the run's owner tag, when the setting is on and the run has it."""
    if not owner_tag or not tags:
        return None
    value = tags.get(owner_tag)
    return value.strip()[:260] if isinstance(value, str) and value.strip() else None


def owner_mention(value: str | None) -> str | None:
    """How a message names the owner: a Slack user id as a mention, an email address as a placeholder that
    delivery resolves, anything else as escaped text."""
    if value is None:
        return None
    if _USER_ID.fullmatch(value):
        return f"<@{value}>"
    if _EMAIL.fullmatch(value):
        return f"<wesbot-owner|{value}>"
    return code(value, 80)


def resolve_owners(message: dict[str, Any], lookup: Callable[[str], str | None] | None) -> dict[str, Any]:
    """``message`` with every owner placeholder replaced: by ``<@U…>`` when ``lookup`` finds the address, else
    by the address as text."""
    def one(found: re.Match[str]) -> str:
        email = found.group(1)
        user = lookup(email) if lookup is not None else None
        return f"<@{user}>" if user and _USER_ID.fullmatch(user) else escape(email)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _TOKEN.sub(one, value) if "<wesbot-owner|" in value else value
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        return value

    return walk(message)  # type: ignore[no-any-return]


class OwnerDirectory:
    """Email address → Slack user id, asked of Slack (``find(email)``) at most once an hour per address, misses
    included. Thread-safe."""

    def __init__(self, find: Callable[[str], str | None], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._find = find
        self._clock = clock
        self._known: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, email: str) -> str | None:
        key = email.lower()
        now = self._clock()
        with self._lock:
            cached = self._known.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        user = self._find(email)
        with self._lock:
            self._known[key] = (now, user)
        return user
