"""`hub verify`, amounts: every obligation is worth what it is for, by the rules that wrote
it, and what a batch holds is what its obligations make.

Counting obligations (hub.verify) finds one missing; these checks find one that is
there with the wrong money: points x the wrong point value, a refund that is not its
redemption, compensation for the wrong cancellation, a fee on a refund, a position
rounded per line, a payment through a rate past its daily limit. Each is one SQL query
in the database's own arithmetic (hub.obligation_rules), but the line pricing, which
replays the conversion's own function in Python over the redemptions that paid through
a rate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy import type_coerce as as_type
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from hub.db import ExactDecimal
from hub.enums import (
    AccountKind,
    CancellationReason,
    ConversionStatus,
    MerchantCategory,
    ObligationKind,
    ProgramKind,
    RedemptionStatus,
    SettlementBasis,
)
from hub.exchange.pricing import leg_out, points_needed
from hub.models import (
    Account,
    Conversion,
    ConversionLeg,
    ExchangeRate,
    Merchant,
    NetPosition,
    Obligation,
    Posting,
    Program,
    Redemption,
    RedemptionLeg,
    SettlementBatch,
)
from hub.models.base import as_text
from hub.obligation_rules import FEE, batch_of, fee_base, fee_of, half_away, pair_totals

MONEY = ExactDecimal(18, 4)
Rows = Callable[[AsyncSession, int], Awaitable[list[tuple[Any, ...]]]]
Check = tuple[str, str, Any]  # a name, a template for each row, a query or a Rows function

CONVERSION, REDEMPTION, REFUND, COMPENSATION = (
    ObligationKind.CONVERSION,
    ObligationKind.REDEMPTION,
    ObligationKind.REFUND,
    ObligationKind.COMPENSATION,
)

# A merchant's rewards are priced in its primary program (a GREEN one beside it prices none).
STANDARD = ProgramKind.STANDARD


def worth(dialect: str, points: Any, point_value: Any) -> Any:
    """points x pointValue rounded half-up to 4 places (hub.obligations.amount_for), in the
    units the amount column holds: on SQLite a point value is an integer of 1/10^6 and an
    amount one of 1/10^4."""
    if dialect == "sqlite":
        return half_away(cast(points, BigInteger) * cast(point_value, BigInteger), 100)
    return func.round(points * point_value, 4)


# An obligation as the checks name it: who owes whom for which points of what (`_BETWEEN`),
# and with the money owed (`_OWED`). Each check's message counts on these columns' order.
_BETWEEN = (
    Obligation.id,
    Obligation.debtor_id,
    Obligation.creditor_id,
    Obligation.points,
    Obligation.program_code,
    Obligation.reference,
)
_OWED = (
    Obligation.id,
    Obligation.reference,
    Obligation.debtor_id,
    Obligation.creditor_id,
    Obligation.amount,
    Obligation.points,
    Obligation.program_code,
)


def _obligation_checks(dialect: str) -> list[Check]:
    owner = aliased(Program)
    payer = aliased(Program)
    valued = Program.point_value
    by_points = or_(
        Obligation.kind.in_([CONVERSION, COMPENSATION]),
        (Obligation.kind == REDEMPTION)
        & (Redemption.settlement_basis == SettlementBasis.POINTS.value),
    )
    owner_worth = worth(dialect, Redemption.price_points, owner.point_value)
    recorded = func.coalesce(Redemption.settlement_basis, "") != SettlementBasis.LEGACY.value
    redemption_wrong = or_(
        Redemption.id.is_(None),
        Redemption.settlement_basis.is_(None),
        Obligation.amount != Redemption.settlement_price,
        Obligation.debtor_id != payer.merchant_id,
        Obligation.creditor_id != Redemption.merchant_id,
        recorded
        & (
            (Obligation.program_code != owner.code)
            | (Obligation.points != func.coalesce(Redemption.price_points, -1))
        ),
        (Redemption.settlement_basis == SettlementBasis.ASKED.value)
        & (Redemption.settlement_price > owner_worth),
    )
    twin = aliased(Obligation)
    mirrored = (
        select(twin.id)
        .where(
            twin.kind == REDEMPTION,
            twin.reference == Obligation.reference,
            twin.amount == Obligation.amount,
            twin.points == Obligation.points,
            twin.program_code == Obligation.program_code,
            twin.debtor_id == Obligation.creditor_id,
            twin.creditor_id == Obligation.debtor_id,
        )
        .exists()
    )
    source, target = aliased(Program), aliased(Program)
    its_leg = (
        select(ConversionLeg.id)
        .join(source, source.code == ConversionLeg.from_code)
        .join(target, target.code == ConversionLeg.to_code)
        .where(
            ConversionLeg.conversion_id == Obligation.reference,
            ConversionLeg.to_code == Obligation.program_code,
            ConversionLeg.points_out == Obligation.points,
            source.merchant_id == Obligation.debtor_id,
            target.merchant_id == Obligation.creditor_id,
        )
        .exists()
    )
    return [
        (
            "obligation not negative",
            "obligation {0} ({1}) owes {2}",
            select(Obligation.id, Obligation.kind, Obligation.amount).where(
                Obligation.kind != FEE, Obligation.amount < 0
            ),
        ),
        (
            "obligation worth its points",
            "obligation {0} ({1}): {2} {3} owe {4}, worth {5}",
            select(
                Obligation.id,
                Obligation.kind,
                Obligation.points,
                Obligation.program_code,
                Obligation.amount,
                as_type(worth(dialect, Obligation.points, valued), MONEY),
            )
            .join(Program, Program.code == Obligation.program_code)
            .outerjoin(Redemption, Redemption.id == Obligation.reference)
            .where(by_points, Obligation.amount != worth(dialect, Obligation.points, valued)),
        ),
        (
            "conversion obligation is its leg",
            "obligation {0}: {1} owes {2} for {3} {4} of conversion {5}, which no leg moved",
            select(
                *_BETWEEN,
            ).where(Obligation.kind == CONVERSION, ~its_leg),
        ),
        (
            "redemption obligation is its line's price",
            "obligation {0} of {1}: {2} owes {3} {4} for {5} {6}; the line was priced {7} "
            "for {8} {9} ({10})",
            select(
                *_OWED,
                Redemption.settlement_price,
                Redemption.price_points,
                owner.code,
                func.coalesce(Redemption.settlement_basis, "not recorded"),
            )
            .outerjoin(Redemption, Redemption.id == Obligation.reference)
            .outerjoin(payer, payer.code == Redemption.paid_with)
            .outerjoin(
                owner, (owner.merchant_id == Redemption.merchant_id) & (owner.kind == STANDARD)
            )
            .where(Obligation.kind == REDEMPTION, redemption_wrong),
        ),
        (
            "refund equals its redemption",
            "obligation {0}: REFUND of {1}, {2} owes {3} {4} for {5} {6}, is no redemption "
            "obligation reversed",
            select(
                *_OWED,
            ).where(Obligation.kind == REFUND, ~mirrored),
        ),
        (
            "compensation follows its cancellation",
            "obligation {0}: {1} owes {2} compensation of {3} {4} for {5}, {6} by {7} with "
            "{8} compensation points",
            select(
                *_BETWEEN,
                func.coalesce(as_text(Redemption.status), "missing"),
                func.coalesce(Redemption.cancel_reason, "no one"),
                Redemption.compensation_points,
            )
            .outerjoin(Redemption, Redemption.id == Obligation.reference)
            .outerjoin(payer, payer.code == Redemption.paid_with)
            .where(
                Obligation.kind == COMPENSATION,
                or_(
                    Redemption.id.is_(None),
                    Redemption.status != RedemptionStatus.CANCELLED,
                    Redemption.cancel_reason == CancellationReason.MEMBER_REQUEST.value,
                    Obligation.points != Redemption.compensation_points,
                    Obligation.program_code != Redemption.paid_with,
                    Obligation.debtor_id != Redemption.merchant_id,
                    Obligation.creditor_id != payer.merchant_id,
                ),
            ),
        ),
    ]


def _batch_checks(dialect: str) -> list[Check]:
    """A closed batch's fees and positions, recomputed from its obligations."""
    # Membership by range (hub.obligation_rules.batch_of); a FEE names its batch.
    batch = batch_of(dialect)
    settled = batch.is_not(None)
    platform = (
        select(Merchant.id).where(Merchant.category == MerchantCategory.PLATFORM).scalar_subquery()
    )
    base = fee_base(settled, batch)
    expected = (
        select(
            base.c.batch_id,
            base.c.merchant_id,
            fee_of(dialect, func.sum(base.c.amount), SettlementBatch.fee_bps).label("fee"),
        )
        .join(SettlementBatch, SettlementBatch.id == base.c.batch_id)
        # The run charges fees only where a platform receives them, never the platform.
        .where(SettlementBatch.fee_bps > 0, platform.is_not(None), base.c.merchant_id != platform)
        .group_by(base.c.batch_id, base.c.merchant_id, SettlementBatch.fee_bps)
        .subquery()
    )
    zero = literal(0, BigInteger)
    fees = union_all(
        select(expected.c.batch_id, expected.c.merchant_id, expected.c.fee, zero),
        select(
            Obligation.batch_id,
            Obligation.debtor_id,
            zero,
            cast(Obligation.amount, BigInteger) if dialect == "sqlite" else Obligation.amount,
        ).where(Obligation.batch_id.is_not(None), Obligation.kind == FEE),
    ).subquery()
    due, charged = fees.c[2], fees.c[3]

    pairs = pair_totals(dialect, settled, batch)
    is_fee = pairs.c.is_fee == 1
    stored = (
        (
            cast(NetPosition.receivable, BigInteger),
            cast(NetPosition.payable, BigInteger),
            cast(NetPosition.fees, BigInteger),
            cast(NetPosition.net, BigInteger),
        )
        if dialect == "sqlite"
        else (
            NetPosition.receivable,
            NetPosition.payable,
            NetPosition.fees,
            NetPosition.net,
        )
    )
    sides = union_all(
        select(
            pairs.c.batch_id,
            pairs.c.creditor_id,
            pairs.c.amount,
            zero,
            zero,
            pairs.c.amount,
        ),
        select(
            pairs.c.batch_id,
            pairs.c.debtor_id,
            zero,
            case((is_fee, zero), else_=pairs.c.amount),
            case((is_fee, pairs.c.amount), else_=zero),
            -pairs.c.amount,
        ),
        select(
            NetPosition.batch_id,
            NetPosition.merchant_id,
            -stored[0],
            -stored[1],
            -stored[2],
            -stored[3],
        ),
    ).subquery()
    r, p, f, n = (func.sum(sides.c[i]) for i in range(2, 6))
    return [
        (
            "fee is rate x (received - refunds)",
            "batch {0}, {1}: fee charged {2}, due {3}",
            select(
                fees.c.batch_id,
                fees.c.merchant_id,
                as_type(func.sum(charged), MONEY),
                as_type(func.sum(due), MONEY),
            )
            .group_by(fees.c.batch_id, fees.c.merchant_id)
            .having(func.sum(charged) != func.sum(due)),
        ),
        (
            "batch positions recomputed",
            "batch {0}, {1}: stored position differs from its obligations by receivable {2}, "
            "payable {3}, fees {4}, net {5}",
            select(
                sides.c[0],
                sides.c[1],
                as_type(r, MONEY),
                as_type(p, MONEY),
                as_type(f, MONEY),
                as_type(n, MONEY),
            )
            .group_by(sides.c[0], sides.c[1])
            .having(or_(r != 0, p != 0, f != 0, n != 0)),
        ),
    ]


# A system account's balance is the negative of what left or entered its members: points
# issued are owed (never positive), points redeemed, expired or held are there (never
# negative). The exchange account swings both ways.
SIGNS = {
    AccountKind.ISSUED: -1,
    AccountKind.REDEEMED: 1,
    AccountKind.EXPIRED: 1,
    AccountKind.HELD: 1,
}


def _ledger_checks() -> list[Check]:
    total = func.sum(Posting.amount)
    wrong_sign = or_(
        *(and_(Account.kind == kind, total * sign < 0) for kind, sign in SIGNS.items())
    )
    return [
        (
            "system account sign",
            "{0} account of {1} stands at {2}",
            select(Account.kind, Account.program_code, total)
            .join(Posting, Posting.account_id == Account.id)
            .where(Account.kind.in_(list(SIGNS)))
            .group_by(Account.id, Account.kind, Account.program_code)
            .having(wrong_sign),
        ),
    ]


def _limit_checks() -> list[Check]:
    """Conversions and mall payments together stay within each rate's daily limit."""
    legs = union_all(
        select(
            ConversionLeg.member_id,
            ConversionLeg.from_code,
            ConversionLeg.to_code,
            ConversionLeg.business_date,
            ConversionLeg.rate_id,
            ConversionLeg.points_in,
        )
        .join(Conversion, Conversion.id == ConversionLeg.conversion_id)
        .where(Conversion.status.in_([ConversionStatus.PENDING, ConversionStatus.COMPLETED])),
        select(
            RedemptionLeg.member_id,
            RedemptionLeg.from_code,
            RedemptionLeg.to_code,
            RedemptionLeg.business_date,
            RedemptionLeg.rate_id,
            RedemptionLeg.points_in,
        )
        .join(Redemption, Redemption.id == RedemptionLeg.redemption_id)
        .where(Redemption.status.in_([RedemptionStatus.PENDING, RedemptionStatus.CONFIRMED])),
    ).subquery()
    limit = ExchangeRate.daily_limit_per_member
    used = func.sum(legs.c.points_in)
    return [
        (
            "daily conversion limit kept",
            "member {0} moved {4} {1} to {2} on {3}, over the daily limit of {5}",
            select(
                legs.c.member_id,
                legs.c.from_code,
                legs.c.to_code,
                legs.c.business_date,
                used,
                func.max(limit),
            )
            .join(ExchangeRate, ExchangeRate.id == legs.c.rate_id)
            .group_by(legs.c.member_id, legs.c.from_code, legs.c.to_code, legs.c.business_date)
            # Only where every rate version used that day had a limit.
            .having(func.count(limit) == func.count(), used > func.max(limit)),
        ),
    ]


async def _line_prices(session: AsyncSession, limit: int) -> list[tuple[Any, ...]]:
    """Each redemption paid exactly what its whole line costs at the rates it used: the
    fewest points whose conversion yields the line's price (the conversion's function),
    converted leg by leg as recorded, arriving in the reward's program."""
    owner = aliased(Program)
    found: list[tuple[Any, ...]] = []
    own = await session.execute(
        select(Redemption.id, Redemption.points, Redemption.paid_with, Redemption.price_points)
        .join(owner, (owner.merchant_id == Redemption.merchant_id) & (owner.kind == STANDARD))
        .where(
            func.coalesce(Redemption.settlement_basis, "") != SettlementBasis.LEGACY.value,
            ~select(RedemptionLeg.id).where(RedemptionLeg.redemption_id == Redemption.id).exists(),
            or_(
                Redemption.paid_with != owner.code,
                Redemption.points + Redemption.discount_points
                != func.coalesce(Redemption.price_points, -1),
            ),
        )
        .limit(limit)
    )
    for rid, points, paid_with, price_points in own:  # points: what the member paid
        found.append((rid, points, paid_with, price_points, "no conversion recorded"))
    rows = await session.stream(
        select(Redemption, RedemptionLeg, ExchangeRate, owner.code)
        .join(RedemptionLeg, RedemptionLeg.redemption_id == Redemption.id)
        .join(ExchangeRate, ExchangeRate.id == RedemptionLeg.rate_id)
        .join(owner, (owner.merchant_id == Redemption.merchant_id) & (owner.kind == STANDARD))
        .order_by(Redemption.id, RedemptionLeg.seq)
        .execution_options(yield_per=1000)
    )
    current: list[Any] = []

    def judge(group: list[Any]) -> None:
        r, owner_code = group[0][0], group[0][3]
        legs = [row[1] for row in group]
        rates = [row[2] for row in group]
        if r.price_points is None:
            found.append((r.id, r.points, r.paid_with, None, "no line price recorded"))
            return
        needed = points_needed(rates, r.price_points)
        # The legs convert the whole line; the member's tier discount was given on top.
        charged = r.points + r.discount_points
        amount, broken = charged, None
        for leg, rate in zip(legs, rates, strict=True):
            if leg.points_in != amount or leg.points_out != leg_out(amount, rate):
                broken = f"leg {leg.seq} moved {leg.points_in} -> {leg.points_out}"
                break
            amount = leg.points_out
        if broken is None and (legs[-1].to_code != owner_code or amount < r.price_points):
            broken = f"{amount} {legs[-1].to_code} arrived"
        if broken is None and needed != charged:
            broken = f"the line costs {needed}"
        if broken is not None:
            found.append((r.id, r.points, r.paid_with, r.price_points, broken))

    async for row in rows:
        if current and current[0][0].id != row[0].id:
            judge(current)
            current = []
        if len(found) >= limit:
            break
        current.append(row)
    if current and len(found) < limit:
        judge(current)
    await rows.close()
    return found[:limit]


def checks(dialect: str) -> list[Check]:
    """Every amount check, in the order `hub verify` runs them."""
    return [
        *_obligation_checks(dialect),
        (
            "redemption paid its line's price",
            "redemption {0} took {1} {2} for a line of {3} points: {4}",
            _line_prices,
        ),
        *_limit_checks(),
        *_batch_checks(dialect),
        *_ledger_checks(),
    ]
