"""dispute resolutions and their adjustments

Revision ID: 0015
Revises: 0006
Create Date: 2026-12-02 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = '0015'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution', sa.Text(), nullable=True))
    op.create_table(
        'statement_adjustments',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('statement_id', sa.String(length=90), nullable=False),
        sa.Column('counterparty_id', sa.String(length=40), nullable=False),
        sa.Column('amount', hub.db.ExactDecimal(precision=18, scale=4), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('obligation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['counterparty_id'], ['merchants.id'], name=op.f('fk_statement_adjustments_counterparty_id_merchants')),
        sa.ForeignKeyConstraint(['obligation_id'], ['obligations.id'], name=op.f('fk_statement_adjustments_obligation_id_obligations')),
        sa.ForeignKeyConstraint(['statement_id'], ['statements.id'], name=op.f('fk_statement_adjustments_statement_id_statements')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_statement_adjustments')),
    )
    op.create_index('ix_statement_adjustments_statement', 'statement_adjustments', ['statement_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_statement_adjustments_statement', table_name='statement_adjustments')
    op.drop_table('statement_adjustments')
    with op.batch_alter_table('statements', schema=None) as batch_op:
        batch_op.drop_column('resolution')
