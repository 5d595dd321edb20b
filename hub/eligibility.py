"""Who qualifies: a member's profile (tiers, credit level, age, birthday) and the rules
that read it, for promotions (`PromotionInput.tiers`, `creditLevels`, `minAge`,
`birthdayMonth`) and for rewards that open early to some members (`priorityUntil`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import KEPT, Database, get_row
from hub.errors import FieldPath, NotEligible
from hub.models import Account, Member, Promotion, Reward, Tier
from hub.models.mall import RewardLike
from hub.promotions import targeted
from hub.tiers import standing
from hub.tiers.ladder import ladders_by_program

if TYPE_CHECKING:
    from hub.caches import Loyalty


@dataclass(frozen=True)
class Profile:
    """What eligibility rules read about one member, as of `today` (local date)."""

    member_id: str
    today: dt.date
    credit_level: str | None = None
    birth_date: dt.date | None = None
    tiers: Mapping[str, Tier] = field(default_factory=dict)  # program code -> tier now
    # The programs the member has an account in, when read (a storefront's prices: the
    # member cannot pay from the others); None: not read.
    holds: frozenset[str] | None = None

    def may_pay_from(self, program_code: str) -> bool:
        return self.holds is None or program_code in self.holds

    def tier_code(self, program_code: str) -> str | None:
        tier = self.tiers.get(program_code)
        return tier.code if tier is not None else None

    def tier_discount(self, program_code: str) -> Decimal:
        tier = self.tiers.get(program_code)
        return tier.redemption_discount_percent if tier is not None else Decimal(0)

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def codes(value: str | None) -> list[str]:
    """A JSON list column (None: empty)."""
    found: list[str] = json.loads(value) if value else []
    return found


def encode(values: Iterable[str]) -> str | None:
    unique = sorted(set(values))
    return json.dumps(unique) if unique else None


async def profile_of(
    session: AsyncSession,
    member_id: str,
    at: dt.datetime,
    tz: dt.tzinfo,
    ladders: Mapping[str, Sequence[Tier]] | None = None,
) -> Profile | None:
    """The member's profile now, with their tier in every program they hold that has
    tiers (a few queries whatever the number of programs), or only in `ladders`' programs
    when given; None for an unknown member."""
    member = await get_row(session, Member, member_id)  # (the one a write locked: no read)
    if member is None:
        return None
    if ladders is None:
        ladders = await _ladders_held(session, member_id)
    ladders = {code: tiers for code, tiers in ladders.items() if tiers}
    found = await standing.qualifications(session, list(ladders), [member_id], at)
    held = await standing.held_tiers(session, list(ladders), [member_id])
    tiers = {}
    for code, ladder in ladders.items():
        q = found.get((code, member_id), standing.Qualification())
        tier = standing.effective(ladder, held.get((code, member_id)), q)
        if tier is not None:
            tiers[code] = tier
    return Profile(
        member_id=member_id,
        today=at.astimezone(tz).date(),
        credit_level=member.credit_level,
        birth_date=member.birth_date,
        tiers=tiers,
    )


_SHOPPER = (
    select(Member.credit_level, Member.birth_date, Account.program_code)
    .outerjoin(Account, Account.member_id == Member.id)
    .where(Member.id == bindparam("id"))
)


async def shopper(
    db: Database, loyalty: Loyalty, member_id: str, at: dt.datetime, tz: dt.tzinfo
) -> Profile | None:
    """`profile_of` for a request's prices, with the programs the member holds: when no
    program has tiers (`loyalty`, as the process keeps it), one statement outside any
    transaction (a row per account)."""
    if any(loyalty.ladders.values()):
        async with db.read() as session:
            held = frozenset(
                await session.scalars(
                    select(Account.program_code).where(Account.member_id == member_id)
                )
            )
            # The ladders of the programs held, as the process keeps them (profile_of would
            # read the same programs again to find them).
            ladders = {code: loyalty.ladder(code) for code in held}
            profile = await profile_of(session, member_id, at, tz, ladders)
            return None if profile is None else replace(profile, holds=held)
    async with db.single_read() as reads:
        rows = (await reads.execute(_SHOPPER, {"id": member_id})).all()
    if not rows:
        return None
    today = at.astimezone(tz).date()
    return Profile(
        member_id,
        today,
        credit_level=rows[0].credit_level,
        birth_date=rows[0].birth_date,
        holds=frozenset(row.program_code for row in rows if row.program_code is not None),
    )


async def _ladders_held(session: AsyncSession, member_id: str) -> Mapping[str, Sequence[Tier]]:
    """The tier ladders of the programs the member holds: as the process keeps them
    (hub.caches; no read of the member's programs when no program has tiers), else read."""
    kept = session.info.get(KEPT)
    loyalty = await kept.loyalty() if kept is not None else None
    if loyalty is not None and not any(loyalty.ladders.values()):
        return {}
    held = list(
        await session.scalars(select(Account.program_code).where(Account.member_id == member_id))
    )
    if loyalty is not None:
        return {code: loyalty.ladder(code) for code in held}
    return await ladders_by_program(session, held)


async def profiles_of(
    session: AsyncSession, member_ids: Sequence[str], at: dt.datetime, tz: dt.tzinfo
) -> dict[str, Profile]:
    """Many members' profiles now, without their tiers (a batch places those itself), in
    one query; unknown members are left out."""
    rows = await session.execute(
        select(Member.id, Member.credit_level, Member.birth_date).where(
            Member.id.in_(sorted(set(member_ids)))
        )
    )
    today = at.astimezone(tz).date()
    return {
        member_id: Profile(
            member_id=member_id, today=today, credit_level=credit_level, birth_date=birth_date
        )
        for member_id, credit_level, birth_date in rows
    }


def applies(promotion: Promotion, profile: Profile | None, on: dt.date | None = None) -> bool:
    """Whether the promotion applies to this member on `on` (default: the profile's day).
    Without a member (a merchant browsing the mall) only promotions for everyone apply.
    Each rule given must hold: a tier listed, a credit level listed, the age, the month."""
    if not targeted(promotion):
        return True
    if profile is None:
        return False
    day = on or profile.today
    tiers = codes(promotion.tiers)
    if tiers and profile.tier_code(promotion.program_code) not in tiers:
        return False
    levels = codes(promotion.credit_levels)
    if levels and profile.credit_level not in levels:
        return False
    if promotion.min_age is not None:
        age = profile.age_on(day)
        if age is None or age < promotion.min_age:
            return False
    if promotion.birthday_month:
        born = profile.birth_date
        if born is None or born.month != day.month:
            return False
    return True


def opens_at(
    reward: RewardLike, program_code: str, profile: Profile | None, at: dt.datetime
) -> dt.datetime | None:
    """When this member may redeem the reward: None now, else its priorityUntil. Before
    then only members in one of its priority tiers (of the reward merchant's program,
    `program_code`) or credit levels may."""
    until = reward.priority_until
    if until is None or until <= at:
        return None
    if profile is not None:
        if profile.tier_code(program_code) in codes(reward.priority_tiers):
            return None
        if profile.credit_level in codes(reward.priority_credit_levels):
            return None
    return until


def require_open(
    reward: Reward,
    program_code: str,
    profile: Profile | None,
    at: dt.datetime,
    tz: dt.tzinfo,
    field: FieldPath,
) -> None:
    """NotEligible, saying when it opens, for a member who may not redeem it yet."""
    until = opens_at(reward, program_code, profile, at)
    if until is None:
        return
    local = until.astimezone(tz).isoformat(timespec="minutes")
    who = []
    if codes(reward.priority_tiers):
        who.append("tiers " + ", ".join(codes(reward.priority_tiers)))
    if codes(reward.priority_credit_levels):
        who.append("credit levels " + ", ".join(codes(reward.priority_credit_levels)))
    early = f"; until then only members in {' or '.join(who)} may redeem it" if who else ""
    raise NotEligible(f"{reward.title} opens for you at {local} ({tz}){early}.", field=field)
