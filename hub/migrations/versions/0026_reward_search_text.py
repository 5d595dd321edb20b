"""rewards.search_text: a reward's title and description folded for search

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.folding import searchable

revision: str = "0026"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REWARDS = sa.table(
    "rewards",
    sa.column("id", sa.String()),
    sa.column("title", sa.String()),
    sa.column("description", sa.Text()),
    sa.column("search_text", sa.Text()),
)


def upgrade() -> None:
    """A search compared lower(title) with a term lowered in Python: on SQLite, which
    lowers ASCII alone, "ÉCLAIR" could not be found. The folded text is kept with each
    reward (hub.folding), for every reward there is."""
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("search_text", sa.Text(), nullable=False, server_default="")
        )
    bind = op.get_bind()
    rows = bind.execute(sa.select(REWARDS.c.id, REWARDS.c.title, REWARDS.c.description)).all()
    if rows:
        bind.execute(
            REWARDS.update()
            .where(REWARDS.c.id == sa.bindparam("rid"))
            .values(search_text=sa.bindparam("text")),
            [{"rid": r.id, "text": searchable(r.title, r.description)} for r in rows],
        )


def downgrade() -> None:
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.drop_column("search_text")
