"""Scratch databases: a fresh SQLite file or PostgreSQL database per run, migrated."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.migrate import upgrade

LOCAL_POSTGRES = "postgresql+asyncpg://root@127.0.0.1:5432/test"


def backends(postgres: str | None) -> list[str]:
    """SQLite always; PostgreSQL when a server was given (or found)."""
    return ["sqlite", "postgres"] if postgres else ["sqlite"]


async def postgres_answers(url: str) -> bool:
    """Whether a PostgreSQL server answers at `url` (the default is used only if it does)."""
    engine = create_async_engine(url, connect_args={"timeout": 3})
    try:
        async with asyncio.timeout(5), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        await engine.dispose()


class NoPostgres(Exception):
    """The PostgreSQL server asked for does not answer."""


async def chosen_postgres(given: str | None, sqlite_only: bool) -> str | None:
    """The server of a run's PostgreSQL side: the one given (NoPostgres when it does not
    answer), else the local one if it answers (else SQLite only, said so); None with
    --sqlite."""
    if sqlite_only:
        return None
    url = given or LOCAL_POSTGRES
    if await postgres_answers(url):
        return url
    where = make_url(url).render_as_string(hide_password=True)
    if given:
        raise NoPostgres(f"PostgreSQL does not answer at {where}.")
    print(f"PostgreSQL does not answer at {where}: SQLite only.", flush=True)
    return None


def add_options(
    parser: argparse.ArgumentParser, sqlite_only: str = "--sqlite", default: str = LOCAL_POSTGRES
) -> None:
    """--postgres URL and the flag for SQLite only, as every bench takes them."""
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=None,
        help=f"admin URL for scratch databases (default {default}, if it answers)",
    )
    parser.add_argument(sqlite_only, action="store_true", help="SQLite only")


async def chosen(args: argparse.Namespace) -> tuple[str | None, list[str]] | None:
    """The PostgreSQL server and the backends of a run from its options; None (said on
    stderr) when the server asked for does not answer."""
    try:
        postgres = await chosen_postgres(args.postgres, args.sqlite)
    except NoPostgres as error:
        print(error, file=sys.stderr)
        return None
    return postgres, backends(postgres)


def shown(url: str | None) -> str | None:
    """A server's URL as results record it (no password)."""
    return make_url(url).render_as_string(hide_password=True) if url else None


@asynccontextmanager
async def scratch(backend: str, postgres: str | None, migrate: bool = True) -> AsyncIterator[str]:
    """The URL of a new, migrated database, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'hub.db'}"
            if migrate:
                await upgrade(url)
            yield url
        return
    assert postgres, "PostgreSQL was not configured"
    async with postgres_database(postgres) as made:
        url = made.render_as_string(hide_password=False)
        if migrate:
            await upgrade(url)
        yield url


@asynccontextmanager
async def postgres_database(admin: str) -> AsyncIterator[URL]:
    """CREATE DATABASE beside the admin URL's database; DROP it (forced) at the end."""
    admin_url = make_url(admin)
    name = f"hub_bench_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name)
        finally:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()
