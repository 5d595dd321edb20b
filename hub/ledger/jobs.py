"""Ledger jobs: the expiry run and the sweeper of holds left past their timeout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import HoldStatus
from hub.ledger.core import Movement
from hub.ledger.points import Points, expire_overdue
from hub.models import Account, Hold, Lot, Program

log = structlog.get_logger(__name__)
Progress = Callable[[int, int], object]
BATCH = 200


@dataclass(frozen=True)
class JobResult:
    accounts: int
    points: int


async def run_expiry(
    db: Database,
    settings: Settings,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> JobResult:
    """Expire every lot past its date, one transaction per batch of accounts."""
    now = now or utcnow()
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(Lot.account_id)
                .where(Lot.remaining > 0, Lot.expires_at <= now)
                .distinct()
                .order_by(Lot.account_id)
            )
        )
    moved = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]

        async def work(session: AsyncSession, chunk: list[int] = chunk) -> int:
            points = Points(session)
            locked = await points.journal.lock(chunk)
            movement = Movement(
                actor="system:expiry", business_date=settings.business_date(now), occurred_at=now
            )
            return sum([await expire_overdue(points, locked[i], movement) for i in chunk])

        moved += await db.transaction(work)
        if progress:
            progress(min(start + BATCH, len(ids)), len(ids))
    if ids:
        log.info("expired points", accounts=len(ids), points=moved)
    return JobResult(accounts=len(ids), points=moved)


async def sweep_holds(db: Database, settings: Settings, now: dt.datetime | None = None) -> int:
    """Release holds left unresolved past their timeout; the number released."""
    now = now or utcnow()
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(Hold.id).where(Hold.status == HoldStatus.PENDING, Hold.expires_at <= now)
            )
        )
    released = 0
    for hold_id in ids:

        async def work(session: AsyncSession, hold_id: str = hold_id) -> int:
            hold = await session.get(Hold, hold_id)
            if hold is None or hold.status != HoldStatus.PENDING:
                return 0  # resolved meanwhile
            account = await session.get(Account, hold.account_id)
            assert account is not None
            program = await session.get(Program, account.program_code)
            assert program is not None
            movement = Movement(
                actor="system:hold-sweeper",
                business_date=settings.business_date(now),
                occurred_at=now,
                reference=hold.reference,
                memo=f"hold {hold.id} timed out",
            )
            await Points(session).release(hold, movement, program.expiry_months)
            return 1

        released += await db.transaction(work)
    if released:
        log.info("released timed-out holds", holds=released)
    return released
