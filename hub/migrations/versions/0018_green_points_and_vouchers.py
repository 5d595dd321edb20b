"""green programs, tagged rewards and promotions, voucher terms and vouchers

Revision ID: 0018
Revises: 0020
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = '0018'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A merchant may run a GREEN program beside its primary (STANDARD) one: one per kind.
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sa.String(length=20), nullable=False, server_default='STANDARD')
        )
        batch_op.drop_constraint('uq_programs_merchant_id', type_='unique')
        batch_op.create_index('uq_programs_merchant_kind', ['merchant_id', 'kind'], unique=True)
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tags', sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                'voucher_face_value', hub.db.ExactDecimal(precision=18, scale=4), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                'voucher_min_spend', hub.db.ExactDecimal(precision=18, scale=4), nullable=True
            )
        )
        batch_op.add_column(sa.Column('voucher_valid_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('promotions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tags', sa.Text(), nullable=True))
    op.create_table(
        'vouchers',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('redemption_id', sa.String(length=40), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('member_id', sa.String(length=40), nullable=False),
        sa.Column('face_value', hub.db.ExactDecimal(precision=18, scale=4), nullable=False),
        sa.Column('min_spend', hub.db.ExactDecimal(precision=18, scale=4), nullable=False),
        sa.Column('valid_until', hub.db.UTCDateTime(), nullable=False),
        sa.Column('used_at', hub.db.UTCDateTime(), nullable=True),
        sa.Column('order_ref', sa.String(length=120), nullable=True),
        sa.Column('order_amount', hub.db.ExactDecimal(precision=18, scale=4), nullable=True),
        sa.Column('used_by', sa.String(length=100), nullable=True),
        sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['member_id'], ['members.id'], name=op.f('fk_vouchers_member_id_members')
        ),
        sa.ForeignKeyConstraint(
            ['merchant_id'], ['merchants.id'], name=op.f('fk_vouchers_merchant_id_merchants')
        ),
        sa.ForeignKeyConstraint(
            ['redemption_id'],
            ['redemptions.id'],
            name=op.f('fk_vouchers_redemption_id_redemptions'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_vouchers')),
        sa.UniqueConstraint('code', name=op.f('uq_vouchers_code')),
        sa.UniqueConstraint('redemption_id', name=op.f('uq_vouchers_redemption_id')),
    )
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.create_index('ix_vouchers_merchant', ['merchant_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.drop_index('ix_vouchers_merchant')
    op.drop_table('vouchers')
    with op.batch_alter_table('promotions', schema=None) as batch_op:
        batch_op.drop_column('tags')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_column('voucher_valid_days')
        batch_op.drop_column('voucher_min_spend')
        batch_op.drop_column('voucher_face_value')
        batch_op.drop_column('tags')
    extra = op.get_bind().execute(sa.text("SELECT count(*) FROM programs WHERE kind <> 'STANDARD'"))
    if extra.scalar():
        raise RuntimeError('GREEN programs exist: a merchant would run two programs again.')
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.drop_index('uq_programs_merchant_kind')
        batch_op.create_unique_constraint('uq_programs_merchant_id', ['merchant_id'])
        batch_op.drop_column('kind')
