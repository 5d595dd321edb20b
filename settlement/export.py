"""A statement as CSV, streamed in pages: amounts are strings with 2 decimals."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from hub.db import Database
from hub.models import Statement
from hub.money import money
from settlement.statements import lines

HEADER = [
    "line_id",
    "business_date",
    "kind",
    "counterparty",
    "reference",
    "program",
    "points",
    "amount",
    "occurred_at",
]


def _money(value: Decimal) -> str:
    return str(money(value))


def _row(values: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


async def statement_csv(db: Database, statement: Statement, page: int = 2000) -> AsyncIterator[str]:
    """The statement's header, its lines page by page, and a total line: the statement's
    net, its counterparty totals each rounded once (a line shows its own total rounded)."""
    yield _row(HEADER)
    after: int | None = None
    while True:
        async with db.read() as session:
            found, more = await lines(session, statement, page, after)
        for line in found:
            o = line.obligation
            yield _row(
                [
                    o.id,
                    o.business_date.isoformat(),
                    o.kind,
                    line.counterparty,
                    o.reference,
                    o.program_code,
                    o.points,
                    _money(line.amount),
                    o.occurred_at.isoformat(),
                ]
            )
        if not more or not found:
            break
        after = found[-1].obligation.id
    yield _row(
        [
            "TOTAL",
            statement.business_date.isoformat(),
            "",
            "",
            statement.id,
            "",
            "",
            _money(statement.net),
            "",
        ]
    )
