"""How obligations become money, in SQL: the fee base, rounding once per pair total, and
a batch's gross. The settlement run writes by these rules and `hub verify` checks by
them, each in its database's own arithmetic (on SQLite an amount is an integer of
1/10000, see hub.db.ExactDecimal).

Which batch an obligation is in: a batch claims an ordered range of obligations (claim
key in [claim_low, claim_high), dated on or before its business date) and records the
range; only the rows it claims one by one (its fees, late obligations carried from an
earlier range) carry its id in batch_id. The table is never rewritten by a run.

Obligations keep 4 decimal places. A batch rounds once per statement line total: what
one merchant owes another in the batch (fees apart) is summed, then rounded half-up to
the cent; positions, statements and payments are built from those totals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, or_, select, union_all
from sqlalchemy.orm import aliased

from hub.enums import ObligationKind
from hub.models import Obligation, SettlementBatch, SettlementCarried

FEE = ObligationKind.FEE
OBLIGATIONS = Obligation.__table__
REFUND = ObligationKind.REFUND
# What a merchant is charged a fee on: the business it received. A refund takes its
# redemption back out of the refunding merchant's base; compensation is a cost of a
# cancellation, an adjustment corrects money already charged, and a fee is no business.
FEE_BASE = (ObligationKind.CONVERSION, ObligationKind.REDEMPTION)


def claim_key(dialect: str) -> Any:
    """The ordered key a batch's range is of. A range must be closed when a run takes it:
    no obligation can ever appear inside it afterwards.

    PostgreSQL: the id of the transaction that wrote the obligation (column txn, default
    pg_current_xact_id()). Sequence values are not committed in order, but every
    transaction below a snapshot's xmin has finished, so a run that takes the range up to
    its snapshot's xmin takes a closed range; a writer still open then has a txn at or
    above it and lands in a later range.
    SQLite: the id. Writers are serialized (BEGIN IMMEDIATE): once the run holds the write
    lock every id up to the greatest is committed and every later one is greater."""
    return Obligation.id if dialect == "sqlite" else Obligation.txn


def in_range(dialect: str, low: Any, high: Any, business_date: Any) -> Any:
    """Claimed by the range of a batch of that date (none when low is NULL)."""
    key = claim_key(dialect)
    return and_(
        Obligation.batch_id.is_(None),
        key >= low,
        key < high,
        Obligation.business_date <= business_date,
    )


def in_batch(dialect: str, batch: SettlementBatch) -> Any:
    """The obligations of one batch: its range, and the rows claimed one by one."""
    if batch.claim_low is None:
        return Obligation.batch_id == batch.id
    return or_(
        Obligation.batch_id == batch.id,
        in_range(dialect, batch.claim_low, batch.claim_high, batch.business_date),
    )


def batch_of(dialect: str) -> Any:
    """An obligation's batch id, NULL while unsettled (a correlated look-up per row: for
    checks and small sets, the run itself filters by in_batch)."""
    ranges = aliased(SettlementBatch)
    ranged = (
        select(ranges.id)
        .where(
            ranges.claim_low <= claim_key(dialect),
            ranges.claim_high > claim_key(dialect),
            ranges.business_date >= Obligation.business_date,
        )
        .correlate(Obligation)
        .scalar_subquery()
    )
    return func.coalesce(Obligation.batch_id, ranged)


def frontier() -> Any:
    """Where the next range starts: the end of the last one (0 before any)."""
    ranges = aliased(SettlementBatch)
    return select(func.coalesce(func.max(ranges.claim_high), 0)).correlate(None).scalar_subquery()


def unsettled(dialect: str) -> Any:
    """In no batch yet: past every range, or carried from one."""
    return and_(
        Obligation.batch_id.is_(None),
        or_(
            claim_key(dialect) >= frontier(),
            Obligation.id.in_(select(SettlementCarried.obligation_id)),
        ),
    )


def half_away(x: Any, unit: int) -> Any:
    """x / unit rounded half away from zero, for integer x (what PostgreSQL's round does
    to numerics); SQLite's integer division truncates, so each sign is taken apart."""
    half = unit // 2
    return case((x >= 0, (x + half) // unit), else_=-((half - x) // unit))


def cents(dialect: str, x: Any) -> Any:
    """A sum of 4-place amounts rounded half-up (away from zero) to the cent."""
    if dialect == "sqlite":
        return half_away(cast(x, BigInteger), 100) * 100
    return func.round(x, 2)


def fee_of(dialect: str, base: Any, bps: Any) -> Any:
    """round_half_up(base x bps / 10000, 2) of a sum of amounts (half away from zero for a
    negative base); `bps` a number or an integer column."""
    if dialect == "sqlite":
        return half_away(cast(base, BigInteger) * bps, 1_000_000) * 100
    return func.round(base * bps / Decimal(10_000), 2)


def fee_base(where: Any, batch: Any = None, rows: Any = OBLIGATIONS) -> Any:
    """Per batch and merchant: + what it received as CONVERSION or REDEMPTION, - the
    REFUNDs it paid back. Columns batch_id, merchant_id, program_code, amount. `rows` the
    obligations or any table of their columns (the run's per-kind totals)."""
    batch = rows.c.batch_id if batch is None else batch
    return union_all(
        select(
            batch.label("batch_id"),
            rows.c.creditor_id.label("merchant_id"),
            rows.c.program_code.label("program_code"),
            rows.c.amount.label("amount"),
        ).where(where, rows.c.kind.in_(FEE_BASE)),
        select(
            batch.label("batch_id"),
            rows.c.debtor_id.label("merchant_id"),
            rows.c.program_code.label("program_code"),
            (-rows.c.amount).label("amount"),
        ).where(where, rows.c.kind == REFUND),
    ).subquery()


def pair_totals(dialect: str, where: Any, batch: Any = None, rows: Any = OBLIGATIONS) -> Any:
    """What each merchant owes each other per batch, fees apart, rounded once to the cent
    (rounding each obligation on its own lost or made cents). Columns batch_id, debtor_id,
    creditor_id, is_fee (1 or 0), amount."""
    batch = rows.c.batch_id if batch is None else batch
    is_fee = case((rows.c.kind == FEE, 1), else_=0)
    return (
        select(
            batch.label("batch_id"),
            rows.c.debtor_id.label("debtor_id"),
            rows.c.creditor_id.label("creditor_id"),
            is_fee.label("is_fee"),
            cents(dialect, func.sum(rows.c.amount)).label("amount"),
        )
        .where(where)
        .group_by(batch, rows.c.debtor_id, rows.c.creditor_id, is_fee)
        .subquery()
    )


def signed_gross(rows: Any = OBLIGATIONS) -> Any:
    """An obligation's part of a batch's gross: its amount, a refund's taken back."""
    return case((rows.c.kind == REFUND, -rows.c.amount), else_=rows.c.amount)
