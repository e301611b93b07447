"""PostgreSQL for tests: every test gets its own schema in the database named by FEEDGATE_TEST_POSTGRES_URL.

``store`` runs a test once on a fresh SQLite file and once on a fresh PostgreSQL schema.

Schema names carry a per-run token, so runs (and people running tests at the same time on one machine)
never see each other's rows; a run drops the schemas it made when it ends.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from feedgate.config import load_settings
from feedgate.store import make_store
from feedgate.store.protocol import Store

ENV = "FEEDGATE_TEST_POSTGRES_URL"
SKIP_REASON = f"{ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test): PostgreSQL tests skipped"


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


class Schemas:
    """Hands out fresh schema URLs; the store creates each schema when it first opens."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"fgt_{os.getpid()}_{secrets.token_hex(3)}"
        self._numbers = itertools.count(1)
        self.made: list[str] = []

    def new_url(self) -> str:
        schema = f"{self.prefix}_{next(self._numbers)}"
        self.made.append(schema)
        return with_schema(self.url, schema)

    async def drop_all(self) -> None:
        if not self.made:
            return
        conn = await asyncpg.connect(self.url)
        try:
            for schema in self.made:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[Schemas]:
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(SKIP_REASON)
    schemas = Schemas(url)
    yield schemas
    asyncio.run(schemas.drop_all())


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgres":
        # Asked for only here, so the SQLite case runs (and the postgres one skips) without PostgreSQL.
        schemas: Schemas = request.getfixturevalue("pg_schemas")
        url = schemas.new_url()
    opened = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
    await opened.open()
    yield opened
    await opened.close()
