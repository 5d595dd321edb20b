"""purchase amounts of accruals imported before imports kept them

Revision ID: 0022
Revises: 0025
Create Date: 2026-12-03 11:00:00.000000
"""

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = '0022'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
BATCH = 5000


def upgrade() -> None:
    """Imports wrote accruals without the purchase amount tiers qualify on (0017 carried
    over the amounts of accruals before it; imports since then had none): carry theirs over
    from the memo ("purchase of 125.50 (...)"), so that those purchases count."""
    bind = op.get_bind()
    entries = sa.table(
        'entries',
        sa.column('id', BIG_ID),
        sa.column('kind', sa.String()),
        sa.column('program_code', sa.String()),
        sa.column('member_id', sa.String()),
        sa.column('memo', sa.Text()),
        sa.column('occurred_at', hub.db.UTCDateTime()),
    )
    amounts = sa.table(
        'accrual_amounts',
        sa.column('entry_id', BIG_ID),
        sa.column('program_code', sa.String()),
        sa.column('member_id', sa.String()),
        sa.column('amount', hub.db.ExactDecimal(18, 4)),
        sa.column('occurred_at', hub.db.UTCDateTime()),
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
                entries.c.kind == 'ACCRUAL',
                entries.c.member_id.is_not(None),
                entries.c.memo.like('purchase of %'),
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
                        'entry_id': entry_id,
                        'program_code': program,
                        'member_id': member,
                        'amount': amount,
                        'occurred_at': occurred,
                    }
                )
        if found:
            bind.execute(sa.insert(amounts), found)
        after = rows[-1][0]


def _amount_of(memo: str) -> Decimal | None:
    word = memo.removeprefix('purchase of ').split(' ', 1)[0]
    try:
        amount = Decimal(word)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None


def downgrade() -> None:
    """The amounts stay: accruals made since 0022 have theirs too, and both look alike."""
