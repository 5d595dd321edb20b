"""The settlement run for one business date: set-based SQL inside the database.

The obligations are read once, summed per pair and kind into a temporary table that
every later step reads with INSERT ... SELECT, so the run costs about one aggregation
pass, scales with the database and never loads the obligations into Python:

1. claim the obligations by an ordered range, never by writing into them: the batch
   records [claim_low, claim_high) of the claim key (hub.obligation_rules.claim_key:
   the writing transaction's id on PostgreSQL, the id on SQLite), from the end of the
   last range up to the first key that may still appear, so a run costs about one
   aggregation pass and an obligation committed after the run lands in exactly one later
   range. Obligations of the range dated after the batch are carried (a late obligation
   lands in the next batch, never in a closed one) and claimed one by one, with their
   batch_id, by the first run of a date on or after theirs: the rare path;
2. charge the platform fee to each merchant on what it received in the batch less the
   refunds it paid back (a refund reverses its redemption's fee, in whichever batch it
   lands), rounded half-up once per merchant, as one FEE obligation owed to the platform
   (negative when the refunds outweigh); compensation and adjustments are no fee base;
3. net positions per merchant: receivable, payable, fees, net, each summed from the
   pair totals (what one merchant owes another in the batch, rounded half-up to the
   cent once: obligations keep 4 decimal places);
4. one statement per merchant that had activity, with counterparty totals;
5. payment instructions: each merchant settles its net with the platform's
   clearing account, the fewest transfers for netted positions (N-1 at most);
6. check the invariants, in SQL, before the transaction commits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable

from hub.config import Settings
from hub.db import utcnow
from hub.enums import BatchStatus, MerchantCategory, ObligationKind, StatementStatus
from hub.ids import new_id
from hub.models import (
    Merchant,
    NetPosition,
    Obligation,
    PaymentInstruction,
    SettlementBatch,
    SettlementCarried,
    Statement,
    StatementCounterparty,
)
from hub.obligation_rules import (
    claim_key,
    fee_base,
    fee_of,
    frontier,
    in_range,
    pair_totals,
    signed_gross,
)

Progress = Callable[[str, int, int], object]
FEE = ObligationKind.FEE


class InvariantBroken(AssertionError):
    pass


@dataclass(frozen=True)
class RunResult:
    batch: SettlementBatch
    created: bool


async def settle(
    session: AsyncSession,
    settings: Settings,
    business_date: dt.date,
    actor: str,
    progress: Progress | None = None,
) -> RunResult:
    """Settle a business date in this transaction; an existing batch is returned unchanged.
    Each step reads the totals per pair and kind that the one pass over the obligations
    made, never the obligations again."""
    report = progress or (lambda *_: None)
    existing = await session.scalar(
        select(SettlementBatch).where(SettlementBatch.business_date == business_date)
    )
    if existing is not None:
        return RunResult(batch=existing, created=False)
    dialect = session.get_bind().dialect.name
    batch, high = await _open_batch(session, settings, dialect, business_date, actor)
    totals = await _claim(session, dialect, batch, high)
    report("claiming obligations", 1, 1)
    platform = await session.scalar(
        select(Merchant.id).where(Merchant.category == MerchantCategory.PLATFORM)
    )
    if settings.platform_fee_bps and platform is not None:
        await _charge_fees(session, dialect, batch, totals, platform, settings.platform_fee_bps)
    report("platform fees", 1, 1)
    pairs = pair_totals(dialect, true(), rows=totals)
    await _net_positions(session, batch, pairs)
    report("net positions", 1, 1)
    await _statements(session, batch, pairs)
    report("statements", 1, 1)
    await _payments(session, batch.id, platform)  # through the platform's clearing account
    report("payment instructions", 1, 1)
    await _close(session, batch, totals)
    report("invariants checked", 1, 1)
    return RunResult(batch=batch, created=True)


async def _open_batch(
    session: AsyncSession,
    settings: Settings,
    dialect: str,
    business_date: dt.date,
    actor: str,
) -> tuple[SettlementBatch, int]:
    """The date's batch, OPEN, with the range of obligation keys it takes, and the range's
    end (the batch records none when the range is empty)."""
    low, high = await _claim_range(session, dialect)
    batch = SettlementBatch(
        id=new_id("stb"),
        business_date=business_date,
        status=BatchStatus.OPEN,
        currency=settings.settlement_currency,
        fee_bps=settings.platform_fee_bps,
        run_by=actor,
        created_at=utcnow(),
        claim_low=low if high > low else None,
        claim_high=high if high > low else None,
    )
    session.add(batch)
    await session.flush()
    return batch, high


async def _claim(session: AsyncSession, dialect: str, batch: SettlementBatch, high: int) -> Table:
    """Claim the obligations: the range, less what is dated later (carried), plus what
    earlier ranges carried up to this date; then the one pass over them, their totals per
    pair and kind."""
    await _carry_late(session, dialect, batch)
    await _claim_carried(session, batch)
    await _claim_own(session, dialect, batch, high)
    return await _totals(session, dialect, batch)


async def _charge_fees(
    session: AsyncSession,
    dialect: str,
    batch: SettlementBatch,
    totals: Table,
    platform: str,
    fee_bps: int,
) -> None:
    """The platform fee, charged to the receiving merchant, owed to the platform: FEE
    obligations of this batch, added to its totals."""
    base = fee_base(true(), rows=totals)
    fee = fee_of(dialect, func.sum(base.c.amount), fee_bps)
    fees = (
        select(
            literal(FEE).label("kind"),
            base.c.merchant_id.label("debtor_id"),
            literal(platform).label("creditor_id"),
            func.min(base.c.program_code).label("program_code"),
            literal(0, BigInteger).label("points"),
            fee.label("amount"),
            literal(batch.id).label("reference"),
            literal(batch.created_at, Obligation.occurred_at.type).label("occurred_at"),
            literal(batch.business_date).label("business_date"),
            literal(batch.id).label("batch_id"),
            literal(batch.created_at, Obligation.created_at.type).label("created_at"),
        )
        .where(base.c.merchant_id != platform)
        .group_by(base.c.merchant_id)
        .having(fee != 0)
    )
    await session.execute(
        insert(Obligation).from_select(
            [
                "kind",
                "debtor_id",
                "creditor_id",
                "program_code",
                "points",
                "amount",
                "reference",
                "occurred_at",
                "business_date",
                "batch_id",
                "created_at",
            ],
            fees,
        )
    )
    fees_of_batch = and_(Obligation.batch_id == batch.id, Obligation.kind == FEE)
    await _add_totals(session, totals, batch.id, fees_of_batch)


async def _net_positions(session: AsyncSession, batch: SettlementBatch, pairs: Any) -> None:
    """Net positions, from each pair's total rounded once to the cent: FEE obligations are
    fees for the payer, receivable for the platform."""
    zero = literal(0, Obligation.amount.type)
    sides = union_all(
        select(
            pairs.c.creditor_id.label("merchant_id"),
            pairs.c.amount.label("receivable"),
            zero.label("payable"),
            zero.label("fees"),
        ),
        select(
            pairs.c.debtor_id.label("merchant_id"),
            zero.label("receivable"),
            case((pairs.c.is_fee == 1, zero), else_=pairs.c.amount).label("payable"),
            case((pairs.c.is_fee == 1, pairs.c.amount), else_=zero).label("fees"),
        ),
    ).subquery()
    receivable = func.sum(sides.c.receivable)
    payable = func.sum(sides.c.payable)
    fees_ = func.sum(sides.c.fees)
    await session.execute(
        insert(NetPosition).from_select(
            ["batch_id", "merchant_id", "receivable", "payable", "fees", "net"],
            select(
                literal(batch.id),
                sides.c.merchant_id,
                receivable,
                payable,
                fees_,
                receivable - payable - fees_,
            ).group_by(sides.c.merchant_id),
        )
    )


async def _statements(session: AsyncSession, batch: SettlementBatch, pairs: Any) -> None:
    """A DRAFT statement per merchant of the batch, and each one's totals per counterparty
    (the same rounded pair totals)."""
    zero = literal(0, Obligation.amount.type)
    statement_id = literal(batch.id + ":", String) + NetPosition.merchant_id
    await session.execute(
        insert(Statement).from_select(
            [
                "id",
                "batch_id",
                "merchant_id",
                "business_date",
                "status",
                "receivable",
                "payable",
                "fees",
                "net",
                "created_at",
            ],
            select(
                statement_id,
                NetPosition.batch_id,
                NetPosition.merchant_id,
                literal(batch.business_date),
                literal(StatementStatus.DRAFT),
                NetPosition.receivable,
                NetPosition.payable,
                NetPosition.fees,
                NetPosition.net,
                literal(batch.created_at, Statement.created_at.type),
            ).where(NetPosition.batch_id == batch.id),
        )
    )
    per_counterparty = union_all(
        select(
            pairs.c.creditor_id.label("merchant_id"),
            pairs.c.debtor_id.label("counterparty_id"),
            pairs.c.amount.label("receivable"),
            zero.label("payable"),
        ),
        select(
            pairs.c.debtor_id.label("merchant_id"),
            pairs.c.creditor_id.label("counterparty_id"),
            zero.label("receivable"),
            pairs.c.amount.label("payable"),
        ),
    ).subquery()
    await session.execute(
        insert(StatementCounterparty).from_select(
            ["statement_id", "counterparty_id", "receivable", "payable"],
            select(
                literal(batch.id + ":", String) + per_counterparty.c.merchant_id,
                per_counterparty.c.counterparty_id,
                func.sum(per_counterparty.c.receivable),
                func.sum(per_counterparty.c.payable),
            ).group_by(per_counterparty.c.merchant_id, per_counterparty.c.counterparty_id),
        )
    )


async def _close(session: AsyncSession, batch: SettlementBatch, totals: Table) -> None:
    """The batch's count and gross from its totals, CLOSED, then every invariant checked."""
    zero = literal(0, Obligation.amount.type)
    count, gross = (
        await session.execute(
            select(
                func.coalesce(func.sum(totals.c.n), 0),
                func.coalesce(func.sum(signed_gross(totals)), zero),
            ).where(totals.c.kind != FEE)
        )
    ).one()
    await session.execute(delete(totals))
    batch.obligation_count = int(count)
    batch.gross_amount = Decimal(gross)
    batch.status = BatchStatus.CLOSED
    batch.closed_at = utcnow()
    await session.flush()
    await check(session, batch.id)


def _totals_table() -> Table:
    """A temporary table of the batch's totals per pair and kind, in the obligations'
    column names and types (hub.obligation_rules reads it as it reads obligations)."""
    o = Obligation.__table__.c
    return Table(
        "settlement_run_totals",
        MetaData(),
        *(Column(c.name, c.type) for c in (o.batch_id, o.debtor_id, o.creditor_id, o.kind)),
        Column("program_code", o.program_code.type),
        Column("amount", o.amount.type),
        Column("n", BigInteger),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


async def _totals(session: AsyncSession, dialect: str, batch: SettlementBatch) -> Table:
    """The batch's obligations summed per pair and kind: its range, then the rows it
    claimed one by one. Each part is one plain scan (an OR of both would not be)."""
    totals = _totals_table()
    # Made once per connection and kept (a table made again would invalidate the
    # statements asyncpg prepared on it), emptied by each run.
    await session.execute(CreateTable(totals, if_not_exists=True))
    await session.execute(delete(totals))
    if batch.claim_low is not None:
        ranged = in_range(dialect, batch.claim_low, batch.claim_high, batch.business_date)
        await _add_totals(session, totals, batch.id, ranged)
    await _add_totals(session, totals, batch.id, Obligation.batch_id == batch.id)
    return totals


async def _add_totals(session: AsyncSession, totals: Table, batch_id: str, where: Any) -> None:
    """A plain SELECT, its few rows (pairs x kinds) written back: PostgreSQL runs the
    scan of an INSERT ... SELECT on one core, a SELECT's on parallel workers."""
    found = await session.execute(
        select(
            Obligation.debtor_id,
            Obligation.creditor_id,
            Obligation.kind,
            func.min(Obligation.program_code),
            func.sum(Obligation.amount),
            func.count(),
        )
        .where(where)
        .group_by(Obligation.debtor_id, Obligation.creditor_id, Obligation.kind)
    )
    names = [c.name for c in totals.c]
    rows = [dict(zip(names, (batch_id, *row), strict=True)) for row in found]
    if rows:
        await session.execute(insert(totals), rows)


# The first key no transaction still open may hold (PostgreSQL): the lowest transaction id
# in progress, the run's own aside and those known to be of another database (xid8 and the
# 32-bit backend_xid have the same low bits; one not attributed, hidden by privileges or
# begun since, counts), else the snapshot's xmax (one past the latest finished: the run's
# own id can be at or above it, see _claim_own).
OPEN_FROM = text(
    "SELECT least(pg_snapshot_xmax(s)::text::bigint, (SELECT min(x::text::bigint)"
    " FROM pg_snapshot_xip(s) x WHERE x IS DISTINCT FROM pg_current_xact_id_if_assigned()"
    " AND x::text::bigint % 4294967296 NOT IN (SELECT backend_xid::text::bigint"
    " FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
    " AND datname IS DISTINCT FROM current_database())))"
    " FROM pg_current_snapshot() s"
)
NEXT_XID = text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
WAIT = 30.0  # seconds the run waits for transactions that began before it


async def _claim_range(session: AsyncSession, dialect: str) -> tuple[int, int]:
    """[low, high): from the end of the last batch's range to the first key that may
    still appear (see hub.obligation_rules.claim_key: a range below it is closed)."""
    low = int(await session.scalar(select(frontier())) or 0)
    if dialect == "sqlite":
        # This transaction began with BEGIN IMMEDIATE: no other writer until it ends.
        top = await session.scalar(select(func.coalesce(func.max(Obligation.id), 0)))
        return low, max(low, int(top or 0) + 1)
    # Wait a little for the transactions that began before the run, so that what was
    # committed before it is in its batch; past WAIT, what they hold goes to a later one.
    began, deadline = int(await session.scalar(NEXT_XID) or 0), time.monotonic() + WAIT
    high = int(await session.scalar(OPEN_FROM) or 0)
    while high < began and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        high = int(await session.scalar(OPEN_FROM) or 0)
    return low, max(low, high)


async def _carry_late(session: AsyncSession, dialect: str, batch: SettlementBatch) -> None:
    """The few obligations of the range dated after the batch wait in the carried list (a
    late obligation lands in a later batch, never in a closed one)."""
    if batch.claim_low is None:
        return
    key = claim_key(dialect)
    await session.execute(
        insert(SettlementCarried).from_select(
            ["obligation_id"],
            select(Obligation.id).where(
                Obligation.batch_id.is_(None),
                Obligation.business_date > batch.business_date,
                key >= batch.claim_low,
                key < batch.claim_high,
            ),
        )
    )


async def _claim_carried(session: AsyncSession, batch: SettlementBatch) -> None:
    """Carried obligations dated up to the batch's date join it one by one (rare)."""
    due = select(Obligation.id).where(
        Obligation.id.in_(select(SettlementCarried.obligation_id)),
        Obligation.business_date <= batch.business_date,
    )
    ids = list(await session.scalars(due))
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        await session.execute(
            update(Obligation)
            .where(Obligation.id.in_(chunk))
            .values(batch_id=batch.id)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            delete(SettlementCarried).where(SettlementCarried.obligation_id.in_(chunk))
        )


async def _claim_own(
    session: AsyncSession, dialect: str, batch: SettlementBatch, high: int
) -> None:
    """PostgreSQL: obligations this very transaction wrote at or past the range's end (a
    snapshot's xmax can be the run's own id) join it one by one; the next range will hold
    them, claimed already."""
    if dialect == "sqlite":
        return
    await session.execute(
        update(Obligation)
        .where(
            Obligation.txn == literal_column("pg_current_xact_id_if_assigned()::text::bigint"),
            Obligation.txn >= high,
            Obligation.batch_id.is_(None),
            Obligation.business_date <= batch.business_date,
        )
        .values(batch_id=batch.id)
        .execution_options(synchronize_session=False)
    )


async def _payments(session: AsyncSession, batch_id: str, platform: str | None) -> None:
    positions = list(
        await session.execute(
            select(NetPosition.merchant_id, NetPosition.net)
            .where(NetPosition.batch_id == batch_id, NetPosition.net != 0)
            .order_by(NetPosition.merchant_id)
        )
    )
    rows: list[dict[str, object]] = []
    if platform is not None:
        # A hub and spoke: every merchant settles its net with the clearing account once.
        for merchant, net in positions:
            if merchant == platform:
                continue
            source, target = (merchant, platform) if net < 0 else (platform, merchant)
            rows.append({"from_merchant": source, "to_merchant": target, "amount": abs(net)})
    else:
        # No platform: pair the largest debtor with the largest creditor until all are
        # settled (at most N-1 transfers).
        debtors: list[list[Any]] = sorted(
            ([m, -n] for m, n in positions if n < 0), key=lambda x: -x[1]
        )
        creditors: list[list[Any]] = sorted(
            ([m, n] for m, n in positions if n > 0), key=lambda x: -x[1]
        )
        while debtors and creditors:
            amount: Decimal = min(debtors[0][1], creditors[0][1])
            rows.append(
                {"from_merchant": debtors[0][0], "to_merchant": creditors[0][0], "amount": amount}
            )
            debtors[0][1] -= amount
            creditors[0][1] -= amount
            if debtors[0][1] == 0:
                debtors.pop(0)
            if creditors[0][1] == 0:
                creditors.pop(0)
    if rows:
        await session.execute(
            insert(PaymentInstruction), [{"batch_id": batch_id, **r} for r in rows]
        )


async def check(session: AsyncSession, batch_id: str) -> None:
    """The invariants of a batch; InvariantBroken (and no commit) if any fails."""
    net_sum = await session.scalar(
        select(func.coalesce(func.sum(NetPosition.net), 0)).where(NetPosition.batch_id == batch_id)
    )
    if Decimal(net_sum or 0) != 0:
        raise InvariantBroken(f"net positions of {batch_id} sum to {net_sum}, not 0")
    totals = (
        select(
            StatementCounterparty.statement_id,
            func.sum(StatementCounterparty.receivable).label("r"),
            func.sum(StatementCounterparty.payable).label("p"),
        )
        .group_by(StatementCounterparty.statement_id)
        .subquery()
    )
    wrong = await session.scalar(
        select(func.count())
        .select_from(Statement)
        .join(totals, totals.c.statement_id == Statement.id)
        .where(
            Statement.batch_id == batch_id,
            (totals.c.r != Statement.receivable)
            | (totals.c.p != Statement.payable + Statement.fees),
        )
    )
    if wrong:
        raise InvariantBroken(
            f"{wrong} statement(s) of {batch_id} differ from their counterparties"
        )
    paid = await session.execute(
        select(
            PaymentInstruction.from_merchant,
            PaymentInstruction.to_merchant,
            PaymentInstruction.amount,
        ).where(PaymentInstruction.batch_id == batch_id)
    )
    balance: dict[str, Decimal] = {}
    for source, target, amount in paid:
        balance[source] = balance.get(source, Decimal(0)) + amount
        balance[target] = balance.get(target, Decimal(0)) - amount
    nets = await session.execute(
        select(NetPosition.merchant_id, NetPosition.net).where(NetPosition.batch_id == batch_id)
    )
    platform = await session.scalar(
        select(Merchant.id).where(Merchant.category == MerchantCategory.PLATFORM)
    )
    for merchant, net in nets:
        if merchant == platform:
            continue
        if balance.get(merchant, Decimal(0)) + net != 0:
            raise InvariantBroken(f"payments leave {merchant} unsettled in {batch_id}")
