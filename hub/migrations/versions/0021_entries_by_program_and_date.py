"""entries by program and business date (merchant insights)

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-03 08:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0021'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # merchantInsights reads a program's entries of a period: its points per day and its
    # active members, without scanning every other program's entries and days.
    op.create_index(
        'ix_entries_program_date', 'entries', ['program_code', 'business_date'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_entries_program_date', table_name='entries')
