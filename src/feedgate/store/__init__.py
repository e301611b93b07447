"""Where logs and feedback live. ``open_store`` picks the implementation from the database URL."""

from __future__ import annotations

from feedgate.config import Settings
from feedgate.store.base import Store


def make_store(settings: Settings) -> Store:
    url = settings.database.url
    if url.startswith("sqlite:///"):
        from feedgate.store.sqlite import SqliteStore

        return SqliteStore(url, regenerate_window_s=settings.feedback.regenerate_window_s)
    if url.startswith(("postgresql://", "postgres://")):
        from feedgate.store.postgres import PostgresStore

        return PostgresStore(
            url,
            regenerate_window_s=settings.feedback.regenerate_window_s,
            pool_min=settings.database.pool_min,
            pool_max=settings.database.pool_max,
            connect_wait_s=settings.database.connect_wait_s,
        )
    raise ValueError(f"database.url must start with sqlite:/// or postgresql://, not {url.split(':', 1)[0]}:")
