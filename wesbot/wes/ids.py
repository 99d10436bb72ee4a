"""Run and task ids: which ones may be sent, how they are sent, and how they are shown.

An id comes from a user (or from a server) and may be hostile. :func:`check_id` refuses one that cannot be
sent, and :func:`encode_segment` sends the rest as exactly one percent-encoded path segment, so an id such
as ``../service-info`` or ``a/b?c`` never reaches another endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from .errors import InvalidId

MAX_ID_LENGTH = 256
# How much of an id is shown in a message about an invalid id, and in other messages.
SHOWN_INVALID_ID = 40
SHOWN_ID = 64


def show_id(value: str, limit: int = SHOWN_INVALID_ID) -> str:
    """A quoted, printable rendering of an id that may be hostile: control characters escaped, truncated."""
    head = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value[:limit])
    return f"'{head}{'…' if len(value) > limit else ''}'"


def check_id(value: object, kind: str = "run", *, mask: Callable[[str], str] | None = None) -> str:
    """Return ``value`` if it can be sent as a run (or task) id, else raise :class:`InvalidId`.

    ``mask`` hides secrets in the id as it is shown in the message (someone may paste a token).
    """
    if not isinstance(value, str):
        raise InvalidId(f"{type(value).__name__} is not a valid {kind} id: it is not text")
    shown = show_id(mask(value) if mask else value)
    if not value:
        raise InvalidId(f"{shown} is not a valid {kind} id: it is empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidId(f"{shown} is not a valid {kind} id: it is longer than {MAX_ID_LENGTH} characters")
    for ch in value:
        if ch.isspace():
            raise InvalidId(f"{shown} is not a valid {kind} id: it contains whitespace")
        if not ch.isprintable():
            raise InvalidId(f"{shown} is not a valid {kind} id: it contains a control character")
    if value in (".", ".."):
        raise InvalidId(f"{shown} is not a valid {kind} id: it is a relative path")
    return value


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one path segment: ``/``, ``?``, ``#``, ``%``, dot-only ids too."""
    encoded = quote(value, safe="")
    if encoded.strip(".") == "":
        # quote() leaves dots alone, and "." or ".." would be removed as dot segments.
        encoded = encoded.replace(".", "%2E")
    return encoded


def shown_id(value: str) -> str:
    """An id as it appears inside other messages (already checked: printable, no whitespace)."""
    return value if len(value) <= SHOWN_ID else value[: SHOWN_ID - 1] + "…"
