"""The demo world of the contract README (assembly: it wires the sandbox partners in).

`hub demo` seeds, on an empty database: the merchants (skyair, lotus and
westlake through their vertical connectors against sandbox partners served by
the same process on loopback), rates between every program and HUB both ways
and a few direct pairs, rewards of every kind, promotions, members with
balances in several programs, tiers and credit-linked promotions at HUB with
members in each tier (demo/loyalty.py), green points and vouchers
(demo/green.py), and the demo API keys.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.airline import AirlineSandbox
from connectors.sandbox.core import Sandbox
from connectors.sandbox.hotel import HotelSandbox
from connectors.sandbox.runner import Running, serve
from connectors.sandbox.scenic import ScenicSandbox
from demo import green as demo_green
from demo import loyalty as demo_loyalty
from demo.rewards import new_reward
from demo.seeding import ADMIN, offer, promote, purchase
from hub import auth, consent, members, merchants, vouchers
from hub.auth import Principal
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import ConnectorKind, MerchantCategory, RewardKind, Role
from hub.errors import DomainError
from hub.exchange import rates
from hub.mall import catalog
from hub.models import ApiKey, Member, Merchant

Echo = Callable[[str], object]
STATE_DIR = Path(os.environ.get("HUB_DEMO_STATE_DIR", ".demo-partners"))
_BASE = int(os.environ.get("HUB_DEMO_PARTNER_PORT_BASE", "8101"))
PARTNER_PORTS = {"skyair": _BASE, "lotus": _BASE + 1, "westlake": _BASE + 2}
PARTNERS: dict[str, tuple[type[Sandbox], ConnectorKind]] = {
    "skyair": (AirlineSandbox, ConnectorKind.AIRLINE),
    "lotus": (HotelSandbox, ConnectorKind.HOTEL),
    "westlake": (ScenicSandbox, ConnectorKind.SCENIC),
}


def partner_secret(merchant_id: str) -> str:
    return f"demo-partner-secret-{merchant_id}"


def _merchant(
    mid: str,
    name: str,
    category: MerchantCategory,
    code: str,
    program: str,
    unit: str,
    value: str,
    accrual_rate: str,
    expiry: int | None,
    compensation: str,
) -> merchants.NewMerchant:
    connector, config = ConnectorKind.HOSTED, None
    if mid in PARTNERS:
        connector = PARTNERS[mid][1]
        config = json.dumps(
            {
                "baseUrl": f"http://127.0.0.1:{PARTNER_PORTS[mid]}",
                "secretRef": mid.upper(),
                "timeoutSeconds": 3,
            }
        )
    return merchants.NewMerchant(
        id=mid,
        name=name,
        category=category,
        program_code=code,
        program_name=program,
        unit_name=unit,
        connector=connector,
        connector_config=config,
        point_value=Decimal(value),
        accrual_rate=Decimal(accrual_rate),
        expiry_months=expiry,
        compensation_percent=Decimal(compensation),
    )


MERCHANTS = [
    _merchant(
        "haowu",
        "Haowu Platform",
        MerchantCategory.PLATFORM,
        "HUB",
        "Haowu Points",
        "point",
        "0.10",
        "1",
        24,
        "10",
    ),
    _merchant(
        "skyair",
        "Sky Air",
        MerchantCategory.AIRLINE,
        "SKYMILES",
        "SkyMiles",
        "mile",
        "0.08",
        "1",
        36,
        "20",
    ),
    _merchant(
        "lotus",
        "Lotus Hotels",
        MerchantCategory.HOTEL,
        "LOTUS",
        "Lotus Rewards",
        "point",
        "0.05",
        "10",
        24,
        "15",
    ),
    _merchant(
        "jade",
        "Jade Garden Restaurant",
        MerchantCategory.RESTAURANT,
        "JADE",
        "Jade Garden Points",
        "point",
        "0.125",
        "1",
        12,
        "10",
    ),
    _merchant(
        "westlake",
        "West Lake Scenic Area",
        MerchantCategory.SCENIC_SPOT,
        "WESTLAKE",
        "West Lake Points",
        "point",
        "0.10",
        "1",
        None,
        "10",
    ),
    _merchant(
        "clearview",
        "Clearview Opticians",
        MerchantCategory.RETAIL,
        "CLEAR",
        "Clearview Care Points",
        "point",
        "0.05",
        "2",
        24,
        "10",
    ),
    # A Western restaurant and a 4S car dealership (sales, service, parts): their vouchers.
    _merchant(
        "bistro",
        "Le Jardin Western Bistro",
        MerchantCategory.RESTAURANT,
        "BISTRO",
        "Le Jardin Points",
        "point",
        "0.05",
        "2",
        12,
        "10",
    ),
    _merchant(
        "xingchen",
        "Xingchen 4S Auto Center",
        MerchantCategory.RETAIL,
        "XCAUTO",
        "Xingchen Auto Points",
        "point",
        "0.05",
        "1",
        24,
        "10",
    ),
]

# Points per HUB point, both ways (HUB -> X at `rate`, X -> HUB at the inverse less a spread).
HUB_RATES = {
    "SKYMILES": "1.2",
    "LOTUS": "2",
    "JADE": "0.8",
    "WESTLAKE": "1",
    "CLEAR": "2",
    "BISTRO": "2",
    "XCAUTO": "2",
}
DIRECT_RATES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("SKYMILES", "LOTUS", "1.5", {"min_points": 1000, "step": 100}),
    ("LOTUS", "SKYMILES", "0.6", {"min_points": 1000, "step": 100}),
    ("JADE", "CLEAR", "2", {}),
    ("SKYMILES", "WESTLAKE", "0.7", {"bonus_percent": Decimal(10), "min_points": 500, "step": 100}),
]

HOSTED_REWARDS: list[dict[str, Any]] = [
    {
        "merchant": "jade",
        "ref": "SET-MEAL",
        "kind": RewardKind.MEAL,
        "price": 200,
        "title": "Set meal (a 25-yuan lunch)",
        "description": "Rice, two dishes and soup.",
    },
    {
        "merchant": "jade",
        "ref": "DIM-SUM-VOUCHER",
        "kind": RewardKind.VOUCHER,
        "price": 800,
        "title": "100-yuan dim sum voucher",
        "description": "100 off a dim sum bill of 100 or more, within 90 days.",
        "stock": 50,
        "voucher": vouchers.Terms(Decimal(100), Decimal(100), 90),
    },
    {
        "merchant": "clearview",
        "ref": "LENS",
        "kind": RewardKind.GOODS,
        "price": 2000,
        "title": "Blue-light lens pair",
        "stock": 20,
        "description": "Any prescription, fitted in store.",
    },
    {
        "merchant": "clearview",
        "ref": "EYE-EXAM",
        "kind": RewardKind.SERVICE,
        "price": 1000,
        "title": "Comprehensive eye exam",
        "slotted": True,
    },
    {
        "merchant": "haowu",
        "ref": "CAR-WASH",
        "kind": RewardKind.SERVICE,
        "price": 300,
        "title": "Car wash at any partner station",
    },
    {
        "merchant": "haowu",
        "ref": "THERMOS",
        "kind": RewardKind.GOODS,
        "price": 900,
        "title": "Stainless thermos bottle",
        "stock": 3,
    },
]

# name, hosted balances (accrued as purchases), partner balances, memberships
MEMBERS: list[dict[str, Any]] = [
    {
        "name": "王芳 Wang Fang",
        "hub": ("H-1001", 20000),
        "jade": ("J-2001", 800),
        "skyair": ("SK-3001", 45000),
        "lotus": ("L-4001", 12000),
        "westlake": ("W-5001", 3000),
        "clearview": ("C-6001", 0),
    },
    {
        "name": "李伟 Li Wei",
        "hub": ("H-1002", 5000),
        "jade": ("J-2002", 1500),
        "clearview": ("C-6002", 2500),
        "westlake": ("W-5002", 0),
    },
    {
        "name": "陈杰 Chen Jie",
        "hub": ("H-1003", 2000),
        "skyair": ("SK-3003", 80000),
        "lotus": ("L-4003", 0),
    },
    {"name": "张敏 Zhang Min", "hub": ("H-1004", 300), "jade": ("J-2004", 120)},
    # The week of history in the console is theirs (demo/history.py).
    {
        "name": "刘洋 Liu Yang",
        "hub": ("H-1005", 20000),
        "jade": ("J-2005", 0),
        "skyair": ("SK-3005", 50000),
        "lotus": ("L-4005", 0),
    },
    {"name": "赵静 Zhao Jing", "hub": ("H-1006", 6000), "westlake": ("W-5006", 0)},
]
PROGRAM_OF = {
    "hub": "HUB",
    "jade": "JADE",
    "clearview": "CLEAR",
    "skyair": "SKYMILES",
    "lotus": "LOTUS",
    "westlake": "WESTLAKE",
}
ACCRUAL_RATE = {"HUB": Decimal(1), "JADE": Decimal(1), "CLEAR": Decimal(2)}

KEYS: list[tuple[str, Role, str | None]] = [
    ("demo-admin", Role.ADMIN, None),
    ("demo-finance", Role.FINANCE, None),
    ("demo-storefront", Role.STOREFRONT, None),
    *[(f"demo-{m.id}", Role.MERCHANT, m.id) for m in MERCHANTS],
]


def demo_settings(settings: Settings) -> Settings:
    secrets = {mid.upper(): partner_secret(mid) for mid in PARTNERS}
    # The sandbox partners listen on 127.0.0.1: the demo alone allows loopback partners.
    return settings.model_copy(
        update={
            "partner_secrets": {**secrets, **settings.partner_secrets},
            "allow_private_partners": True,
        }
    )


async def _is_empty(session: AsyncSession) -> bool:
    return (await session.scalar(select(func.count()).select_from(Merchant))) == 0


async def seed(settings: Settings, progress: Echo = print) -> bool:
    """Create the demo world on an empty database; False when it already has data."""
    settings = demo_settings(settings)
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            if not await _is_empty(session):
                progress("demo data exists; reusing it (hub demo --reset starts over)")
                return False
        steps = 8
        partner_members: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in PARTNERS}

        async def world(session: AsyncSession) -> None:
            now = utcnow()
            held = settings.rates_held_for
            for data in MERCHANTS:
                await merchants.register_merchant(session, data, allow_private_partners=True)
            progress(f"[1/{steps}] {len(MERCHANTS)} merchants and programs")
            for code, rate in HUB_RATES.items():
                await rates.set_rate(
                    session, ADMIN, rates.NewRate("HUB", code, Decimal(rate)), held=held
                )
                back = (Decimal(1) / Decimal(rate) * Decimal("0.95")).quantize(Decimal("0.0001"))
                await rates.set_rate(session, ADMIN, rates.NewRate(code, "HUB", back), held=held)
            for source, target, rate, extra in DIRECT_RATES:
                await rates.set_rate(
                    session, ADMIN, rates.NewRate(source, target, Decimal(rate), **extra), held=held
                )
            progress(f"[2/{steps}] {2 * len(HUB_RATES) + len(DIRECT_RATES)} exchange rates")
            for reward in HOSTED_REWARDS:
                slots = None
                if reward.get("slotted"):
                    day = (now + dt.timedelta(days=1)).astimezone(settings.tz).date()
                    slots = [
                        catalog.NewSlot(
                            ref=f"{(day + dt.timedelta(days=d)).isoformat()}T{h:02d}",
                            starts_at=dt.datetime.combine(
                                day + dt.timedelta(days=d), dt.time(h), settings.tz
                            ),
                            ends_at=dt.datetime.combine(
                                day + dt.timedelta(days=d), dt.time(h, 45), settings.tz
                            ),
                            capacity=2,
                        )
                        for d in range(5)
                        for h in (10, 14, 16)
                    ]
                await catalog.upsert_reward(
                    session,
                    ADMIN,
                    new_reward(reward, reward["merchant"], slots=slots),
                )
            progress(f"[3/{steps}] {len(HOSTED_REWARDS)} hosted rewards (partners list theirs)")
            week = (now, now + dt.timedelta(days=7))
            await promote(
                session,
                [
                    offer("JADE", "Jade Garden anniversary: double points", week, multiplier=2),
                    offer(
                        "CLEAR", "Eye-care day: lenses for 1,500 points", week, discount_percent=25
                    ),
                ],
            )
            progress(f"[4/{steps}] promotions: double points at Jade, eye-care day at Clearview")
            for index, person in enumerate(MEMBERS):
                member_id: str | None = None
                for merchant_id, code in PROGRAM_OF.items():
                    if merchant_id not in person:
                        continue
                    ref, balance = person[merchant_id]
                    member = await members.enroll(
                        session,
                        ADMIN,
                        members.Enrollment(
                            program=code,
                            external_ref=ref,
                            display_name=person["name"],
                            member_id=member_id,
                        ),
                    )
                    member_id = member.id
                    if merchant_id in PARTNERS:
                        partner_members[merchant_id][ref] = {
                            "name": person["name"],
                            "balance": balance,
                        }
                    elif balance:
                        # Hosted balances come from purchases, as they would in life.
                        amount = Decimal(balance) / ACCRUAL_RATE[code]
                        if code == "JADE":
                            amount /= 2  # the anniversary doubles it
                        await purchase(
                            session,
                            settings,
                            member.id,
                            code,
                            f"seed-{ref}",
                            amount.quantize(Decimal("0.01")),
                        )
                progress(f"[5/{steps}] member {index + 1}/{len(MEMBERS)}: {person['name']}")
            # The tier members' year of purchases is history the demo writes, dated back
            # further than a merchant's accrual may be.
            history = settings.model_copy(update={"accrual_backdate_days": 400})
            progress(f"[6/{steps}] " + await demo_loyalty.seed(session, history, now))
            progress(f"[7/{steps}] " + await demo_green.seed(session, settings, now))
            for secret, role, owner in KEYS:
                await auth.create_api_key(
                    session,
                    role=role,
                    label=f"demo {secret}",
                    merchant_id=owner,
                    secret=secret,
                    created_by="demo",
                )
            progress(f"[8/{steps}] {len(KEYS)} demo API keys")

        await db.transaction(world)
        _write_partner_state(partner_members)
        await _history(settings, progress)
        return True
    finally:
        await db.dispose()


async def _history(settings: Settings, progress: Echo) -> None:
    """A week of moves, settled day by day, against the real sandboxes (see demo_history)."""
    from demo import history as demo_history
    from hub.app import create_app

    running = [
        await serve(_sandbox(merchant_id, None), port)
        for merchant_id, port in PARTNER_PORTS.items()
    ]
    app = create_app(settings.model_copy(update={"background_jobs": False}))
    try:
        async with app.router.lifespan_context(app):
            partners = [r.sandbox for r in running]
            await demo_history.seed_week(app, settings, partners, progress)
    finally:
        for partner in running:
            await partner.stop()


def _write_partner_state(people: dict[str, dict[str, dict[str, Any]]]) -> None:
    """The sandbox partners' own members and balances, kept in their state files."""
    STATE_DIR.mkdir(exist_ok=True)
    for merchant_id, members_ in people.items():
        sandbox = _sandbox(merchant_id, None)
        sandbox.ledger.members = members_
        sandbox.save()


def _sandbox(merchant_id: str, hub_url: str | None) -> Sandbox:
    cls = PARTNERS[merchant_id][0]
    return cls(
        merchant_id,
        partner_secret(merchant_id),
        hub_url=hub_url,
        state_file=STATE_DIR / f"{merchant_id}.json",
    )


def print_keys(echo: Echo, port: int) -> None:
    echo("")
    echo(f"Points Exchange Hub demo on http://127.0.0.1:{port}")
    echo(f"  GraphQL   http://127.0.0.1:{port}/graphql")
    echo(f"  Mall      http://127.0.0.1:{port}/mall")
    echo(f"  Console   http://127.0.0.1:{port}/console   (key: demo-finance)")
    echo("  Sandbox partners (real HTTP servers playing the partners' systems):")
    for merchant_id, port_ in PARTNER_PORTS.items():
        echo(f"    {merchant_id:<9} http://127.0.0.1:{port_}")
    echo("  API keys (send as 'Authorization: Bearer <key>'):")
    for secret, role, owner in KEYS:
        suffix = f" for {owner}" if owner else ""
        echo(f"    {secret:<18} {role}{suffix}")
    echo("")


def wipe(settings: Settings) -> None:
    """Delete the demo's SQLite file and partner state (never a server database)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise SystemExit("hub demo --reset only wipes an SQLite file; drop the database yourself.")
    for suffix in ("", "-wal", "-shm"):
        path = Path(url.database + suffix)
        if path.exists():
            os.remove(path)
    shutil.rmtree(STATE_DIR, ignore_errors=True)


def create_demo_app() -> Starlette:
    """The hub, its sandbox partners, and the demo-only sign-in for the reference mall."""
    from hub.app import create_app

    settings = demo_settings(Settings())
    port = int(os.environ.get("HUB_DEMO_PORT", "8000"))
    app = create_app(settings, extra_routes=demo_routes())
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Starlette) -> AsyncIterator[Any]:
        running: list[Running] = []
        for merchant_id, port_ in PARTNER_PORTS.items():
            running.append(await serve(_sandbox(merchant_id, f"http://127.0.0.1:{port}"), port_))
        try:
            async with inner(app_) as state:
                yield state
        finally:
            for partner in running:
                await partner.stop()

    app.router.lifespan_context = lifespan
    return app


def demo_routes() -> list[Route]:
    """Stand-ins for a storefront's own backend: pick a demo member, get a session token."""

    async def people(request: Request) -> Response:
        runtime = request.app.state.runtime
        async with runtime.db.read() as session:
            rows = await session.scalars(select(Member).order_by(Member.created_at))
            return JSONResponse([{"id": m.id, "name": m.display_name} for m in rows])

    async def session_for(request: Request) -> Response:
        """As the platform's own backend would: the mall's session is the platform's, so it
        spends every program the member holds (a merchant's session spends its own only)."""
        runtime = request.app.state.runtime
        member_id = str((await request.json()).get("memberId", ""))
        async with runtime.db.read() as session:
            platform = await session.scalar(
                select(Merchant.id).where(Merchant.category == MerchantCategory.PLATFORM)
            )
            # The platform's own key mints it: a session ends with the key that minted it.
            key_id = await session.scalar(
                select(ApiKey.id)
                .where(ApiKey.merchant_id == platform, ApiKey.revoked_at.is_(None))
                .order_by(ApiKey.created_at)
                .limit(1)
            )
            if key_id is None:
                return JSONResponse({"error": "the platform has no live key"}, status_code=503)
            backend = Principal(key_id=key_id, role=Role.MERCHANT, merchant_id=platform)
            try:
                grant = await consent.grant_session(session, backend, member_id, ("member_id",))
            except DomainError as exc:
                return JSONResponse({"error": exc.message}, status_code=404)
        minted = runtime.tokens.mint(grant)
        return JSONResponse(
            {
                "token": minted.token,
                "expiresAt": minted.expires_at.isoformat(),
                "storefrontKey": "demo-storefront",
            }
        )

    return [
        Route("/mall/demo/members", people),
        Route("/mall/demo/session", session_for, methods=["POST"]),
    ]
