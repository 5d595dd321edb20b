"""settlement price contracts and refused partner offers

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-26 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing prices were the merchants' own word: not contracted, so capped from now on.
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'settlement_contracted', sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(sa.Column('offer_refusal', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_column('offer_refusal')
        batch_op.drop_column('settlement_contracted')
