"""reconciliation reports

Revision ID: 0013
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = '0013'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'reconciliation_reports',
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=30), nullable=False),
        sa.Column('matched', sa.Integer(), nullable=False),
        sa.Column('breaks', sa.Text(), nullable=False),
        sa.Column('generated_at', hub.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['merchant_id'],
            ['merchants.id'],
            name=op.f('fk_reconciliation_reports_merchant_id_merchants'),
        ),
        sa.PrimaryKeyConstraint(
            'merchant_id', 'business_date', name=op.f('pk_reconciliation_reports')
        ),
    )


def downgrade() -> None:
    op.drop_table('reconciliation_reports')
