"""What each staged line of a chunk becomes: an accrual, or a rejection with its code.

The rules are accruePoints' (hub/accrual.py), line by line in line order: the member
(by id or membership number) enrolled in the program, the order not accrued before (in
the ledger or earlier in the file), the points (the promotions active then that the member
is eligible for, times the member's tier, within the cap: hub.accrual's own functions)
between 1 and the cap of one movement, the balance within the cap of a balance; the same
codes and sentences. Each accepted line counts for the member's tier as an accrual does:
the member moves up at the line that qualifies, and their next line earns at the new
tier (hub.tiers.standing.Climb). What a line needs from the database is read once for the
whole chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from hub import accrual, eligibility, promotions
from hub.config import Settings
from hub.enums import EntryKind, ErrorCode, WebhookEvent
from hub.imports import repository
from hub.imports.repository import Line
from hub.imports.rows import from_cents, from_micros
from hub.ledger.points import expiry_of
from hub.models import Account, Member, Program, Promotion, Tier
from hub.tiers import standing
from hub.tiers.ladder import ladder
from hub.validate import MAX_BALANCE, MAX_POINTS_PER_MOVEMENT
from hub.webhooks import outbox

ACCRUAL = EntryKind.ACCRUAL
NOT_FOUND, INVALID, REPEATED = (
    ErrorCode.NOT_FOUND.value,
    ErrorCode.INVALID_INPUT.value,
    ErrorCode.ALREADY_EXISTS.value,
)
UNTAGGED = [promotions.Line(Decimal(0))]  # what an imported line is to promotions' tags
_QUARTER_HOUR_US = 900_000_000  # every time zone's offset and change falls on one
_DAY_US = 86_400_000_000


@dataclass
class Decided:
    """The rows of a chunk, ready for multi-row statements."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)
    postings: list[tuple[Any, ...]] = field(default_factory=list)
    lots: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[tuple[Any, ...]] = field(default_factory=list)  # (job, line, code, message)
    amounts: list[tuple[Any, ...]] = field(default_factory=list)  # what tiers qualify on
    events: list[dict[str, Any]] = field(default_factory=list)
    balances: list[tuple[int, int]] = field(default_factory=list)  # (account id, new balance)
    points: int = 0
    climb: standing.Climb | None = None  # the members' tiers, when the program has tiers


@dataclass
class Context:
    """The job and program a chunk belongs to."""

    settings: Settings
    job_id: str
    program: Program
    actor: str
    now: dt.datetime


async def decide(session: AsyncSession, ctx: Context, lines: Sequence[Line]) -> Decided:
    """Each line in order, with accruePoints' rules and messages; the rows to write."""
    code = ctx.program.code
    accounts = await _Accounts.load(session, code, lines)
    days = _Days(ctx.settings, ctx.program.expiry_months)
    earning = await _Earning.load(session, ctx, lines, accounts, days)
    out = Decided(climb=earning.climb)
    accepted: list[Accepted] = []
    reject = out.rejects.append
    job_id = ctx.job_id
    seen: set[str] = set()  # orders accepted earlier in this chunk
    for line, member_id, external_ref, order_ref, cents, micros, account, _, _, _, earned in lines:
        if account is None:
            reject((job_id, line, NOT_FOUND, accounts.missing(member_id, external_ref)))
            continue
        if member_id and external_ref and accounts.ref_of[account] != external_ref:
            reject(
                (
                    job_id,
                    line,
                    INVALID,
                    f"memberId {member_id} and externalRef {external_ref!r} name different "
                    "members.",
                )
            )
            continue
        if earned is not None or order_ref in seen:
            message = f"Order {order_ref!r} has already earned points in {code}."
            reject((job_id, line, REPEATED, message))
            continue
        member = accounts.member_of[account]
        points, labels = earning.points(member, cents, micros)
        if points < 1:
            reject(
                (
                    job_id,
                    line,
                    INVALID,
                    f"{from_cents(cents)} at {ctx.program.accrual_rate} points per unit earns "
                    "no whole point.",
                )
            )
            continue
        if points > MAX_POINTS_PER_MOVEMENT:
            reject(
                (
                    job_id,
                    line,
                    INVALID,
                    f"This purchase would earn {points:,} points; one accrual earns at most "
                    f"{MAX_POINTS_PER_MOVEMENT:,}.",
                )
            )
            continue
        before = accounts.balance[account]
        balance = before + points
        if balance > MAX_BALANCE:
            reject(
                (
                    job_id,
                    line,
                    INVALID,
                    f"Crediting {points:,} points would take the balance of {before:,} past "
                    f"{MAX_BALANCE:,}, the most a balance can hold; spend or convert points "
                    "first.",
                )
            )
            continue
        accounts.balance[account] = balance
        seen.add(order_ref)
        moved = earning.purchase(member, cents, micros)
        accepted.append((line, account, order_ref, cents, micros, points, balance, labels, moved))
    if accepted:
        await _rows(session, ctx, accounts, days, accepted, out)
    return out


Moved = tuple[tuple[str | None, str], standing.Qualification] | None  # Climb.purchase's
# (line, account, order, cents, micros, points, balance after, memo labels, tier move)
Accepted = tuple[int, int, str, int, int, int, int, str, Moved]


async def _rows(
    session: AsyncSession,
    ctx: Context,
    accounts: _Accounts,
    days: _Days,
    accepted: list[Accepted],
    out: Decided,
) -> None:
    """Entries, postings, lots, purchase amounts and events of the accepted lines, with
    their entry ids."""
    code, job_id, actor = ctx.program.code, ctx.job_id, ctx.actor
    merchant = ctx.program.merchant_id
    issued = await repository.issued_account(session, code)
    ids = await repository.entry_ids(session, len(accepted))
    listened = await outbox.listened(session, WebhookEvent.POINTS_ACCRUED, merchant)
    entries, postings, lots, amounts = out.entries, out.postings, out.lots, out.amounts
    member_of = accounts.member_of
    changed: dict[int, int] = {}
    for entry_id, (line, account, order_ref, cents, micros, points, balance, labels, moved) in zip(
        ids, accepted, strict=True
    ):
        occurred = from_micros(micros)
        member_id = member_of[account]
        business_date, expiry = days.of(micros, occurred)
        memo = f"purchase of {cents // 100}.{cents % 100:02d}"  # as str(Decimal) of the amount
        entries.append(
            (
                entry_id,
                ACCRUAL,
                code,
                member_id,
                actor,
                f"{job_id}:{line}",
                occurred,
                business_date,
                order_ref,
                f"{memo} ({labels})" if labels else memo,
            )
        )
        postings.append((entry_id, account, points, balance))
        postings.append((entry_id, issued, -points, None))
        lots.append((account, entry_id, points, points, expiry, occurred))
        amounts.append((entry_id, code, member_id, from_cents(cents), occurred))
        changed[account] = balance
        out.points += points
        if moved is not None:  # as accruePoints: the move up first, then the points
            change, qualified = moved
            data = standing.changed_data(code, member_id, change, "UP", qualified)
            out.events.append(outbox.event_row(WebhookEvent.TIER_CHANGED, merchant, data, ctx.now))
        if listened:
            out.events.append(
                outbox.event_row(
                    WebhookEvent.POINTS_ACCRUED,
                    merchant,
                    {
                        "memberId": member_id,
                        "program": code,
                        "points": points,
                        "orderRef": order_ref,
                        "entryId": str(entry_id),
                        "importJobId": job_id,
                    },
                    ctx.now,
                )
            )
    out.balances = sorted(changed.items())


class _Accounts:
    """The chunk's member accounts with their balances as the chunk moves them; on
    PostgreSQL locked in id order (SELECT ... FOR UPDATE) and read again once locked."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.ref_of: dict[int, str | None] = {}
        self.member_of: dict[int, str] = {}
        self.balance: dict[int, int] = {}
        self.members: set[str] = set()  # of the ids not enrolled, those that exist

    @classmethod
    async def load(cls, session: AsyncSession, code: str, lines: Sequence[Line]) -> _Accounts:
        found = cls(code)
        missing: set[str] = set()
        for line in lines:
            account, member_id = line[6], line[1]
            if account is None:
                if member_id:
                    missing.add(member_id)
                continue
            found.member_of[account] = line[7]
            found.ref_of[account] = line[8]
            found.balance[account] = line[9]
        if found.balance and session.get_bind().dialect.name == "postgresql":
            locked = await session.execute(
                select(Account.id, Account.balance)
                .where(Account.id == any_(bindparam("ids", list(found.balance), ARRAY(BigInteger))))
                .order_by(Account.id)
                .with_for_update(key_share=True)
            )
            found.balance.update((account, balance) for account, balance in locked)
        if missing:
            found.members = set(
                await session.scalars(select(Member.id).where(Member.id.in_(list(missing))))
            )
        return found

    def missing(self, member_id: str | None, external_ref: str | None) -> str:
        """accruePoints' sentence for a member it cannot credit."""
        if member_id and member_id not in self.members:
            return f"No member has id {member_id!r}."
        if member_id:
            return f"Member {member_id} is not enrolled in {self.code}; enroll them first."
        return f"No member of {self.code} has externalRef {external_ref!r}."


class _Earning:
    """What a line earns, as accruePoints computes it (hub.accrual: the promotions active
    then that the member is eligible for and that cover an untagged purchase, times the
    member's tier, within the cap), and what it does to the member's tier. Read once per
    chunk: the promotions, the ladder (and, when there is one, the members' standings), the
    members' profiles when a promotion is for some members only. Each set of promotions
    and tier is worked out once, in whole numbers when rate and multiplier are."""

    def __init__(
        self,
        rate: Decimal,
        offered: list[Promotion],
        days: _Days,
        climb: standing.Climb | None,
        profiles: dict[str, eligibility.Profile] | None,
    ) -> None:
        self.rate = rate
        self.promotions = offered
        self.days = days
        self.climb = climb
        self.profiles = profiles  # None: every promotion is for every member
        self._by_set: dict[
            tuple[frozenset[int], str | None], tuple[list[Promotion], Tier | None, str, int | None]
        ] = {}
        self._plain = self._factor([], None)

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        ctx: Context,
        lines: Sequence[Line],
        accounts: _Accounts,
        days: _Days,
    ) -> _Earning:
        program = ctx.program
        earliest = from_micros(min(line[5] for line in lines))
        latest = from_micros(max(line[5] for line in lines))
        rows = await session.scalars(
            select(Promotion)
            .where(
                Promotion.program_code == program.code,
                Promotion.starts_at <= latest,
                Promotion.ends_at > earliest,
            )
            .order_by(Promotion.id)
        )
        # An imported line is a purchase without lines: promotions for tagged lines only
        # never cover it.
        offered = [p for p in rows if promotions.covers(p, ())]
        members = sorted(set(accounts.member_of.values()))
        tiers = await ladder(session, program.code)
        climb = await standing.Climb.load(session, tiers, members, ctx.now) if tiers else None
        profiles = None
        if any(promotions.targeted(p) for p in offered):
            profiles = await eligibility.profiles_of(session, members, ctx.now, ctx.settings.tz)
        return cls(program.accrual_rate, offered, days, climb, profiles)

    def _factor(
        self, applied: list[Promotion], tier: Tier | None
    ) -> tuple[list[Promotion], Tier | None, str, int | None]:
        multiplier = promotions.accrual_multiplier(applied, accrual.multiplier_of(tier))
        exact = (
            int(self.rate * multiplier)
            if self.rate == int(self.rate) and multiplier == int(multiplier)
            else None
        )
        return applied, tier, accrual.memo_labels(tier, applied), exact

    def points(self, member_id: str, cents: int, micros: int) -> tuple[int, str]:
        """The points of a line and the labels of its memo."""
        tier = self.climb.tier(member_id) if self.climb is not None else None
        if not self.promotions and tier is None:
            applied, _, labels, exact = self._plain
        else:
            applied, tier, labels, exact = self._at(member_id, tier, micros)
        if exact is not None:  # floor(amount x rate x multiplier), as whole numbers
            return cents * exact // 100, labels
        line = promotions.Line(from_cents(cents))
        base = accrual.multiplier_of(tier)
        return promotions.points_on([line], self.rate, applied, base), labels

    def purchase(self, member_id: str, cents: int, micros: int) -> Moved:
        """Count an accepted line for the member's tier; the move up it earns, if any."""
        if self.climb is None:
            return None
        return self.climb.purchase(member_id, from_cents(cents), from_micros(micros))

    def _at(
        self, member_id: str, tier: Tier | None, micros: int
    ) -> tuple[list[Promotion], Tier | None, str, int | None]:
        moment = from_micros(micros)
        active = [p for p in self.promotions if p.starts_at <= moment < p.ends_at]
        if active and self.profiles is not None:
            profile = self.profiles.get(member_id)
            if profile is not None and tier is not None:
                profile = replace(profile, tiers={tier.program_code: tier})
            day = self.days.date(micros, moment)
            active = accrual.applying(active, profile, day, UNTAGGED)
        key = (frozenset(p.id for p in active), tier.code if tier is not None else None)
        found = self._by_set.get(key)
        if found is None:
            found = self._by_set[key] = self._factor(active, tier)
        return found


class _Days:
    """A moment's business date (settings.business_date) and its lots' expiry
    (expiry_of), from what each UTC day and quarter of an hour share: time zones change
    offset on a quarter of an hour, and adding months keeps the time of day."""

    def __init__(self, settings: Settings, months: int | None) -> None:
        self.settings = settings
        self.months = months
        self._dates: dict[int, dt.date] = {}
        self._shifts: dict[int, dt.timedelta] = {}

    def date(self, micros: int, moment: dt.datetime) -> dt.date:
        """The local date of a moment (eligibility reads ages and birthdays on it)."""
        quarter = micros // _QUARTER_HOUR_US
        date = self._dates.get(quarter)
        if date is None:
            date = self._dates[quarter] = self.settings.business_date(moment)
        return date

    def of(self, micros: int, moment: dt.datetime) -> tuple[dt.date, dt.datetime | None]:
        date = self.date(micros, moment)
        if self.months is None:
            return date, None
        day = micros // _DAY_US
        shift = self._shifts.get(day)
        if shift is None:
            midnight = from_micros(day * _DAY_US)
            expires = expiry_of(midnight, self.months)
            assert expires is not None
            shift = self._shifts[day] = expires - midnight
        return date, moment + shift
