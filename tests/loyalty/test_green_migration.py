"""Migration 0018 on a database with data: every existing program becomes its merchant's
STANDARD one, members and their entries stay attached, and a merchant may then run one
program of each kind, never two of one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from hub.migrate import upgrade
from tests.conftest import BACKENDS, empty_scratch_database

AT = "2026-06-01 04:00:00"
PROGRAM = (
    "INSERT INTO programs (code, merchant_id, name, unit_name, connector, point_value, "
    "accrual_rate, created_at{kind}) VALUES (:code, 'haowu', 'P', 'point', 'HOSTED', 1000, "
    "10000, '{at}'{value})"
)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_existing_programs_become_standard_and_a_green_one_fits_beside(
    backend: str, tmp_path: Path
) -> None:
    async with empty_scratch_database(backend, tmp_path) as url:
        await upgrade(url, "0008")
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO merchants (id, name, category, status, compensation_percent, "
                    f"created_at) VALUES ('haowu', 'Haowu', 'PLATFORM', 'ACTIVE', 0, '{AT}')"
                )
            )
            await conn.execute(text(PROGRAM.format(kind="", value="", at=AT)), {"code": "HUB"})
            await conn.execute(
                text(
                    f"INSERT INTO members (id, display_name, created_at) VALUES "
                    f"('mbr_1', 'Li Wei', '{AT}')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO accounts (program_code, kind, member_id, external_ref, balance, "
                    f"created_at) VALUES ('HUB', 'MEMBER', 'mbr_1', 'H-1', 120, '{AT}')"
                )
            )
        await engine.dispose()

        await upgrade(url)

        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                programs = (await conn.execute(text("SELECT code, kind FROM programs"))).all()
                assert [tuple(p) for p in programs] == [("HUB", "STANDARD")]
                account = (
                    await conn.execute(text("SELECT program_code, balance FROM accounts"))
                ).one()
                assert tuple(account) == ("HUB", 120)
                await conn.execute(
                    text(PROGRAM.format(kind=", kind", value=", 'GREEN'", at=AT)),
                    {"code": "HUB_GREEN"},
                )
            with pytest.raises(IntegrityError):
                async with engine.begin() as conn:
                    await conn.execute(
                        text(PROGRAM.format(kind=", kind", value=", 'GREEN'", at=AT)),
                        {"code": "HUB_ECO"},
                    )
        finally:
            await engine.dispose()
