"""Where a member stands on a program's ladder: what qualifies (spend and orders in the
trailing 12 months), the tier held, and the move up that an accrual earns at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.enums import WebhookEvent
from hub.ledger.points import add_months
from hub.models import AccrualAmount, MemberTier, Tier
from hub.models.base import table_of
from hub.money import money
from hub.tiers.ladder import ladders_by_program
from hub.webhooks import outbox

WINDOW_MONTHS = 12


@dataclass(frozen=True)
class Qualification:
    spend: Decimal = Decimal(0)
    orders: int = 0


@dataclass(frozen=True)
class Standing:
    """A member's tier status in one program (TierStatus)."""

    tier: Tier | None  # null: below the first tier
    qualification: Qualification
    next: Tier | None

    @property
    def spend_to_next(self) -> Decimal | None:
        if self.next is None:
            return None
        return max(self.next.min_spend - self.qualification.spend, Decimal(0))

    @property
    def orders_to_next(self) -> int | None:
        if self.next is None:
            return None
        return max(self.next.min_orders - self.qualification.orders, 0)


def window_start(at: dt.datetime) -> dt.datetime:
    """The start of the trailing 12 months that end at `at` (purchases after it count)."""
    return add_months(at, -WINDOW_MONTHS)


def qualifying(tiers: Sequence[Tier], q: Qualification) -> Tier | None:
    """The highest tier the spend and orders qualify for."""
    found = None
    for tier in tiers:
        if q.spend >= tier.min_spend and q.orders >= tier.min_orders:
            found = tier
    return found


def raised(tiers: Sequence[Tier], held: str | None, q: Qualification) -> Tier | None:
    """The tier an accrual moves the member up to: the highest the spend and orders now
    qualify for, when it is above the one held (a held code no longer on the ladder counts
    for nothing); else None."""
    target = qualifying(tiers, q)
    current = {t.code: t for t in tiers}.get(held or "")
    if target is None or (current is not None and current.rank >= target.rank):
        return None
    return target


def effective(tiers: Sequence[Tier], held: str | None, q: Qualification) -> Tier | None:
    """The tier a member has now: the one held (until the nightly review lowers it) or the
    one qualified for, whichever is higher. A held code no longer on the ladder counts
    for nothing."""
    by_code = {t.code: t for t in tiers}
    candidates = [t for t in (by_code.get(held or ""), qualifying(tiers, q)) if t is not None]
    return max(candidates, key=lambda t: t.rank, default=None)


def standing_of(tiers: Sequence[Tier], held: str | None, q: Qualification) -> Standing:
    tier = effective(tiers, held, q)
    rank = tier.rank if tier is not None else -1
    above = [t for t in tiers if t.rank > rank]
    return Standing(tier=tier, qualification=q, next=above[0] if above else None)


async def qualifications(
    session: AsyncSession,
    program_codes: Sequence[str],
    member_ids: Sequence[str],
    at: dt.datetime,
) -> dict[tuple[str, str], Qualification]:
    """Spend and orders per (program, member) in the 12 months up to `at`, in one query."""
    if not program_codes or not member_ids:
        return {}
    rows = await session.execute(
        select(
            AccrualAmount.program_code,
            AccrualAmount.member_id,
            func.coalesce(func.sum(AccrualAmount.amount), 0),
            func.count(),
        )
        .where(
            AccrualAmount.program_code.in_(program_codes),
            AccrualAmount.member_id.in_(member_ids),
            AccrualAmount.occurred_at > window_start(at),
            AccrualAmount.occurred_at <= at,
        )
        .group_by(AccrualAmount.program_code, AccrualAmount.member_id)
    )
    return {
        (program, member): Qualification(spend=Decimal(spend), orders=int(orders))
        for program, member, spend, orders in rows
    }


async def held_tiers(
    session: AsyncSession, program_codes: Sequence[str], member_ids: Sequence[str]
) -> dict[tuple[str, str], str | None]:
    """The tier code each member holds per program (absent: never placed)."""
    if not program_codes or not member_ids:
        return {}
    rows = await session.execute(
        select(MemberTier.program_code, MemberTier.member_id, MemberTier.tier_code).where(
            MemberTier.program_code.in_(program_codes), MemberTier.member_id.in_(member_ids)
        )
    )
    return {(program, member): code for program, member, code in rows}


async def record_purchase(
    session: AsyncSession,
    *,
    entry_id: int,
    program_code: str,
    member_id: str,
    amount: Decimal,
    occurred_at: dt.datetime,
) -> None:
    """Keep what an accrual's purchase was for; tiers qualify on it."""
    await session.execute(
        _RECORD_PURCHASE,
        {
            "entry_id": entry_id,
            "program_code": program_code,
            "member_id": member_id,
            "amount": amount,
            "occurred_at": occurred_at,
        },
    )


_RECORD_PURCHASE = insert(table_of(AccrualAmount))


async def raise_after_accrual(
    session: AsyncSession,
    tiers: Sequence[Tier],
    merchant_id: str,
    member_id: str,
    at: dt.datetime,
) -> Tier | None:
    """Move the member up at once when the spend and orders now qualify for a tier above
    the one held, with a TIER_CHANGED event; the new tier, or None when nothing moved.

    Runs in the accrual's transaction, after its credit has locked the member's account,
    so that two accruals of one member never place them concurrently."""
    if not tiers:
        return None
    program_code = tiers[0].program_code
    q = (await qualifications(session, [program_code], [member_id], at)).get(
        (program_code, member_id), Qualification()
    )
    row = await session.get(MemberTier, (program_code, member_id))
    before = row.tier_code if row else None
    target = raised(tiers, before, q)
    if target is None:
        return None
    if row is None:
        session.add(
            MemberTier(
                program_code=program_code, member_id=member_id, tier_code=target.code, since=at
            )
        )
    else:
        row.tier_code, row.since = target.code, at
    await session.flush()
    await emit_changed(
        session, merchant_id, program_code, member_id, (before, target.code), "UP", q
    )
    return target


class Climb:
    """The members of a batch of accruals on one program's ladder (an import's chunk, one
    transaction): read once, then moved in memory purchase by purchase with the rules of
    one accrual (the purchase earns at the tier before it; raise_after_accrual's move up),
    and written once. The caller holds the members' accounts locked, as an accrual does."""

    def __init__(
        self,
        tiers: Sequence[Tier],
        at: dt.datetime,
        held: dict[str, str | None],
        found: dict[str, Qualification],
    ) -> None:
        self.tiers = tiers
        self.at = at
        self.since = window_start(at)  # purchases after it qualify, as in qualifications()
        self.held = held  # absent: never placed
        self.found = found
        self.moved: set[str] = set()
        self._current: dict[str, Tier | None] = {}

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        tiers: Sequence[Tier],
        member_ids: Sequence[str],
        at: dt.datetime,
    ) -> Climb:
        code = tiers[0].program_code
        found = await qualifications(session, [code], member_ids, at)
        held = await held_tiers(session, [code], member_ids)
        return cls(
            tiers,
            at,
            {member: tier for (_, member), tier in held.items()},
            {member: q for (_, member), q in found.items()},
        )

    def tier(self, member_id: str) -> Tier | None:
        """The tier the member's next purchase earns at."""
        if member_id not in self._current:
            q = self.found.get(member_id, Qualification())
            self._current[member_id] = effective(self.tiers, self.held.get(member_id), q)
        return self._current[member_id]

    def purchase(
        self, member_id: str, amount: Decimal, occurred: dt.datetime
    ) -> tuple[tuple[str | None, str], Qualification] | None:
        """Count a purchase; the move up it earns (tier codes before and after) with what
        qualified for it, or None."""
        q = self.found.get(member_id, Qualification())
        if self.since < occurred <= self.at:
            q = self.found[member_id] = Qualification(q.spend + amount, q.orders + 1)
        before = self.held.get(member_id)
        target = raised(self.tiers, before, q)
        if target is None:  # the tier the member has stays what it was
            return None
        self.held[member_id] = target.code
        self._current[member_id] = target
        self.moved.add(member_id)
        return (before, target.code), q

    async def write(self, session: AsyncSession) -> None:
        """The tiers of the members who moved up, since `at`."""
        if not self.moved:
            return
        code = self.tiers[0].program_code
        moved = sorted(self.moved)
        await session.execute(
            delete(MemberTier)
            .where(MemberTier.program_code == code, MemberTier.member_id.in_(moved))
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            insert(MemberTier),
            [
                {"program_code": code, "member_id": m, "tier_code": self.held[m], "since": self.at}
                for m in moved
            ],
        )


async def emit_changed(
    session: AsyncSession,
    merchant_id: str,
    program_code: str,
    member_id: str,
    change: tuple[str | None, str | None],
    direction: str,
    q: Qualification,
) -> None:
    """TIER_CHANGED to the program's merchant (`change`: the tier codes before and after,
    None below the first tier): ids and amounts, never a name."""
    await outbox.emit(
        session,
        WebhookEvent.TIER_CHANGED,
        [merchant_id],
        changed_data(program_code, member_id, change, direction, q),
    )


def changed_data(
    program_code: str,
    member_id: str,
    change: tuple[str | None, str | None],
    direction: str,
    q: Qualification,
) -> dict[str, object]:
    """A TIER_CHANGED event's data (an accrual's, the review's, an import's)."""
    return {
        "memberId": member_id,
        "program": program_code,
        "from": change[0],
        "to": change[1],
        "direction": direction,
        "qualifyingSpend": str(money(q.spend)),
        "qualifyingOrders": q.orders,
    }


async def standings(
    session: AsyncSession, keys: Sequence[tuple[str, str]], at: dt.datetime
) -> dict[tuple[str, str], Standing]:
    """Standings per (program, member), for programs with tiers only; three queries."""
    programs = sorted({p for p, _ in keys})
    ladders = {p: t for p, t in (await ladders_by_program(session, programs)).items() if t}
    members = sorted({m for p, m in keys if p in ladders})
    found = await qualifications(session, list(ladders), members, at)
    held = await held_tiers(session, list(ladders), members)
    return {
        key: standing_of(ladders[key[0]], held.get(key), found.get(key, Qualification()))
        for key in keys
        if key[0] in ladders
    }
