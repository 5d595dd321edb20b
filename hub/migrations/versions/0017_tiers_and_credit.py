"""tiers, members' standing, accrual amounts, credit levels, promotion eligibility,
priority rewards

Revision ID: 0017
Revises: 0008
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence
import sqlalchemy as sa
from alembic import op

import hub.db
from hub.migrations import backfill

revision: str = '0017'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('tiers',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('program_code', sa.String(length=20), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('min_spend', hub.db.ExactDecimal(precision=18, scale=4), nullable=False),
    sa.Column('min_orders', sa.Integer(), nullable=False),
    sa.Column('accrual_multiplier', hub.db.ExactDecimal(precision=9, scale=4), nullable=False),
    sa.Column('redemption_discount_percent', hub.db.ExactDecimal(precision=9, scale=4), nullable=False),
    sa.Column('benefits', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['program_code'], ['programs.code'], name=op.f('fk_tiers_program_code_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tiers'))
    )
    op.create_index('uq_tiers_program_code', 'tiers', ['program_code', 'code'], unique=True)
    op.create_table('member_tiers',
    sa.Column('program_code', sa.String(length=20), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('tier_code', sa.String(length=40), nullable=True),
    sa.Column('since', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_tiers_member_id_members')),
    sa.ForeignKeyConstraint(['program_code'], ['programs.code'], name=op.f('fk_member_tiers_program_code_programs')),
    sa.PrimaryKeyConstraint('program_code', 'member_id', name=op.f('pk_member_tiers'))
    )
    op.create_table('accrual_amounts',
    sa.Column('entry_id', BIG_ID, autoincrement=False, nullable=False),
    sa.Column('program_code', sa.String(length=20), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('amount', hub.db.ExactDecimal(precision=18, scale=4), nullable=False),
    sa.Column('occurred_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_accrual_amounts_entry_id_entries')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_accrual_amounts_member_id_members')),
    sa.ForeignKeyConstraint(['program_code'], ['programs.code'], name=op.f('fk_accrual_amounts_program_code_programs')),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_accrual_amounts'))
    )
    op.create_index('ix_accrual_amounts_program_member', 'accrual_amounts', ['program_code', 'member_id', 'occurred_at'], unique=False)
    op.create_table('tier_reviews',
    sa.Column('program_code', sa.String(length=20), nullable=False),
    sa.Column('reviewed_on', sa.Date(), nullable=False),
    sa.Column('reviewed_at', hub.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['program_code'], ['programs.code'], name=op.f('fk_tier_reviews_program_code_programs')),
    sa.PrimaryKeyConstraint('program_code', name=op.f('pk_tier_reviews'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credit_level', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('credit_level_at', hub.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table('promotions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tiers', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('credit_levels', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('min_age', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('birthday_month', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority_until', hub.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('priority_tiers', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('priority_credit_levels', sa.Text(), nullable=True))
    _backfill_amounts()


def _backfill_amounts() -> None:
    """Accruals written before amounts were kept say theirs in the memo ("purchase of 125.50
    (...)"): carry them over, so that members qualify on the purchases they already made."""
    backfill.accrual_amounts(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_column('priority_credit_levels')
        batch_op.drop_column('priority_tiers')
        batch_op.drop_column('priority_until')
    with op.batch_alter_table('promotions', schema=None) as batch_op:
        batch_op.drop_column('birthday_month')
        batch_op.drop_column('min_age')
        batch_op.drop_column('credit_levels')
        batch_op.drop_column('tiers')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('credit_level_at')
        batch_op.drop_column('credit_level')
    op.drop_table('tier_reviews')
    op.drop_index('ix_accrual_amounts_program_member', table_name='accrual_amounts')
    op.drop_table('accrual_amounts')
    op.drop_table('member_tiers')
    op.drop_index('uq_tiers_program_code', table_name='tiers')
    op.drop_table('tiers')
