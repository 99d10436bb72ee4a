"""The one rule for which forms of a credential are masked, and the one masker.

A secret can reach a message or a log line as it was configured, as ``user:password``, as the base64
that an echoed ``Authorization: Basic`` header shows, or percent-encoded inside a URL. Every one of those
forms is masked, longest first (so ``user:password`` is masked whole). Secrets shorter than
:data:`MIN_MASKED_SECRET` are not: masking every ``a`` in a message would hide the message and protect
nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import quote

MIN_MASKED_SECRET = 4


def basic_credentials(auth: tuple[str, str]) -> str:
    """The value of the ``Authorization`` header for basic auth."""
    pair = f"{auth[0]}:{auth[1]}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def secret_forms(*, auth: tuple[str, str] | None = None, token: str | None = None,
                 others: Iterable[str | None] = ()) -> list[str]:
    """Every form of the given secrets that may show up in text, longest first, each at most once."""
    values = [token, *others]
    if auth is not None and auth[1]:
        pair = f"{auth[0]}:{auth[1]}"
        values += [auth[1], pair, basic_credentials(auth).removeprefix("Basic ")]
    plain = [value for value in values if value]
    forms = plain + [quote(value, safe="") for value in plain]
    return sorted({form for form in forms if len(form) >= MIN_MASKED_SECRET}, key=len, reverse=True)


class Masker:
    """``masker(text)`` is ``text`` with every form of every secret replaced by ``replacement``."""

    def __init__(self, forms: Iterable[str], replacement: str = "***") -> None:
        self._forms = sorted(set(forms), key=len, reverse=True)
        self._replacement = replacement

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, self._replacement)
        return text

    def __bool__(self) -> bool:
        return bool(self._forms)
