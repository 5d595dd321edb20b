"""Database.transaction runs its work again after a lost race, and only then: the first
attempt runs without the retrying machinery (the hot paths' common case), the later ones
under tenacity, with the same limit on attempts."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Database
from hub.errors import InvalidInput, RetryTransaction


async def _run(db_url: str, failures: list[Exception], attempts: int) -> tuple[list[int], str]:
    db = Database(db_url)
    calls: list[int] = []

    async def work(session: AsyncSession) -> str:
        calls.append(len(calls) + 1)
        if failures:
            raise failures.pop(0)
        return "done"

    try:
        return calls, await db.transaction(work, attempts=attempts)
    finally:
        await db.dispose()


async def test_a_lost_race_is_run_again_until_it_wins(db_url: str) -> None:
    calls, result = await _run(db_url, [RetryTransaction(), RetryTransaction()], attempts=8)
    assert (calls, result) == ([1, 2, 3], "done")


async def test_a_refusal_is_not_run_again(db_url: str) -> None:
    with pytest.raises(InvalidInput):
        await _run(db_url, [InvalidInput("no", field=("x",))], attempts=8)


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_attempts_bound_the_runs(db_url: str, attempts: int) -> None:
    db = Database(db_url)
    calls: list[int] = []

    async def work(session: AsyncSession) -> None:
        calls.append(1)
        raise RetryTransaction()

    try:
        with pytest.raises(RetryTransaction):
            await db.transaction(work, attempts=attempts)
    finally:
        await db.dispose()
    assert len(calls) == attempts
