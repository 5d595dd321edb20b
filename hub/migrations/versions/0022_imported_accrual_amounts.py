"""purchase amounts of accruals imported before imports kept them

Revision ID: 0022
Revises: 0025
Create Date: 2026-12-03 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from hub.migrations import backfill

revision: str = '0022'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Imports wrote accruals without the purchase amount tiers qualify on (0017 carried
    over the amounts of accruals before it; imports since then had none): carry theirs over
    from the memo ("purchase of 125.50 (...)"), so that those purchases count."""
    backfill.accrual_amounts(op.get_bind())


def downgrade() -> None:
    """The amounts stay: accruals made since 0022 have theirs too, and both look alike."""
