"""The demo world of the contract README: merchants, programs, rates, rewards, members, keys."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from hub import auth, merchants
from hub.config import Settings
from hub.db import Database
from hub.enums import ConnectorKind, MerchantCategory, Role
from hub.models import Merchant

Echo = Callable[[str], object]

MERCHANTS: list[merchants.NewMerchant] = [
    merchants.NewMerchant(
        id="haowu",
        name="Haowu Platform",
        category=MerchantCategory.PLATFORM,
        program_code="HUB",
        program_name="Haowu Points",
        unit_name="point",
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=Decimal("0.10"),
        accrual_rate=Decimal("1"),
        expiry_months=24,
        compensation_percent=Decimal("10"),
    ),
    merchants.NewMerchant(
        id="skyair",
        name="Sky Air",
        category=MerchantCategory.AIRLINE,
        program_code="SKYMILES",
        program_name="SkyMiles",
        unit_name="mile",
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=Decimal("0.08"),
        accrual_rate=Decimal("1"),
        expiry_months=36,
        compensation_percent=Decimal("20"),
    ),
    merchants.NewMerchant(
        id="lotus",
        name="Lotus Hotels",
        category=MerchantCategory.HOTEL,
        program_code="LOTUS",
        program_name="Lotus Rewards",
        unit_name="point",
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=Decimal("0.05"),
        accrual_rate=Decimal("10"),
        expiry_months=24,
        compensation_percent=Decimal("15"),
    ),
    merchants.NewMerchant(
        id="jade",
        name="Jade Garden Restaurant",
        category=MerchantCategory.RESTAURANT,
        program_code="JADE",
        program_name="Jade Garden Points",
        unit_name="point",
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=Decimal("0.125"),
        accrual_rate=Decimal("1"),
        expiry_months=12,
        compensation_percent=Decimal("10"),
    ),
    merchants.NewMerchant(
        id="westlake",
        name="West Lake Scenic Area",
        category=MerchantCategory.SCENIC_SPOT,
        program_code="WESTLAKE",
        program_name="West Lake Points",
        unit_name="point",
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=Decimal("0.10"),
        accrual_rate=Decimal("1"),
        expiry_months=None,
        compensation_percent=Decimal("10"),
    ),
    merchants.NewMerchant(
        id="clearview",
        name="Clearview Opticians",
        category=MerchantCategory.RETAIL,
        program_code="CLEAR",
        program_name="Clearview Care Points",
        unit_name="point",
        connector=ConnectorKind.HOSTED,
        connector_config=None,
        point_value=Decimal("0.05"),
        accrual_rate=Decimal("2"),
        expiry_months=24,
        compensation_percent=Decimal("10"),
    ),
]

KEYS: list[tuple[str, Role, str | None]] = [
    ("demo-admin", Role.ADMIN, None),
    ("demo-finance", Role.FINANCE, None),
    ("demo-storefront", Role.STOREFRONT, None),
    *[(f"demo-{m.id}", Role.MERCHANT, m.id) for m in MERCHANTS],
]


async def _is_empty(session: AsyncSession) -> bool:
    return (await session.scalar(select(func.count()).select_from(Merchant))) == 0


async def seed(settings: Settings, progress: Echo = print) -> bool:
    """Create the demo world on an empty database; False when it already has data."""
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            if not await _is_empty(session):
                progress("demo data exists; reusing it (hub demo --reset starts over)")
                return False

        async def world(session: AsyncSession) -> None:
            for index, data in enumerate(MERCHANTS, 1):
                await merchants.register_merchant(session, data)
                progress(f"[{index}/{len(MERCHANTS)}] merchant {data.id} ({data.program_code})")
            for secret, role, merchant_id in KEYS:
                await auth.create_api_key(
                    session,
                    role=role,
                    label=f"demo {secret}",
                    merchant_id=merchant_id,
                    secret=secret,
                    created_by="demo",
                )
            progress(f"{len(KEYS)} demo API keys")

        await db.transaction(world)
        return True
    finally:
        await db.dispose()


def print_keys(echo: Echo, port: int) -> None:
    echo("")
    echo(f"Points Exchange Hub demo on http://127.0.0.1:{port}")
    echo(f"  GraphQL   http://127.0.0.1:{port}/graphql")
    echo("  API keys (send as 'Authorization: Bearer <key>'):")
    for secret, role, merchant_id in KEYS:
        suffix = f" for {merchant_id}" if merchant_id else ""
        echo(f"    {secret:<18} {role}{suffix}")
    echo("")


def wipe(settings: Settings) -> None:
    """Delete the demo's SQLite file (the demo never wipes a server database)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise SystemExit("hub demo --reset only wipes an SQLite file; drop the database yourself.")
    for suffix in ("", "-wal", "-shm"):
        path = Path(url.database + suffix)
        if path.exists():
            os.remove(path)


def create_demo_app() -> Starlette:
    from hub.app import create_app

    return create_app(Settings())
