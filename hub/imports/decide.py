"""What each staged line of a chunk becomes: an accrual, or a rejection with its code.

The rules are accruePoints' (hub/accrual.py), line by line in line order: the member
(by id or membership number) enrolled in the program, the order not accrued before (in
the ledger or earlier in the file), the points floor(amount x accrualRate x the
promotions' multiplier) between 1 and the cap of one movement, the balance within the
cap of a balance; the same codes and sentences. What a line needs from the database is
read once for the whole chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from hub import promotions
from hub.accrual import points_for
from hub.config import Settings
from hub.enums import EntryKind, ErrorCode, WebhookEvent
from hub.imports import repository
from hub.imports.repository import Line
from hub.imports.rows import from_cents, from_micros
from hub.ledger.points import expiry_of
from hub.models import Account, Member, Program, Promotion
from hub.validate import MAX_BALANCE, MAX_POINTS_PER_MOVEMENT
from hub.webhooks import outbox

ACCRUAL = EntryKind.ACCRUAL.value
NOT_FOUND, INVALID, REPEATED = (
    ErrorCode.NOT_FOUND.value,
    ErrorCode.INVALID_INPUT.value,
    ErrorCode.ALREADY_EXISTS.value,
)
_QUARTER_HOUR_US = 900_000_000  # every time zone's offset and change falls on one
_DAY_US = 86_400_000_000


@dataclass
class Decided:
    """The rows of a chunk, ready for multi-row statements."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)
    postings: list[tuple[Any, ...]] = field(default_factory=list)
    lots: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[tuple[Any, ...]] = field(default_factory=list)  # (job, line, code, message)
    events: list[dict[str, Any]] = field(default_factory=list)
    balances: list[tuple[int, int]] = field(default_factory=list)  # (account id, new balance)
    points: int = 0


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
    earning = await _Earning.load(session, ctx.program, lines)
    out = Decided()
    accepted: list[tuple[int, int, str, int, int, int, int, str]] = []
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
        points, labels = earning.points(cents, micros)
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
        accepted.append((line, account, order_ref, cents, micros, points, balance, labels))
    if accepted:
        await _rows(session, ctx, accounts, accepted, out)
    return out


async def _rows(
    session: AsyncSession,
    ctx: Context,
    accounts: _Accounts,
    accepted: list[tuple[int, int, str, int, int, int, int, str]],
    out: Decided,
) -> None:
    """Entries, postings, lots and events of the accepted lines, with their entry ids."""
    code, job_id, actor = ctx.program.code, ctx.job_id, ctx.actor
    months = ctx.program.expiry_months
    issued = await repository.issued_account(session, code)
    ids = await repository.entry_ids(session, len(accepted))
    listened = await outbox.listened(session, WebhookEvent.POINTS_ACCRUED, ctx.program.merchant_id)
    days = _Days(ctx.settings, months)
    entries, postings, lots = out.entries, out.postings, out.lots
    member_of = accounts.member_of
    changed: dict[int, int] = {}
    for entry_id, (line, account, order_ref, cents, micros, points, balance, labels) in zip(
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
        changed[account] = balance
        out.points += points
        if listened:
            out.events.append(
                outbox.event_row(
                    WebhookEvent.POINTS_ACCRUED,
                    ctx.program.merchant_id,
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
                .with_for_update()
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
    """floor(amount x accrualRate x the multiplier of the promotions active then), as
    hub.accrual.points_for computes it; in whole numbers when rate and multiplier are."""

    def __init__(self, rate: Decimal, active: list[Promotion]) -> None:
        self.rate = rate
        self.promotions = active
        self._by_set: dict[frozenset[int], tuple[Decimal, str, int | None]] = {}
        self._plain = self._factor(Decimal(1), "")

    @classmethod
    async def load(cls, session: AsyncSession, program: Program, lines: Sequence[Line]) -> _Earning:
        earliest = from_micros(min(line[5] for line in lines))
        latest = from_micros(max(line[5] for line in lines))
        rows = await session.scalars(
            select(Promotion).where(
                Promotion.program_code == program.code,
                Promotion.starts_at <= latest,
                Promotion.ends_at > earliest,
            )
        )
        return cls(program.accrual_rate, list(rows))

    def _factor(self, multiplier: Decimal, labels: str) -> tuple[Decimal, str, int | None]:
        whole = self.rate * multiplier
        exact = (
            int(whole) if self.rate == int(self.rate) and multiplier == int(multiplier) else None
        )
        return multiplier, labels, exact

    def points(self, cents: int, micros: int) -> tuple[int, str]:
        multiplier, labels, exact = self._plain if not self.promotions else self._at(micros)
        if exact is not None:
            return cents * exact // 100, labels
        return points_for(from_cents(cents), self.rate, multiplier), labels

    def _at(self, micros: int) -> tuple[Decimal, str, int | None]:
        moment = from_micros(micros)
        active = [p for p in self.promotions if p.starts_at <= moment < p.ends_at]
        key = frozenset(p.id for p in active)
        found = self._by_set.get(key)
        if found is None:
            found = self._factor(
                promotions.accrual_multiplier(active), ", ".join(p.label for p in active)
            )
            self._by_set[key] = found
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

    def of(self, micros: int, moment: dt.datetime) -> tuple[dt.date, dt.datetime | None]:
        quarter = micros // _QUARTER_HOUR_US
        date = self._dates.get(quarter)
        if date is None:
            date = self._dates[quarter] = self.settings.business_date(moment)
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
