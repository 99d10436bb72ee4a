"""The terminal's listings are tables a person scans: a header row, fixed columns, long cells shortened (the
last column never cut)."""

from __future__ import annotations

import pytest

from wesbot.textview import MAX_COLUMN, table


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["r1", "RUNNING", "a=b"]], ["RUN  STATE    TAGS", "r1   RUNNING  a=b"]),
        ([["r1", "X", ""], ["r2-long", "COMPLETE", ""]],
         ["RUN      STATE     TAGS", "r1       X", "r2-long  COMPLETE"]),
        ([["x" * 60, "S", "t" * 60]], ["RUN" + " " * (MAX_COLUMN - 1) + "STATE  TAGS",
                                       "x" * (MAX_COLUMN - 1) + "…  S      " + "t" * 60]),
    ],
)
def test_table(rows: list[list[str]], expected: list[str]) -> None:
    assert table(["RUN", "STATE", "TAGS"], rows) == expected
