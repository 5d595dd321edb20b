"""settlement ranges: a batch claims an ordered range of obligations instead of
writing its id into each one

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The id of the transaction that wrote the row (xid8 as a bigint: it is 64-bit and never
# wraps). Existing rows get this migration's own id: the first run claims them.
WRITER_XID = sa.text("(pg_current_xact_id()::text)::bigint")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # On SQLite the range is one of ids (writers are serialized), the column stays NULL.
    op.add_column(
        "obligations",
        sa.Column(
            "txn", sa.BigInteger(), nullable=True, server_default=WRITER_XID if postgres else None
        ),
    )
    op.create_index("ix_obligations_txn", "obligations", ["txn"])
    with op.batch_alter_table("settlement_batches") as batch:
        batch.add_column(sa.Column("claim_low", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("claim_high", sa.BigInteger(), nullable=True))
    # Two runs can never take the same range: the second one's insert fails.
    op.create_index(
        "ix_settlement_batches_claim_low", "settlement_batches", ["claim_low"], unique=True
    )
    op.create_table(
        "settlement_carried",
        sa.Column(
            "obligation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("obligations.id"),
            primary_key=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("settlement_carried")
    op.drop_index("ix_settlement_batches_claim_low", table_name="settlement_batches")
    with op.batch_alter_table("settlement_batches") as batch:
        batch.drop_column("claim_high")
        batch.drop_column("claim_low")
    op.drop_index("ix_obligations_txn", table_name="obligations")
    with op.batch_alter_table("obligations") as batch:
        batch.drop_column("txn")
