"""Where logs and feedback live: the ``Store`` protocol (``protocol.py``), SQLite and PostgreSQL, migrations,
the single writer, and every SQL statement feedgate runs. ``make_store`` picks the store from the database URL.

The reads both stores share are in ``reads/``; the writes are ``ops.py`` values applied by ``writer.py``.
"""

from __future__ import annotations

from feedgate.config import Settings
from feedgate.store.protocol import Store


def make_store(settings: Settings) -> Store:
    url = settings.database.url
    # The properties rollups keep per hour besides the fixed dimensions; None turns them off.
    rollups = tuple(settings.analysis.properties) if settings.analysis.rollups else None
    if url.startswith("sqlite:///"):
        from feedgate.store.sqlite import SqliteStore

        return SqliteStore(url, regenerate_window_s=settings.feedback.regenerate_window_s, rollups=rollups)
    if url.startswith(("postgresql://", "postgres://")):
        from feedgate.store.postgres import PostgresStore

        return PostgresStore(
            url,
            regenerate_window_s=settings.feedback.regenerate_window_s,
            pool_min=settings.database.pool_min,
            pool_max=settings.database.pool_max,
            connect_wait_s=settings.database.connect_wait_s,
            rollups=rollups,
        )
    raise ValueError(f"database.url must start with sqlite:/// or postgresql://, not {url.split(':', 1)[0]}:")
