"""Settlement obligations: money one merchant owes another for a cross-merchant move."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import Settings
from hub.db import append, utcnow
from hub.enums import ObligationKind
from hub.models import Obligation, Program
from hub.models.base import table_of

# Obligations keep 4 decimal places: 4 points at 0.001 are owed 0.0040, not 0.00. The
# settlement run rounds to the cent once per counterparty total (settlement.netting).
PLACES = Decimal("0.0001")


def amount_for(points: int, point_value: Decimal) -> Decimal:
    """points x pointValue, rounded half-up to 4 decimal places, once for the whole line."""
    return (Decimal(points) * point_value).quantize(PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    """What an obligation is for: points of one program, and what they are worth."""

    program_code: str
    points: int
    amount: Decimal

    @classmethod
    def worth(cls, program: Program, points: int) -> Line:
        """`points` of `program` at its point value."""
        return cls(program.code, points, amount_for(points, program.point_value))


async def record(
    session: AsyncSession,
    settings: Settings,
    kind: ObligationKind,
    line: Line,
    *,
    debtor: str,
    creditor: str,
    reference: str,
    occurred_at: dt.datetime,
) -> None:
    """Write one obligation: `debtor` owes `creditor` for `line` (nothing when a merchant
    would owe itself). Appended to the transaction (hub.db.append): nothing in it reads
    an obligation back."""
    if debtor == creditor:
        return
    await append(
        session,
        _OBLIGATIONS,
        [
            {
                "kind": kind,
                "debtor_id": debtor,
                "creditor_id": creditor,
                "program_code": line.program_code,
                "points": line.points,
                "amount": line.amount,
                "reference": reference,
                "occurred_at": occurred_at,
                "business_date": settings.business_date(occurred_at),
                "created_at": utcnow(),
            }
        ],
    )


_OBLIGATIONS = table_of(Obligation)
