"""bulk accrual imports: jobs, staged rows, rejected lines

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = '0014'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('import_jobs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('program_code', sa.String(length=20), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('staged', sa.Boolean(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('failure', sa.Text(), nullable=True),
    sa.Column('lease_holder', sa.String(length=100), nullable=True),
    sa.Column('lease_expires_at', hub.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', hub.db.UTCDateTime(), nullable=False),
    sa.Column('finished_at', hub.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_import_jobs_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['program_code'], ['programs.code'], name=op.f('fk_import_jobs_program_code_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    op.create_index('ix_import_jobs_status', 'import_jobs', ['status', 'lease_expires_at'], unique=False)
    op.create_index('ix_import_jobs_merchant', 'import_jobs', ['merchant_id', 'created_at'], unique=False)
    op.create_table('import_rows',
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('line', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=True),
    sa.Column('external_ref', sa.String(length=80), nullable=True),
    sa.Column('order_ref', sa.String(length=120), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('occurred_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('fk_import_rows_job_id_import_jobs')),
    sa.PrimaryKeyConstraint('job_id', 'line', name=op.f('pk_import_rows')),
    sqlite_with_rowid=False,
    )
    op.create_table('import_errors',
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('line', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['import_jobs.id'], name=op.f('fk_import_errors_job_id_import_jobs')),
    sa.PrimaryKeyConstraint('job_id', 'line', name=op.f('pk_import_errors'))
    )


def downgrade() -> None:
    op.drop_table('import_errors')
    op.drop_table('import_rows')
    op.drop_index('ix_import_jobs_merchant', table_name='import_jobs')
    op.drop_index('ix_import_jobs_status', table_name='import_jobs')
    op.drop_table('import_jobs')
