"""wesbot's SQLite store (``WESBOT_DB``): opened once, migrated on every open."""

from .db import migrations, open_db

__all__ = ["migrations", "open_db"]
