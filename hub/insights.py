"""Merchant insights: what a merchant's points and rewards did over a period of business
dates, each figure one aggregate query in the database (never rows summed in Python).

The points figures read the hub's ledger, so they cover hosted programs; a connected
program's own accruals live at its partner. A period is business dates (the settlement
time zone), both ends included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from hub.enums import AccountKind, EntryKind, ProgramKind, RedemptionStatus
from hub.errors import InvalidInput
from hub.models import (
    Account,
    AccrualAmount,
    Entry,
    Member,
    MemberTier,
    Posting,
    Program,
    Redemption,
    Reward,
    Tier,
)

MAX_DAYS = 731  # two years: bounds the work of one request and the days it returns
TOP_REWARDS = 10
RISING_MEMBERS = 20
RISING_WINDOW_DAYS = 90
_LEDGER_KINDS = (AccountKind.ISSUED, AccountKind.REDEEMED, AccountKind.EXPIRED)


@dataclass(frozen=True)
class Period:
    """Business dates `first` to `last`, both included, in the settlement time zone."""

    first: dt.date
    last: dt.date
    tz: dt.tzinfo

    @classmethod
    def checked(cls, first: dt.date, last: dt.date, tz: dt.tzinfo) -> Period:
        if first > last:
            raise InvalidInput(f"from ({first}) is after to ({last}).", field=("from",))
        if (last - first).days + 1 > MAX_DAYS:
            raise InvalidInput(
                f"A period spans at most {MAX_DAYS} days; {first} to {last} spans "
                f"{(last - first).days + 1}.",
                field=("to",),
            )
        return cls(first, last, tz)

    def start_of(self, day: dt.date) -> dt.datetime:
        """The instant the business date `day` begins, in UTC."""
        return dt.datetime.combine(day, dt.time(), tzinfo=self.tz).astimezone(dt.UTC)

    @property
    def starts_at(self) -> dt.datetime:
        return self.start_of(self.first)

    @property
    def ends_at(self) -> dt.datetime:
        """The instant after the period (exclusive)."""
        return self.start_of(self.last + dt.timedelta(days=1))

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class Scope:
    """A merchant and its programs: `standard` (its primary one) earns on the whole
    purchase, `green` are its GREEN programs (points for green-tagged purchase lines);
    `ledger` names the programs' system accounts the points figures read, by id:
    (program, account kind)."""

    merchant_id: str
    standard: tuple[str, ...]
    green: tuple[str, ...]
    ledger: Mapping[int, tuple[str, str]]

    @property
    def programs(self) -> tuple[str, ...]:
        return self.standard + self.green


async def scope_of(session: AsyncSession, merchant_id: str) -> Scope | None:
    """The merchant's programs and their system accounts, or None when there is no such
    merchant: one query."""
    rows = (
        await session.execute(
            select(Program.code, Program.kind, Account.id, Account.kind)
            .outerjoin(
                Account,
                and_(
                    Account.program_code == Program.code,
                    Account.member_id.is_(None),
                    Account.kind.in_(_LEDGER_KINDS),
                ),
            )
            .where(Program.merchant_id == merchant_id)
            .order_by(Program.code)
        )
    ).all()
    if not rows:
        return None
    kinds = {code: kind for code, kind, _, _ in rows}
    return Scope(
        merchant_id=merchant_id,
        standard=tuple(c for c, k in kinds.items() if k != ProgramKind.GREEN),
        green=tuple(c for c, k in kinds.items() if k == ProgramKind.GREEN),
        ledger={account: (code, kind) for code, _, account, kind in rows if account is not None},
    )


async def _plan_for_these_values(session: AsyncSession) -> None:
    """On PostgreSQL, plan this transaction's statements for their own values.

    The driver prepares each statement once and PostgreSQL soon switches to a generic
    plan, which guesses that a system account holds a few postings and that any period
    is short: it then reads every posting of the program's accounts for a 30-day period
    (3x slower here than the plan for the actual dates and accounts)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.set_config("plan_cache_mode", "force_custom_plan", True)))


@dataclass(frozen=True)
class Day:
    """One business date's points: issued, redeemed (net of refunds), expired, green."""

    date: dt.date
    issued: int = 0
    redeemed: int = 0
    expired: int = 0
    green_issued: int = 0


@dataclass(frozen=True)
class LedgerFigures:
    days: list[Day]  # every date of the period, oldest first

    @property
    def issued(self) -> int:
        return sum(d.issued for d in self.days)

    @property
    def redeemed(self) -> int:
        return sum(d.redeemed for d in self.days)

    @property
    def expired(self) -> int:
        return sum(d.expired for d in self.days)

    @property
    def green_issued(self) -> int:
        return sum(d.green_issued for d in self.days)


async def ledger_figures(session: AsyncSession, scope: Scope, period: Period) -> LedgerFigures:
    """Points issued, redeemed and expired per business date, from the postings on the
    programs' system accounts (`issued` gives, `redeemed` and `expired` take): one query.
    Redeemed is net of refunds: a cancelled redemption gives its points back."""
    await _plan_for_these_values(session)
    # The accounts by id, not by a join on their kind: the planner then knows from its
    # statistics how many postings each holds (most of the table, for a busy program).
    rows = await session.execute(
        select(Entry.business_date, Posting.account_id, func.sum(Posting.amount))
        .join(Entry, Entry.id == Posting.entry_id)
        .where(
            Posting.account_id.in_(list(scope.ledger)),
            Entry.program_code.in_(scope.programs),
            Entry.business_date >= period.first,
            Entry.business_date <= period.last,
        )
        .group_by(Entry.business_date, Posting.account_id)
    )
    found: dict[dt.date, dict[str, int]] = {}
    for day, account, total in rows:
        program, kind = scope.ledger[account]
        figures = found.setdefault(day, {})
        if program in scope.green:
            name = "green_issued" if kind == AccountKind.ISSUED else None
        else:
            name = kind.lower()
        if name is not None:
            # The issued account gives points away: its postings are negative.
            points = -int(total) if kind == AccountKind.ISSUED else int(total)
            figures[name] = figures.get(name, 0) + points
    return LedgerFigures(
        days=[
            Day(
                date=day,
                issued=found.get(day, {}).get("issued", 0),
                redeemed=found.get(day, {}).get("redeemed", 0),
                expired=found.get(day, {}).get("expired", 0),
                green_issued=found.get(day, {}).get("green_issued", 0),
            )
            for day in period.days()
        ]
    )


async def active_members(session: AsyncSession, scope: Scope, period: Period) -> int:
    """Members who earned, spent or converted the merchant's points (an expiry is not
    activity) or redeemed one of its rewards in the period: one query."""
    await _plan_for_these_values(session)
    # Each side made distinct first: the union then merges thousands, not millions.
    moved = (
        select(Entry.member_id)
        .where(
            Entry.program_code.in_(scope.programs),
            Entry.business_date >= period.first,
            Entry.business_date <= period.last,
            Entry.member_id.is_not(None),
            Entry.kind != EntryKind.EXPIRY,
        )
        .group_by(Entry.member_id)
    )
    redeemed = (
        select(Redemption.member_id)
        .where(
            Redemption.merchant_id == scope.merchant_id,
            Redemption.created_at >= period.starts_at,
            Redemption.created_at < period.ends_at,
        )
        .group_by(Redemption.member_id)
    )
    either = union(moved, redeemed).subquery()
    return int(await session.scalar(select(func.count()).select_from(either)) or 0)


async def tier_counts(session: AsyncSession, scope: Scope) -> dict[int | None, int]:
    """Members of the merchant's programs per tier held (by tier id; None: below the
    first tier, or a tier no longer on the ladder), now: one query."""
    rows = await session.execute(
        select(Tier.id, func.count())
        .select_from(Account)
        .outerjoin(
            MemberTier,
            and_(
                MemberTier.program_code == Account.program_code,
                MemberTier.member_id == Account.member_id,
            ),
        )
        .outerjoin(
            Tier,
            and_(Tier.program_code == MemberTier.program_code, Tier.code == MemberTier.tier_code),
        )
        .where(Account.program_code.in_(scope.standard), Account.member_id.is_not(None))
        .group_by(Tier.id)
    )
    return {tier_id: int(count) for tier_id, count in rows}


def by_tier(
    ladders: Sequence[Sequence[Tier]], counts: Mapping[int | None, int]
) -> list[tuple[Tier | None, int]]:
    """Members below the first tier, then every tier lowest first, empty ones too."""
    return [(None, counts.get(None, 0))] + [
        (tier, counts.get(tier.id, 0)) for ladder in ladders for tier in ladder
    ]


@dataclass(frozen=True)
class RewardCount:
    reward: Reward
    redemptions: int
    points: int


async def top_rewards(
    session: AsyncSession, scope: Scope, period: Period, limit: int = TOP_REWARDS
) -> list[RewardCount]:
    """The merchant's rewards most redeemed in the period (confirmed redemptions: a
    cancelled one does not count), most first: one query. `points` is what they were
    worth in the merchant's own points: what was paid where members paid in them, the
    list price of the units paid in another program."""
    await _plan_for_these_values(session)
    count = func.count(Redemption.id)
    worth = func.sum(
        case(
            (Redemption.paid_with.in_(scope.programs), Redemption.points),
            else_=Reward.price * Redemption.quantity,
        )
    )
    rows = await session.execute(
        select(Reward, count, worth)
        .join(Redemption, Redemption.reward_id == Reward.id)
        .where(
            Redemption.merchant_id == scope.merchant_id,
            Redemption.status == RedemptionStatus.CONFIRMED,
            Redemption.created_at >= period.starts_at,
            Redemption.created_at < period.ends_at,
        )
        .group_by(Reward.id)
        .order_by(count.desc(), worth.desc(), Reward.id)
        .limit(limit)
    )
    return [RewardCount(reward=r, redemptions=int(n), points=int(p or 0)) for r, n, p in rows]


async def rising_members(
    session: AsyncSession, scope: Scope, period: Period, limit: int = RISING_MEMBERS
) -> list[Member]:
    """Members whose spend at the merchant in the 90 days ending with the period's last
    date is at least twice their spend in the 90 days before (and not nothing), most
    recent spend first: one query. A new customer's spend rises from nothing."""
    await _plan_for_these_values(session)
    end = period.ends_at
    recent_from = period.start_of(period.last - dt.timedelta(days=RISING_WINDOW_DAYS - 1))
    before_from = period.start_of(period.last - dt.timedelta(days=2 * RISING_WINDOW_DAYS - 1))
    recent = func.sum(
        case((AccrualAmount.occurred_at >= recent_from, AccrualAmount.amount), else_=0)
    )
    before = func.sum(
        case((AccrualAmount.occurred_at < recent_from, AccrualAmount.amount), else_=0)
    )
    spend = (
        select(AccrualAmount.member_id, recent.label("recent"))
        .where(
            AccrualAmount.program_code.in_(scope.standard),
            AccrualAmount.occurred_at >= before_from,
            AccrualAmount.occurred_at < end,
        )
        .group_by(AccrualAmount.member_id)
        # Both sides in the column's own (exact) representation: no literal factor.
        .having(recent > 0, recent >= before + before)
        .subquery()
    )
    rows = await session.scalars(
        select(Member)
        .join(spend, spend.c.member_id == Member.id)
        .order_by(spend.c.recent.desc(), Member.id)
        .limit(limit)
    )
    return list(rows)
