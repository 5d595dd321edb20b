"""partner_outcomes by (program_code, partner_ref): a confirmation's reference looked up

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 23:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Before the hub believes a partner's confirmation it asks whether the partner gave
    that reference to another saga's call (hub.sagas._own_reference): one look-up by
    index per confirmation."""
    op.create_index("ix_partner_outcomes_ref", "partner_outcomes", ["program_code", "partner_ref"])


def downgrade() -> None:
    op.drop_index("ix_partner_outcomes_ref", table_name="partner_outcomes")
