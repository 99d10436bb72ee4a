"""An exception and what it was raised from: how a fault deep in a library is recognised after other layers
wrapped it (a storage error inside a Bolt error, a refused connection inside slack_sdk's)."""

from __future__ import annotations


def causes(error: BaseException, limit: int = 5) -> list[BaseException]:
    """``error``, then its ``__cause__`` (or ``__context__``), and so on: at most ``limit``, never a loop."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < limit:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
