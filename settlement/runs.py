"""Running settlement: by hand for one date, or nightly in `hub serve` under a lease, so
that of several replicas only one runs a date; on start it catches up missed dates."""

from __future__ import annotations

import datetime as dt
import os
import socket

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import ConnectorFactory
from hub import reconciliation, validate
from hub.config import Settings
from hub.db import Database, utcnow
from hub.enums import ReconciliationStatus, WebhookEvent
from hub.errors import InvalidInput, InvalidState
from hub.models import Obligation, SettlementBatch, SettlementLease, Statement
from hub.obligation_rules import unsettled
from hub.webhooks import outbox
from settlement.netting import Progress, RunResult, settle

log = structlog.get_logger(__name__)
LEASE_SECONDS = 3600
MAX_CATCH_UP_DAYS = 62
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


async def take_lease(db: Database, business_date: dt.date, holder: str) -> bool:
    """Hold the date's lease unless another holder has a live one."""

    async def work(session: AsyncSession) -> bool:
        now = utcnow()
        lease = await session.scalar(
            select(SettlementLease)
            .where(SettlementLease.business_date == business_date)
            .with_for_update(key_share=True)
        )
        if lease is not None and lease.holder != holder and lease.expires_at > now:
            return False
        if lease is None:
            session.add(
                SettlementLease(
                    business_date=business_date,
                    holder=holder,
                    expires_at=now + dt.timedelta(seconds=LEASE_SECONDS),
                )
            )
        else:
            lease.holder = holder
            lease.expires_at = now + dt.timedelta(seconds=LEASE_SECONDS)
        await session.flush()
        return True

    try:
        return await db.transaction(work, attempts=3)
    except IntegrityError:
        return False  # another replica inserted the lease first


async def release_lease(db: Database, business_date: dt.date, holder: str) -> None:
    async def work(session: AsyncSession) -> None:
        lease = await session.get(SettlementLease, business_date)
        if lease is not None and lease.holder == holder:
            await session.delete(lease)

    await db.transaction(work)


def require_begun(settings: Settings, business_date: dt.date) -> None:
    """What an operator may settle (runSettlement, `hub settle`): a valid date that has
    begun where settlement keeps time; a later one's obligations are still to come."""
    validate.day(business_date, ("business_date",))
    today = utcnow().astimezone(settings.tz).date()
    if business_date > today:
        raise InvalidInput(
            f"{business_date} has not begun in {settings.settlement_tz}; settle today "
            f"({today}) or an earlier date.",
            field=("business_date",),
        )


async def run_asked(
    db: Database, settings: Settings, business_date: dt.date, actor: str
) -> SettlementBatch:
    """runSettlement: a date that has begun where settlement keeps time, settled once (an
    existing batch is returned); InvalidState while another replica holds its lease."""
    require_begun(settings, business_date)
    result = await run_date(db, settings, business_date, actor=actor)
    if result is None:
        raise InvalidState(
            f"Settlement of {business_date} is running elsewhere; retry in a minute.",
            field=("business_date",),
        )
    return result.batch


async def run_date(
    db: Database,
    settings: Settings,
    business_date: dt.date,
    actor: str,
    progress: Progress | None = None,
    holder: str = HOLDER,
) -> RunResult | None:
    """Settle one date under its lease; None when another replica holds the lease."""
    if not await take_lease(db, business_date, holder):
        log.info("settlement lease held elsewhere", date=str(business_date))
        return None
    try:
        return await db.transaction(
            lambda s: _settle_and_announce(s, settings, business_date, actor, progress),
            attempts=3,
        )
    except IntegrityError:
        # A replica without the lease (it had expired) committed the same date first.
        async with db.read() as session:
            batch = await session.scalar(
                select(SettlementBatch).where(SettlementBatch.business_date == business_date)
            )
        if batch is None:
            raise
        return RunResult(batch=batch, created=False)
    finally:
        await release_lease(db, business_date, holder)


async def _settle_and_announce(
    session: AsyncSession,
    settings: Settings,
    business_date: dt.date,
    actor: str,
    progress: Progress | None,
) -> RunResult:
    """Settle, and in the same transaction tell each merchant its statement is ready."""
    result = await settle(session, settings, business_date, actor, progress)
    if result.created:
        for statement_id, merchant in await session.execute(
            select(Statement.id, Statement.merchant_id).where(Statement.batch_id == result.batch.id)
        ):
            await outbox.emit(
                session,
                WebhookEvent.STATEMENT_READY,
                [merchant],
                {"statementId": statement_id, "businessDate": business_date.isoformat()},
            )
    return result


def last_due(settings: Settings, now: dt.datetime) -> dt.date | None:
    """The latest business date whose nightly run time has passed; None when off."""
    at = settings.settlement_time
    if at is None:
        return None
    local = now.astimezone(settings.tz)
    today = local.date()
    return today - dt.timedelta(days=1 if local.time() >= at else 2)


async def due_dates(db: Database, settings: Settings, now: dt.datetime) -> list[dt.date]:
    """Dates to settle now: the last due date and every missed one before it."""
    target = last_due(settings, now)
    if target is None:
        return []
    async with db.read() as session:
        last = await session.scalar(select(func.max(SettlementBatch.business_date)))
        oldest = await session.scalar(
            select(func.min(Obligation.business_date)).where(
                unsettled(session.get_bind().dialect.name)
            )
        )
        done = set(
            await session.scalars(
                select(SettlementBatch.business_date).where(SettlementBatch.business_date <= target)
            )
        )
    start = target
    if last is not None and last < target:
        start = last + dt.timedelta(days=1)
    if oldest is not None and oldest < start:
        start = oldest
    start = max(start, target - dt.timedelta(days=MAX_CATCH_UP_DAYS))
    days = (target - start).days + 1
    return [d for d in (start + dt.timedelta(days=n) for n in range(days)) if d not in done]


async def reconcile_partners(
    db: Database, settings: Settings, factory: ConnectorFactory, day: dt.date
) -> None:
    """Reconcile every connected partner for the date and keep the reports for the console;
    a break is logged, it does not hold settlement back (finance sees it beside the batch)."""
    try:
        reports = await reconciliation.reconcile_all(db, settings, factory, day)
    except Exception:  # reconciliation informs settlement; it never stops it
        log.exception("reconciliation failed", date=str(day))
        return
    for report in reports:
        if report.status != ReconciliationStatus.MATCHED:
            log.warning(
                "reconciliation not clean",
                date=str(day),
                merchant=report.merchant_id,
                status=report.status,
                breaks=len(report.breaks),
            )


async def nightly(
    db: Database, settings: Settings, factory: ConnectorFactory | None = None
) -> list[str]:
    """The scheduler's job: settle every due date this replica gets the lease for,
    each after reconciling the connected partners (when given the connectors)."""
    settled = []
    for day in await due_dates(db, settings, utcnow()):
        if factory is not None:
            await reconcile_partners(db, settings, factory, day)
        result = await run_date(db, settings, day, actor="system:scheduler")
        if result is not None and result.created:
            log.info(
                "settled",
                date=str(day),
                batch=result.batch.id,
                obligations=result.batch.obligation_count,
            )
            settled.append(result.batch.id)
    return settled
