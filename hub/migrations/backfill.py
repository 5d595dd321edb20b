"""Data that migrations carry over, shared by the migrations that need it (0017, 0022).

A migration already run never runs again, so a change here only affects databases not yet
migrated: keep each function doing what the migrations using it promise.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.engine import Connection

import hub.db

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 5000


def accrual_amounts(bind: Connection) -> None:
    """Give every accrual of a member that has no purchase amount the one its memo names
    ("purchase of 125.50 (...)"), so that members qualify for tiers on it: accruals made
    before amounts were kept (0017), and imported before imports kept them (0022)."""
    entries = sa.table(
        "entries",
        sa.column("id", BIG_ID),
        sa.column("kind", sa.String()),
        sa.column("program_code", sa.String()),
        sa.column("member_id", sa.String()),
        sa.column("memo", sa.Text()),
        sa.column("occurred_at", hub.db.UTCDateTime()),
    )
    amounts = sa.table(
        "accrual_amounts",
        sa.column("entry_id", BIG_ID),
        sa.column("program_code", sa.String()),
        sa.column("member_id", sa.String()),
        sa.column("amount", hub.db.ExactDecimal(18, 4)),
        sa.column("occurred_at", hub.db.UTCDateTime()),
    )
    after = 0
    while True:
        rows = bind.execute(
            sa.select(
                entries.c.id,
                entries.c.program_code,
                entries.c.member_id,
                entries.c.memo,
                entries.c.occurred_at,
            )
            .where(
                entries.c.id > after,
                entries.c.kind == "ACCRUAL",
                entries.c.member_id.is_not(None),
                entries.c.memo.like("purchase of %"),
                ~sa.exists().where(amounts.c.entry_id == entries.c.id),
            )
            .order_by(entries.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        found = []
        for entry_id, program, member, memo, occurred in rows:
            amount = _amount_of(memo)
            if amount is not None:
                found.append(
                    {
                        "entry_id": entry_id,
                        "program_code": program,
                        "member_id": member,
                        "amount": amount,
                        "occurred_at": occurred,
                    }
                )
        if found:
            bind.execute(sa.insert(amounts), found)
        after = rows[-1][0]


def _amount_of(memo: str) -> Decimal | None:
    word = memo.removeprefix("purchase of ").split(" ", 1)[0]
    try:
        amount = Decimal(word)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None
