"""The nightly review: the only time a member moves down a tier.

Once per business date and program (whichever replica claims the date first), every
member of a program with tiers is placed on the tier their trailing 12 months qualify
for; each move, down or up, is a TIER_CHANGED event. The job runs hourly in `hub serve`,
so the review happens in the first hour of each local day.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.db import Database, insert_or_skip, utcnow
from hub.models import Account, MemberTier, Program, Tier, TierReview
from hub.tiers.ladder import ladder
from hub.tiers.standing import (
    Qualification,
    emit_changed,
    held_tiers,
    qualifications,
    qualifying,
)

BATCH = 1000


@dataclass(frozen=True)
class Reviewed:
    programs: int
    members: int
    moved_down: int
    moved_up: int


async def review_tiers(
    db: Database, settings: Settings, now: dt.datetime | None = None
) -> Reviewed:
    """Review every program with tiers whose review for today has not run yet."""
    now = now or utcnow()
    today = settings.business_date(now)
    async with db.read() as session:
        programs = list(
            await session.execute(
                select(Program.code, Program.merchant_id)
                .where(Program.code.in_(select(Tier.program_code).distinct()))
                .order_by(Program.code)
            )
        )
    totals = [0, 0, 0, 0]
    for code, merchant_id in programs:
        if not await db.transaction(functools.partial(_claim, code=code, today=today, now=now)):
            continue
        totals[0] += 1
        after = ""
        while True:
            page = await db.transaction(
                functools.partial(
                    _review_page, code=code, merchant_id=merchant_id, after=after, now=now
                )
            )
            if page is None:
                break
            after, seen, down, up = page
            totals[1] += seen
            totals[2] += down
            totals[3] += up
    return Reviewed(*totals)


async def _claim(session: AsyncSession, code: str, today: dt.date, now: dt.datetime) -> bool:
    """Take today's review of the program; False when a replica already took it."""
    first = insert_or_skip(session, TierReview).values(
        program_code=code, reviewed_on=today, reviewed_at=now
    )
    if (await session.execute(first)).rowcount == 1:  # type: ignore[attr-defined]
        return True
    taken = await session.execute(
        update(TierReview)
        .where(TierReview.program_code == code, TierReview.reviewed_on < today)
        .values(reviewed_on=today, reviewed_at=now)
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


async def _review_page(
    session: AsyncSession, code: str, merchant_id: str, after: str, now: dt.datetime
) -> tuple[str, int, int, int] | None:
    """Place one page of the program's members; the last member id and the counts, or None
    when no member is left."""
    # Locking the page's accounts serializes the review with accruals (which lock the
    # account before raising a tier): a purchase is never reviewed half-counted.
    accounts = list(
        await session.execute(
            select(Account.id, Account.member_id)
            .where(
                Account.program_code == code,
                Account.member_id.is_not(None),
                Account.member_id > after,
            )
            .order_by(Account.member_id)
            .limit(BATCH)
        )
    )
    if not accounts:
        return None
    await session.execute(
        select(Account.id)
        .where(Account.id.in_([a for a, _ in accounts]))
        .order_by(Account.id)
        .with_for_update(key_share=True)
    )
    members = [m for _, m in accounts if m is not None]
    tiers = await ladder(session, code)
    ranks = {t.code: t.rank for t in tiers}
    found = await qualifications(session, [code], members, now)
    held = await held_tiers(session, [code], members)
    down = up = 0
    for member in members:
        q = found.get((code, member), Qualification())
        target = qualifying(tiers, q)
        after_code = target.code if target else None
        placed = (code, member) in held
        before = held.get((code, member))
        if after_code == before:
            continue
        if not await _move(session, code, member, placed, before, after_code, now):
            continue
        rising = ranks.get(after_code or "", -1) > ranks.get(before or "", -1)
        up, down = (up + 1, down) if rising else (up, down + 1)
        await emit_changed(
            session, merchant_id, code, member, (before, after_code), "UP" if rising else "DOWN", q
        )
    return members[-1], len(members), down, up


async def _move(
    session: AsyncSession,
    code: str,
    member: str,
    placed: bool,
    before: str | None,
    after: str | None,
    now: dt.datetime,
) -> bool:
    """Write the member's new tier only if it is still the one read (conditional)."""
    if not placed:
        if after is None:
            return False
        result = await session.execute(
            insert_or_skip(session, MemberTier).values(
                program_code=code, member_id=member, tier_code=after, since=now
            )
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
    current = MemberTier.tier_code.is_(None) if before is None else MemberTier.tier_code == before
    result = await session.execute(
        update(MemberTier)
        .where(MemberTier.program_code == code, MemberTier.member_id == member, current)
        .values(tier_code=after, since=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
