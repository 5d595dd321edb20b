"""Fixtures: a migrated database per backend (SQLite always, PostgreSQL when configured),
emptied after every test, and the hub app reached through HTTP."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import column, insert, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from hub.config import Settings
from hub.migrate import upgrade
from hub.models import Member, Merchant, Program
from tests.helpers import Api, empty_database, quiet_settings, running_app
from tests.world import World


def _free_three_ports() -> int:
    """A base port with the two after it free too, searched from one this process's id
    picks, for the demo world's three sandbox partners."""
    base = 20000 + (os.getpid() % 3000) * 3
    while True:
        try:
            for port in range(base, base + 3):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            base += 3
            continue
        return base


# demo.world reads the base when first imported (after this): each process running tests
# (each xdist worker, which would inherit a value set here by the controller) takes its
# own, or two tests serving the demo world at once (the fuzz test on SQLite and on
# PostgreSQL) would both take 8101.
os.environ["HUB_DEMO_PARTNER_PORT_BASE"] = str(_free_three_ports())

_LOCAL_POSTGRES = "postgresql+asyncpg://root@127.0.0.1:5432/test"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _discover_environment() -> list[str]:
    """Use what this machine has, as `.ci/run` does; return why anything is skipped."""
    skipped: list[str] = []
    if not os.environ.get("HUB_TEST_POSTGRES_URL"):
        if _answers("127.0.0.1", 5432):
            os.environ["HUB_TEST_POSTGRES_URL"] = _LOCAL_POSTGRES
        else:
            skipped.append(
                "PostgreSQL tests (nothing answers on 127.0.0.1:5432; or set HUB_TEST_POSTGRES_URL)"
            )
    if not os.environ.get("HUB_TEST_CHROMIUM"):
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        if found:
            os.environ["HUB_TEST_CHROMIUM"] = found
        else:
            skipped.append(
                "browser tests (no chromium on PATH: apt-get install chromium, "
                "or set HUB_TEST_CHROMIUM)"
            )
    if shutil.which("node") is None:
        skipped.append("federation composition (Node.js is not installed)")
    return skipped


SKIPPED_BECAUSE = _discover_environment()
POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line that says what this run could not cover and why."""
    if SKIPPED_BECAUSE:
        terminalreporter.write_line("not run here: " + "; ".join(SKIPPED_BECAUSE))
    else:
        terminalreporter.write_line(
            "ran on SQLite and PostgreSQL, in Chromium, with the federation composition"
        )


BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="HUB_TEST_POSTGRES_URL is not set"),
    ),
]


async def _create_pg_database() -> str:
    assert POSTGRES_URL
    admin_url = make_url(POSTGRES_URL)
    name = f"hub_test_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return admin_url.set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    assert POSTGRES_URL
    name = make_url(url).database
    engine = create_async_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@asynccontextmanager
async def empty_scratch_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new database with nothing in it, not even tables (the migration tests
    bring it to an old revision themselves), dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(url)


async def seed_old_world(conn: AsyncConnection, at: dt.datetime) -> None:
    """The merchant haowu with its program HUB and the member mbr_1, written with the
    columns the tables had at revision 0008 (the models have grown some since), for the
    migration tests."""
    await conn.execute(
        insert(Merchant.__table__).values(
            id="haowu",
            name="Haowu",
            category="PLATFORM",
            status="ACTIVE",
            compensation_percent=Decimal(10),
            created_at=at,
        )
    )
    names = (
        "code",
        "merchant_id",
        "name",
        "unit_name",
        "connector",
        "point_value",
        "accrual_rate",
        "created_at",
    )
    await conn.execute(
        insert(table("programs", *(column(n, Program.__table__.c[n].type) for n in names))).values(
            code="HUB",
            merchant_id="haowu",
            name="Haowu Points",
            unit_name="point",
            connector="HOSTED",
            point_value=Decimal("0.1"),
            accrual_rate=Decimal(1),
            created_at=at,
        )
    )
    await conn.execute(
        insert(Member.__table__).values(id="mbr_1", display_name="Li Wei", created_at=at)
    )


@pytest.fixture(scope="session")
def tmp_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hub-test-") as path:
        yield Path(path)


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_dir: Path) -> AsyncIterator[str]:
    """A freshly migrated database for this test session and backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_dir / 'hub.db'}"
        await upgrade(url)
        yield url
        return
    url = await _create_pg_database()
    try:
        await upgrade(url)
        yield url
    finally:
        await _drop_pg_database(url)


@pytest.fixture
async def db_url(database_url: str) -> AsyncIterator[str]:
    """The session's database, emptied after the test."""
    yield database_url
    await empty_database(database_url)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return quiet_settings(db_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    """The hub app over HTTP (httpx through its ASGI transport), lifespan run."""
    async with running_app(settings) as client:
        yield client


@pytest.fixture
def world(api: Api) -> World:
    """An empty world over `api`: a test (or a fixture of the same name) registers the
    programs, members, rates and keys it needs through it (tests/world.py)."""
    return World(api)
