"""redemption lines priced once: the reward's price points, the settlement basis, and the
conversion legs a payment went through (they count against daily limits)

Revision ID: 0012
Revises: 0021
Create Date: 2026-12-04 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # How earlier redemptions were priced was not recorded: their price_points stay NULL
    # and their basis says LEGACY, which `hub verify` holds to the rules of the time. A
    # redemption written later without a basis was priced by code that ignores the rules.
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_points', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('settlement_basis', sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column('discount_points', sa.BigInteger(), nullable=False, server_default='0')
        )
    op.execute("UPDATE redemptions SET settlement_basis = 'LEGACY'")
    op.create_table(
        'redemption_legs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('redemption_id', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.String(length=40), nullable=False),
        sa.Column('from_code', sa.String(length=20), nullable=False),
        sa.Column('to_code', sa.String(length=20), nullable=False),
        sa.Column('rate_id', sa.String(length=40), nullable=False),
        sa.Column('points_in', sa.BigInteger(), nullable=False),
        sa.Column('points_out', sa.BigInteger(), nullable=False),
        sa.Column('business_date', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['redemption_id'], ['redemptions.id'], name=op.f('fk_redemption_legs_redemption_id_redemptions')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_redemption_legs_member_id_members')),
        sa.ForeignKeyConstraint(['from_code'], ['programs.code'], name=op.f('fk_redemption_legs_from_code_programs')),
        sa.ForeignKeyConstraint(['to_code'], ['programs.code'], name=op.f('fk_redemption_legs_to_code_programs')),
        sa.ForeignKeyConstraint(['rate_id'], ['exchange_rates.id'], name=op.f('fk_redemption_legs_rate_id_exchange_rates')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_redemption_legs')),
    )
    op.create_index('ix_redemption_legs_usage', 'redemption_legs', ['member_id', 'from_code', 'to_code', 'business_date'], unique=False)
    op.create_index('ix_redemption_legs_redemption', 'redemption_legs', ['redemption_id', 'seq'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_redemption_legs_redemption', table_name='redemption_legs')
    op.drop_index('ix_redemption_legs_usage', table_name='redemption_legs')
    op.drop_table('redemption_legs')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_column('discount_points')
        batch_op.drop_column('settlement_basis')
        batch_op.drop_column('price_points')
