"""partner_outcomes.ref_key: a confirmation's reference as compared, in any case

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 00:35:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The reuse check compares references in any case (outside attack helper-74: a
    replayed "T1" answered as "t1" passed): each reference is kept lowered beside the
    partner's own spelling, and looked up by that (an index both databases reflect)."""
    with op.batch_alter_table("partner_outcomes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ref_key", sa.String(length=120), nullable=True))
        batch_op.drop_index("ix_partner_outcomes_ref")
    op.execute("UPDATE partner_outcomes SET ref_key = lower(partner_ref)")
    op.create_index("ix_partner_outcomes_ref", "partner_outcomes", ["program_code", "ref_key"])


def downgrade() -> None:
    op.drop_index("ix_partner_outcomes_ref", table_name="partner_outcomes")
    with op.batch_alter_table("partner_outcomes", schema=None) as batch_op:
        batch_op.drop_column("ref_key")
        batch_op.create_index("ix_partner_outcomes_ref", ["program_code", "partner_ref"])
