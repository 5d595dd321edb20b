"""The keys the hub derives for its own calls (`cnv_…:debit`, `rdm_…:hold`) live where
no merchant's idempotency key can enter, and a hosted look-up by them is exact."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.base import MemberAccount, PointsCall, Purpose
from connectors.hosted import HostedConnector
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import AccountKind, EntryKind
from hub.ids import new_id
from hub.ledger import Movement, Points
from hub.members import account_of
from hub.models import Lot, LotUse, Program
from tests.helpers import Api, accrue, create_key, enroll, register


async def test_a_merchant_cannot_use_a_key_of_the_hubs_own_form(api: Api) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT", accrualRate="1")
    jade = await create_key(api, "MERCHANT", "jade")
    member = await enroll(api, "JADE", "J-1", key=jade)
    hold = f"{new_id('rdm')}:hold"
    # In any case: a database or a partner that compares keys without case would match them.
    for key in (f"{new_id('rdm')}:debit", f"{new_id('cnv')}:reverse", hold.upper()):
        payload = await accrue(api, member, "JADE", "100", key=jade, idempotency_key=key)
        assert payload["points"] is None
        assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
        assert payload["userErrors"][0]["field"] == ["input", "idempotencyKey"]
    # Keys of their own form, colons included, are theirs to use.
    ok = await accrue(api, member, "JADE", "100", key=jade, idempotency_key="till-7:order:991")
    assert ok["userErrors"] == [] and ok["points"] == 100


async def test_a_refund_finds_exactly_the_debit_it_undoes(api: Api, db_url: str) -> None:
    """An older entry of another kind carrying the same key is not the one undone."""
    await register(api, "jade", "JADE", category="RESTAURANT", accrualRate="1", expiryMonths=12)
    member = await enroll(api, "JADE", "J-1")
    await accrue(api, member, "JADE", "500")
    key = f"{new_id('rdm')}:debit"
    db = Database(db_url)
    settings = Settings(database_url=db_url)
    try:

        async def work(session: Any) -> tuple[int, int]:
            program = await session.get(Program, "JADE")
            account = await account_of(session, member, "JADE")
            assert program is not None and account is not None
            points = Points(session)
            now = utcnow()
            # An entry written before the fix let a client key in; the look-up must skip it.
            planted = Movement(actor="key_x", business_date=now.date(), idempotency_key=key)
            await points.credit(account, 5, EntryKind.ACCRUAL, AccountKind.ISSUED, planted, None)
            taken = Movement(actor="hub", business_date=now.date(), idempotency_key=key)
            debit = await points.debit(
                account, 300, EntryKind.REDEMPTION, AccountKind.REDEEMED, taken
            )
            hosted = HostedConnector(session, program, settings, "hub")
            ref = MemberAccount(member, "JADE", "J-1")
            call = PointsCall(
                ref, 300, key.replace("debit", "refund"), Purpose.REFUND, "r", undoes=key
            )
            result = await hosted.reverse(call)
            assert result.applied
            return debit.id, int(result.partner_ref or 0)

        debit_id, refund_id = await db.transaction(work)
        async with db.read() as session:
            taken = dict(
                (
                    await session.execute(
                        select(LotUse.lot_id, LotUse.points).where(LotUse.entry_id == debit_id)
                    )
                ).all()
            )
            given = dict(
                (
                    await session.execute(
                        select(LotUse.lot_id, LotUse.points).where(LotUse.entry_id == refund_id)
                    )
                ).all()
            )
            assert given == {lot: -points for lot, points in taken.items()}
            # ... and no new lot was made for the refund.
            made = await session.scalar(select(Lot.id).where(Lot.entry_id == refund_id))
            assert made is None
    finally:
        await db.dispose()
