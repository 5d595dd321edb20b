"""The migrations build exactly the tables the models describe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.migrate import upgrade
from hub.models import Base


async def test_migrated_database_matches_the_models(db_url: str) -> None:
    engine = create_async_engine(db_url)

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as connection:
            changes = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == [], f"models and migrations differ; add a migration: {changes}"


async def test_rewards_made_before_search_text_are_found_by_search(tmp_path: Path) -> None:
    """0026 folds the title and description of every reward already there (hub.folding)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0023")
    engine = create_async_engine(url)
    old = {"id": "jade:E", "merchant_id": "jade", "ref": "E", "kind": "MEAL", "price": 1}
    old |= {"settlement_contracted": False, "active": True, "source": "HOSTED"}
    old |= {"has_slots": False, "refreshed_at": "2026-01-01 00:00:00.000000"}
    old |= {"created_at": "2026-01-01 00:00:00.000000"}
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    f"INSERT INTO rewards ({', '.join(old)}, title, description) VALUES "
                    f"({', '.join(':' + k for k in old)}, :title, :description)"
                ),
                [
                    old | {"title": "ÉCLAIR", "description": "Straße"},
                    old | {"id": "jade:F", "ref": "F", "title": "Plain", "description": None},
                ],
            )
        await upgrade(url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT id, search_text FROM rewards"))).all()
    finally:
        await engine.dispose()
    assert sorted(rows) == [("jade:E", "éclair\x1fstrasse"), ("jade:F", "plain")]
