"""Fixtures for the integration tests: the real GA4GH reference WES server (see tests/realwes.py)."""

from tests.realwes import real_runs, real_wes  # noqa: F401
