"""How obligations become money, in SQL: the fee base, rounding once per pair total, and
a batch's gross. The settlement run writes by these rules and `hub verify` checks by
them, each in its database's own arithmetic (on SQLite an amount is an integer of
1/10000, see hub.db.ExactDecimal).

Obligations keep 4 decimal places. A batch rounds once per statement line total: what
one merchant owes another in the batch (fees apart) is summed, then rounded half-up to
the cent; positions, statements and payments are built from those totals.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, select, union_all

from hub.enums import ObligationKind
from hub.models import Obligation

FEE = ObligationKind.FEE.value
REFUND = ObligationKind.REFUND.value
# What a merchant is charged a fee on: the business it received. A refund takes its
# redemption back out of the refunding merchant's base; compensation is a cost of a
# cancellation, an adjustment corrects money already charged, and a fee is no business.
FEE_BASE = (ObligationKind.CONVERSION.value, ObligationKind.REDEMPTION.value)


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


def fee_base(where: Any) -> Any:
    """Per batch and merchant: + what it received as CONVERSION or REDEMPTION, - the
    REFUNDs it paid back. Columns batch_id, merchant_id, program_code, amount."""
    return union_all(
        select(
            Obligation.batch_id.label("batch_id"),
            Obligation.creditor_id.label("merchant_id"),
            Obligation.program_code.label("program_code"),
            Obligation.amount.label("amount"),
        ).where(where, Obligation.kind.in_(FEE_BASE)),
        select(
            Obligation.batch_id.label("batch_id"),
            Obligation.debtor_id.label("merchant_id"),
            Obligation.program_code.label("program_code"),
            (-Obligation.amount).label("amount"),
        ).where(where, Obligation.kind == REFUND),
    ).subquery()


def pair_totals(dialect: str, where: Any) -> Any:
    """What each merchant owes each other per batch, fees apart, rounded once to the cent
    (rounding each obligation on its own lost or made cents). Columns batch_id, debtor_id,
    creditor_id, is_fee (1 or 0), amount."""
    is_fee = case((Obligation.kind == FEE, 1), else_=0)
    return (
        select(
            Obligation.batch_id.label("batch_id"),
            Obligation.debtor_id.label("debtor_id"),
            Obligation.creditor_id.label("creditor_id"),
            is_fee.label("is_fee"),
            cents(dialect, func.sum(Obligation.amount)).label("amount"),
        )
        .where(where)
        .group_by(Obligation.batch_id, Obligation.debtor_id, Obligation.creditor_id, is_fee)
        .subquery()
    )


def signed_gross() -> Any:
    """An obligation's part of a batch's gross: its amount, a refund's taken back."""
    return case((Obligation.kind == REFUND, -Obligation.amount), else_=Obligation.amount)
