"""Partner reconciliation: the hub's movements at a connected partner against the partner's.

The hub keeps no separate log of partner calls: each saga row (a conversion, a
redemption and its cancellation) is the record of what the hub asked of the
partner, under which idempotency key, and whether the partner applied it. From
those rows we derive the movements the hub believes happened at a partner on a
business date, ask the partner for its own (GET /movements?date= in the
generic API, each vertical in its own shape), and list every break: a movement
only the hub has, only the partner has, or with other points.

A movement whose outcome the hub does not know yet (a saga step still in
flight) is no break either way. A movement may land on the neighbouring date
on the other side (a saga retried across midnight), so both sides are read one
day around the date, and only the date's own movements are reported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory, PartnerMovement
from hub.config import Settings
from hub.db import NO_KEY_UPDATE, Database, utcnow
from hub.enums import ConversionStatus, ReconciliationStatus, RedemptionStatus
from hub.errors import PartnerUnavailable
from hub.models import Account, Conversion, Program, Redemption
from hub.models import ReconciliationReport as ReportRow

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Belief:
    """A movement the hub asked of a partner: applied (`known`), or its outcome still open."""

    key: str
    external_ref: str
    points: int
    day: dt.date
    known: bool


@dataclass(frozen=True)
class Break:
    reference: str
    external_ref: str
    hub_points: int | None  # None: the hub has no such movement
    partner_points: int | None  # None: the partner has no such movement


@dataclass(frozen=True)
class Report:
    merchant_id: str
    business_date: dt.date
    status: ReconciliationStatus
    matched: int
    breaks: list[Break]
    generated_at: dt.datetime


# ---------------------------------------------------------------- what the hub believes


def _conversion(
    c: Conversion, codes: set[str], ref: dict[tuple[str, str], str]
) -> Iterator[Belief]:
    # The keys are the conversion saga's (hub.exchange.saga): "<id>:<step>".
    pending = c.status == ConversionStatus.PENDING
    if c.from_code in codes:
        account = ref.get((c.member_id, c.from_code), "")
        debited = c.status in (ConversionStatus.COMPLETED, ConversionStatus.REVERSED)
        debited = debited or (pending and c.step in ("CREDIT", "REVERSE"))
        if debited or (pending and c.step == "DEBIT"):
            yield Belief(f"{c.id}:debit", account, -c.points_debited, c.business_date, debited)
        reversed_ = c.status == ConversionStatus.REVERSED
        if reversed_ or (pending and c.step == "REVERSE"):
            yield Belief(f"{c.id}:reverse", account, c.points_debited, c.business_date, reversed_)
    if c.to_code in codes:
        account = ref.get((c.member_id, c.to_code), "")
        credited = c.status == ConversionStatus.COMPLETED
        if credited or (pending and c.step == "CREDIT"):
            yield Belief(f"{c.id}:credit", account, c.points_credited, c.business_date, credited)


def _redemption(
    r: Redemption, ref: dict[tuple[str, str], str], settings: Settings
) -> Iterator[Belief]:
    # The keys are the redemption saga's (hub.mall.saga.key). A partner has no holds:
    # the hold is a debit there, a release or a refund reverses it.
    account = ref.get((r.member_id, r.paid_with), "")
    pending = r.status == RedemptionStatus.PENDING
    created = settings.business_date(r.created_at)
    last = settings.business_date(r.updated_at)
    held = r.hold_ref is not None
    if held or (pending and r.step == "HOLD"):
        yield Belief(f"{r.id}:hold", account, -r.points, created, held)
    released = held and r.status == RedemptionStatus.FAILED
    if released or (held and pending and r.step == "RELEASE"):
        yield Belief(f"{r.id}:release", account, r.points, last, released)
    cancelled = settings.business_date(r.cancelled_at) if r.cancelled_at else last
    if r.refunded_points or r.cancel_step == "REFUND":
        yield Belief(f"{r.id}:refund", account, r.points, cancelled, bool(r.refunded_points))
    done = r.status == RedemptionStatus.CANCELLED
    if r.compensation_points and (done or r.cancel_step == "COMPENSATE"):
        yield Belief(f"{r.id}:compensate", account, r.compensation_points, cancelled, done)


async def hub_movements(
    session: AsyncSession, settings: Settings, codes: set[str], first: dt.date, last: dt.date
) -> list[Belief]:
    """What the hub asked of the partners serving `codes` on the dates first..last."""
    start = dt.datetime.combine(first, dt.time(), settings.tz).astimezone(dt.UTC)
    end = dt.datetime.combine(last + DAY, dt.time(), settings.tz).astimezone(dt.UTC)
    conversions = list(
        await session.scalars(
            select(Conversion).where(
                or_(Conversion.from_code.in_(codes), Conversion.to_code.in_(codes)),
                Conversion.business_date.between(first, last),
            )
        )
    )
    redemptions = list(
        await session.scalars(
            select(Redemption).where(
                Redemption.paid_with.in_(codes),
                or_(
                    and_(Redemption.created_at >= start, Redemption.created_at < end),
                    and_(Redemption.updated_at >= start, Redemption.updated_at < end),
                ),
            )
        )
    )
    members = {c.member_id for c in conversions} | {r.member_id for r in redemptions}
    ref: dict[tuple[str, str], str] = {}
    if members:
        rows = await session.execute(
            select(Account.member_id, Account.program_code, Account.external_ref).where(
                Account.program_code.in_(codes), Account.member_id.in_(members)
            )
        )
        ref = {(m, p): e or "" for m, p, e in rows if m is not None}
    beliefs = [b for c in conversions for b in _conversion(c, codes, ref)]
    beliefs += [b for r in redemptions for b in _redemption(r, ref, settings)]
    return [b for b in beliefs if first <= b.day <= last]


# ---------------------------------------------------------------- the comparison


def compare(
    day: dt.date,
    hub: list[Belief],
    partner_today: list[PartnerMovement],
    partner_around: list[PartnerMovement],
) -> tuple[int, list[Break]]:
    """Matched movements of `day` and its breaks; `hub` and `partner_around` span the days
    around it, `partner_today` is the partner's own list for the date."""
    believed = {b.key: b for b in hub}
    theirs = {m.key: m for m in [*partner_around, *partner_today]}
    matched, breaks = 0, []
    for b in hub:
        if b.day != day or not b.known:
            continue
        m = theirs.get(b.key)
        if m is None:
            breaks.append(Break(b.key, b.external_ref, b.points, None))
        elif m.points != b.points:
            breaks.append(Break(b.key, b.external_ref, b.points, m.points))
        else:
            matched += 1
    for m in partner_today:
        if m.key not in believed and m.points != 0:  # a void of nothing moved nothing
            breaks.append(Break(m.key, m.external_ref, None, m.points))
    breaks.sort(key=lambda x: x.reference)
    return matched, breaks


async def _partner_movements(
    factory: ConnectorFactory, programs: list[Program], days: list[dt.date]
) -> dict[dt.date, list[PartnerMovement]]:
    found: dict[dt.date, list[PartnerMovement]] = {d: [] for d in days}
    for program in programs:
        connector = factory.for_program(program, None, "system:reconciliation")
        lists = await asyncio.gather(*(connector.movements(d) for d in days))
        for d, moves in zip(days, lists, strict=True):
            found[d].extend(moves)
    return found


async def reconcile(
    db: Database, settings: Settings, factory: ConnectorFactory, merchant_id: str, day: dt.date
) -> Report | None:
    """Compare one merchant's partner with the hub for a date, and store the report;
    None when the merchant has no connected program (the hub's ledger is its own)."""
    async with db.read() as session:
        programs = [
            p
            for p in await session.scalars(
                select(Program).where(Program.merchant_id == merchant_id)
            )
            if not factory.is_local(p)
        ]
        if not programs:
            return None
        # The hub's side first: a step that completes meanwhile is then still "in flight"
        # here, never a movement the partner seems to lack.
        hub = await hub_movements(
            session, settings, {p.code for p in programs}, day - DAY, day + DAY
        )
    days = [day - DAY, day, day + DAY]
    try:
        theirs = await _partner_movements(factory, programs, days)
    except PartnerUnavailable:
        report = Report(merchant_id, day, ReconciliationStatus.PARTNER_UNAVAILABLE, 0, [], utcnow())
    else:
        around = theirs[day - DAY] + theirs[day + DAY]
        matched, breaks = compare(day, hub, theirs[day], around)
        status = ReconciliationStatus.BREAKS if breaks else ReconciliationStatus.MATCHED
        report = Report(merchant_id, day, status, matched, breaks, utcnow())
    await store(db, report)
    return report


# ---------------------------------------------------------------- stored reports


def _breaks_json(breaks: list[Break]) -> list[list[Any]]:
    return [[b.reference, b.external_ref, b.hub_points, b.partner_points] for b in breaks]


def _report(row: ReportRow) -> Report:
    return Report(
        merchant_id=row.merchant_id,
        business_date=row.business_date,
        status=ReconciliationStatus(row.status),
        matched=row.matched,
        breaks=[Break(*item) for item in row.breaks],
        generated_at=row.generated_at,
    )


async def store(db: Database, report: Report) -> None:
    """Keep the report as the last one of its merchant and date."""

    async def work(session: AsyncSession) -> None:
        row = await session.get(
            ReportRow, (report.merchant_id, report.business_date), with_for_update=NO_KEY_UPDATE
        )
        if row is None:
            row = ReportRow(merchant_id=report.merchant_id, business_date=report.business_date)
            session.add(row)
        row.status = report.status
        row.matched = report.matched
        row.breaks = _breaks_json(report.breaks)
        row.generated_at = report.generated_at

    try:
        await db.transaction(work)
    except IntegrityError:  # a concurrent run inserted the date's row first: update it
        await db.transaction(work)


async def stored(
    session: AsyncSession, day: dt.date, merchant_id: str | None = None
) -> list[Report]:
    """The last reports of a date (one merchant's, or every merchant's)."""
    query = select(ReportRow).where(ReportRow.business_date == day)
    if merchant_id is not None:
        query = query.where(ReportRow.merchant_id == merchant_id)
    return [_report(r) for r in await session.scalars(query.order_by(ReportRow.merchant_id))]


async def connected_merchants(session: AsyncSession, factory: ConnectorFactory) -> list[str]:
    """Every merchant with a program served by a partner's system."""
    programs = await session.scalars(select(Program).order_by(Program.merchant_id))
    return sorted({p.merchant_id for p in programs if not factory.is_local(p)})


async def reconcile_all(
    db: Database, settings: Settings, factory: ConnectorFactory, day: dt.date
) -> list[Report]:
    """Reconcile every connected partner for a date (the nightly run, before settling)."""
    async with db.read() as session:
        merchant_ids = await connected_merchants(session, factory)
    reports = []
    for merchant_id in merchant_ids:
        report = await reconcile(db, settings, factory, merchant_id, day)
        if report is not None:
            reports.append(report)
    return reports
