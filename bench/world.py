"""The data a benchmark starts from, made through the API as a partner would make it, and
what a raw-SQL baseline writes to and with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.counters import Probe, SqlCounter, probe
from hub.config import Settings
from hub.db import Database
from hub.enums import AccountKind
from hub.models import Account
from tests.helpers import ADMIN_KEY, Api, accrue, enroll, register, set_rate

# Hosted programs: (merchant, program code, category).
PROGRAMS = [
    ("haowu", "HUB", "PLATFORM"),
    ("teahouse", "TEA", "RESTAURANT"),
    ("bookshop", "BOOK", "RETAIL"),
]


def hub_settings(url: str) -> Settings:
    """The hub as the tests run it: a bootstrap admin key, quiet, no background jobs."""
    return Settings(
        database_url=url,
        bootstrap_admin_key=ADMIN_KEY,
        log_level="WARNING",
        background_jobs=False,
    )


@dataclass(frozen=True)
class World:
    members: list[str]  # one per client, so that clients do not queue on one account
    programs: list[str]


async def hosted_world(api: Api, members: int, starting_points: int = 100) -> World:
    """Three hosted programs, HUB -> TEA at 1:1; `members` members enrolled in all three,
    each with one purchase in HUB (so one lot) worth `starting_points`."""
    for merchant, code, category in PROGRAMS:
        await register(api, merchant, code, category=category)
    await set_rate(api, "HUB", "TEA", "1")
    found = []
    for i in range(members):
        member = await enroll(api, "HUB", f"H-{i:04d}", f"Member {i}")
        for _, code, _ in PROGRAMS[1:]:
            await enroll(api, code, f"{code[0]}-{i:04d}", member_id=member)
        payload = await accrue(api, member, "HUB", str(starting_points), order=f"seed-{i}")
        assert payload["userErrors"] == [], payload
        found.append(member)
    return World(members=found, programs=[code for _, code, _ in PROGRAMS])


@dataclass(frozen=True)
class Accounts:
    """Account ids a raw-SQL baseline writes to, read from the database."""

    member: dict[str, int]  # member id -> its account in the program
    system: dict[AccountKind, int]  # the program's system accounts


async def accounts(url: str, program: str, members: list[str]) -> Accounts:
    db = Database(url)
    try:
        async with db.read() as session:
            query = select(Account).where(Account.program_code == program)
            rows = list(await session.scalars(query))
    finally:
        await db.dispose()
    return Accounts(
        member={a.member_id: a.id for a in rows if a.member_id in members},
        system={AccountKind(a.kind): a.id for a in rows if a.member_id is None},
    )


@asynccontextmanager
async def raw_engine(url: str) -> AsyncIterator[tuple[AsyncEngine, Probe]]:
    """An engine for a raw-SQL baseline's writes, configured as the hub's (its pool, WAL and
    BEGIN IMMEDIATE on SQLite), and the probe that counts what it sends; disposed after."""
    db = Database(url)
    try:
        yield db.engine.execution_options(hub_write=True), probe(SqlCounter(*db.sync_engines))
    finally:
        await db.dispose()
