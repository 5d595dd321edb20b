"""The daily "points expiring" event: one per member and program with points that expire
within 30 days, written once per business date whichever replica runs it first."""

from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import WebhookEvent
from hub.models import Account, Lot, Program
from hub.webhooks import outbox

WINDOW = dt.timedelta(days=30)
BATCH = 1000


async def announce_expiring(db: Database, settings: Settings) -> int:
    """Write today's POINTS_EXPIRING events; the number of accounts looked at."""
    now = utcnow()
    today = settings.business_date(now).isoformat()
    after = 0
    seen = 0
    while True:
        found = await db.transaction(functools.partial(_page, now=now, today=today, after=after))
        if not found:
            return seen
        seen += len(found)
        after = found[-1]


async def _page(session: AsyncSession, now: dt.datetime, today: str, after: int) -> list[int]:
    rows = list(
        await session.execute(
            select(
                Account.id,
                Account.member_id,
                Account.program_code,
                Program.merchant_id,
                func.sum(Lot.remaining),
                func.min(Lot.expires_at),
            )
            .join(Lot, Lot.account_id == Account.id)
            .join(Program, Program.code == Account.program_code)
            .where(
                Account.id > after,
                Account.member_id.is_not(None),
                Lot.remaining > 0,
                Lot.expires_at > now,
                Lot.expires_at <= now + WINDOW,
            )
            .group_by(Account.id, Account.member_id, Account.program_code, Program.merchant_id)
            .order_by(Account.id)
            .limit(BATCH)
        )
    )
    for account_id, member_id, program, merchant, points, soonest in rows:
        assert soonest is not None  # the WHERE keeps only lots with an expiry
        await outbox.emit(
            session,
            WebhookEvent.POINTS_EXPIRING,
            [merchant],
            {
                "memberId": member_id,
                "program": program,
                "points": int(points),
                "expiresAt": soonest.isoformat().replace("+00:00", "Z"),
            },
            dedupe_key=f"expiring:{account_id}:{today}",
        )
    return [row[0] for row in rows]
