"""A hold is settled once, whoever gets there first; a refund keeps its points' expiry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hub.auth import Principal
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import AccountKind, ConnectorKind, EntryKind, MerchantCategory, Role
from hub.errors import InvalidState
from hub.ledger import Movement, Points
from hub.ledger.jobs import sweep_holds
from hub.members import Enrollment, account_of, enroll
from hub.merchants import NewMerchant, register_merchant
from hub.models import Account, Entry, Hold, Lot, Posting
from hub.verify import verify
from tests.helpers import (
    Api,
    accrue,
    balances,
    cancel_redemption,
    create_key,
    redeem,
    register,
    set_rate,
    upsert_reward,
    verify_ledger,
)
from tests.helpers import (
    enroll as enroll_over_api,
)

ADMIN = Principal(key_id="test", role=Role.ADMIN)


async def _member_with(db: Database, points: int) -> int:
    async def work(session: Any) -> int:
        await register_merchant(
            session,
            NewMerchant(
                id="jade",
                name="Jade",
                category=MerchantCategory.RESTAURANT,
                program_code="JADE",
                program_name="Jade",
                unit_name="point",
                connector=ConnectorKind.HOSTED,
                connector_config=None,
                point_value=Decimal("0.125"),
                accrual_rate=Decimal(1),
                expiry_months=None,
                compensation_percent=Decimal(10),
            ),
        )
        member = await enroll(session, ADMIN, Enrollment("JADE", "J-1", "x"))
        account = await account_of(session, member.id, "JADE")
        assert account is not None
        movement = Movement(actor="test", business_date=account.created_at.date())
        await Points(session).credit(
            account, points, EntryKind.ACCRUAL, AccountKind.ISSUED, movement, None
        )
        return account.id

    return await db.transaction(work)


async def _held_total(db: Database) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(
                select(func.coalesce(func.sum(Posting.amount), 0))
                .join(Account, Account.id == Posting.account_id)
                .where(Account.kind == AccountKind.HELD.value)
            )
            or 0
        )


@pytest.mark.parametrize("settle", ["release", "capture"])
async def test_a_hold_the_sweeper_released_meanwhile_is_not_settled_again(
    db_url: str, settle: str
) -> None:
    """The saga read the hold as PENDING; before its write, the sweeper released it.

    On PostgreSQL (READ COMMITTED) the saga's read and its write are apart, so this
    interleaving happens; the saga must claim the hold before it posts anything.
    """
    db = Database(db_url)
    settings = Settings(database_url=db_url)
    try:
        account_id = await _member_with(db, 1000)

        async def hold(session: Any) -> str:
            account = await session.get(Account, account_id)
            movement = Movement(actor="test", business_date=utcnow().date(), reference="rdm_x")
            found = await Points(session).hold(account, 300, movement, dt.timedelta(seconds=-1))
            return str(found.id)

        hold_id = await db.transaction(hold)
        async with db.read() as session:
            stale = await session.get(Hold, hold_id)  # the saga's read: PENDING
            assert stale is not None and stale.status == "PENDING"
        assert await sweep_holds(db, settings) == 1  # the sweeper wins the race

        async def saga_step(session: Any) -> None:
            movement = Movement(actor="saga", business_date=utcnow().date(), reference="rdm_x")
            points = Points(session)
            try:
                if settle == "release":
                    await points.release(stale, movement, None)
                else:
                    await points.capture(stale, AccountKind.REDEEMED, movement)
            except InvalidState:
                pass  # the hosted connector answers REJECTED and the transaction commits

        await db.transaction(saga_step)
        async with db.read() as session:
            account = await session.get(Account, account_id)
            assert account is not None
            assert account.balance == 1000  # released once: not 1,300
        assert await _held_total(db) == 0  # captured never: not -300
        async with db.read() as session:
            assert [str(v) for v in await verify(session)] == []
    finally:
        await db.dispose()


async def test_a_refund_returns_points_into_their_lots_expiry(api: Api, db_url: str) -> None:
    """Redeem-then-cancel cannot extend expiry: points of a lot that expired meanwhile
    go to `expired`, the others back into their own lots."""
    await register(api, "jade", "JADE", category="RESTAURANT", accrualRate="1", expiryMonths=12)
    await register(api, "clearview", "CLEAR", category="RETAIL", pointValue="0.10")
    clearview = await create_key(api, "MERCHANT", "clearview")
    await upsert_reward(api, clearview, ref="LENS", kind="GOODS", title="Lens", price=300)
    await set_rate(api, "JADE", "CLEAR", "1")
    member = await enroll_over_api(api, "JADE", "J-1", "Sun Li")
    await enroll_over_api(api, "CLEAR", "C-1", member_id=member)
    await accrue(api, member, "JADE", "300")  # lot A
    await accrue(api, member, "JADE", "1000")  # lot B
    done = await redeem(api, member, "clearview:LENS", "JADE")
    assert done["redemption"]["status"] == "CONFIRMED", done
    db = Database(db_url)
    try:
        async with db.write() as session:
            lots = list(await session.scalars(select(Lot).order_by(Lot.id)))
            assert [(lot.points, lot.remaining) for lot in lots] == [(300, 0), (1000, 1000)]
            expiries = [lot.expires_at for lot in lots]
            # A year later, lot A has expired (lot B not yet).
            await session.execute(
                update(Lot)
                .where(Lot.id == lots[0].id)
                .values(expires_at=utcnow() - dt.timedelta(days=1))
            )
        cancelled = await cancel_redemption(api, done["redemption"]["id"])
        assert cancelled["redemption"]["status"] == "CANCELLED"
        assert (await balances(api, member))["JADE"] == 1000  # the 300 had expired
        async with db.read() as session:
            lots = list(await session.scalars(select(Lot).order_by(Lot.id)))
            # No new lot with a fresh expiry appeared.
            assert [(lot.points, lot.remaining) for lot in lots] == [(300, 0), (1000, 1000)]
            assert lots[1].expires_at == expiries[1]
            expired = await session.scalar(
                select(func.sum(Posting.amount))
                .join(Account, Account.id == Posting.account_id)
                .where(Account.kind == AccountKind.EXPIRED.value)
            )
            assert expired == 300
            kinds = list(await session.scalars(select(Entry.kind).order_by(Entry.id)))
            assert kinds[-2:] == ["REFUND", "EXPIRY"]
    finally:
        await db.dispose()
    assert await verify_ledger(db_url) == []


async def test_a_refund_of_lots_not_yet_expired_keeps_their_expiry(api: Api) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT", accrualRate="1", expiryMonths=12)
    await register(api, "clearview", "CLEAR", category="RETAIL", pointValue="0.10")
    clearview = await create_key(api, "MERCHANT", "clearview")
    await upsert_reward(api, clearview, ref="LENS", kind="GOODS", title="Lens", price=300)
    await set_rate(api, "JADE", "CLEAR", "1")
    member = await enroll_over_api(api, "JADE", "J-1", "Sun Li")
    await enroll_over_api(api, "CLEAR", "C-1", member_id=member)
    await accrue(api, member, "JADE", "500")
    query = (
        'query($id: ID!) { member(id: $id) { account(program: "JADE") '
        "{ expiring { points expiresAt } } } }"
    )
    before = (await api.gql(query, {"id": member}))["member"]["account"]["expiring"]
    done = await redeem(api, member, "clearview:LENS", "JADE")
    await cancel_redemption(api, done["redemption"]["id"])
    after = (await api.gql(query, {"id": member}))["member"]["account"]["expiring"]
    assert after == before
