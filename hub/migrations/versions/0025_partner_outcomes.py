"""partner outcomes: what partners confirmed of each saga's steps

Revision ID: 0025
Revises: 0014
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0025"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONNECTED = "(SELECT code FROM programs WHERE connector <> 'HOSTED')"

# The partner steps that sagas already past them took before this table existed: their
# outcomes were applied (a saga moves past a partner step only on its answer), so they are
# recorded as confirmed when the table is made.
BACKFILL = [
    (
        "conversion",
        "'DEBIT'",
        "from_code",
        "debit_ref",
        "conversions",
        "status IN ('COMPLETED', 'REVERSED') OR (status = 'PENDING' AND step IN "
        "('CREDIT', 'REVERSE'))",
        "from_code",
    ),
    (
        "conversion",
        "'CREDIT'",
        "to_code",
        "credit_ref",
        "conversions",
        "status = 'COMPLETED'",
        "to_code",
    ),
    (
        "conversion",
        "'REVERSE'",
        "from_code",
        "NULL",
        "conversions",
        "status = 'REVERSED'",
        "from_code",
    ),
    (
        "redemption",
        "CASE WHEN hold_ref IS NULL THEN 'DEBIT' ELSE 'HOLD' END",
        "paid_with",
        "hold_ref",
        "redemptions",
        "status IN ('CONFIRMED', 'CANCELLED') OR (status = 'PENDING' AND step IN "
        "('BOOK', 'CAPTURE', 'RELEASE', 'UNBOOK')) OR (status = 'FAILED' AND hold_ref IS NOT "
        "NULL)",
        "paid_with",
    ),
    (
        "redemption",
        "'RELEASE'",
        "paid_with",
        "NULL",
        "redemptions",
        "status = 'FAILED' AND hold_ref IS NOT NULL",
        "paid_with",
    ),
    (
        "redemption",
        "'REFUND'",
        "paid_with",
        "NULL",
        "redemptions",
        "status = 'CANCELLED' OR (status = 'CONFIRMED' AND cancel_step = 'COMPENSATE')",
        "paid_with",
    ),
    (
        "redemption",
        "'COMPENSATE'",
        "paid_with",
        "NULL",
        "redemptions",
        "status = 'CANCELLED' AND compensation_points > 0",
        "paid_with",
    ),
]


def upgrade() -> None:
    op.create_table(
        "partner_outcomes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("saga", sa.String(length=20), nullable=False),
        sa.Column("saga_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=30), nullable=False),
        sa.Column("program_code", sa.String(length=20), nullable=False),
        sa.Column("partner_ref", sa.String(length=120), nullable=True),
        sa.Column("confirmed_at", hub.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["program_code"], ["programs.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("saga_id", "step", name="uq_partner_outcomes_step"),
    )
    for saga, step, program, ref, table, where, payer in BACKFILL:
        op.execute(
            f"INSERT INTO partner_outcomes (saga, saga_id, step, program_code, partner_ref, "
            f"confirmed_at) SELECT '{saga}', id, {step}, {program}, {ref}, updated_at "
            f"FROM {table} WHERE ({where}) AND {payer} IN {CONNECTED}"
        )


def downgrade() -> None:
    op.drop_table("partner_outcomes")
