"""hub call keys: one entry per program and hub call key

Revision ID: 0011
Revises: 0006
Create Date: 2026-12-02 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HUB_CALL = (
    "idempotency_key IS NOT NULL AND kind IN ('REDEMPTION', 'CONVERSION_OUT', "
    "'CONVERSION_IN', 'COMPENSATION', 'REFUND', 'HOLD', 'CAPTURE', 'RELEASE')"
)


def upgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index(
            'uq_entries_hub_call',
            ['program_code', 'idempotency_key'],
            unique=True,
            sqlite_where=sa.text(HUB_CALL),
            postgresql_where=sa.text(HUB_CALL),
        )


def downgrade() -> None:
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('uq_entries_hub_call')
