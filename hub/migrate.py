"""Bring the database schema up to date with Alembic (hub migrate, and hub serve at start)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "hub:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision` on the database at `url`."""
    config = alembic_config(url)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:

            def run(sync_connection: Connection) -> None:
                config.attributes["connection"] = sync_connection
                command.upgrade(config, revision)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def pending(url: str) -> list[str]:
    """Revisions not yet applied."""
    config = alembic_config(url)
    script = ScriptDirectory.from_config(config)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(
                lambda c: MigrationContext.configure(c).get_current_heads()
            )
    finally:
        await engine.dispose()
    heads = set(script.get_heads())
    if heads <= set(current):
        return []
    return [rev.revision for rev in script.iterate_revisions("heads", current or "base")]
