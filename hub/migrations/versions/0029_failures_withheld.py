"""failure.withheld for the failures recorded before it existed

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 05:40:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# As hub.sagas said them at this revision.
WITHHELD = "The partner's reason is shown to the member"
BEING_RETURNED = "The points are being returned."
RETURNED = "The points were returned."


def withheld(message: str) -> str:
    """The telling of an old failure for those who may not see the member: the partner's
    words, which cannot be told from the hub's in a failure recorded then, left out
    whole; what the hub added about the points kept."""
    for suffix in (BEING_RETURNED, RETURNED):
        if message.endswith(suffix) and message != suffix:
            return f"{WITHHELD}. {suffix}"
    return f"{WITHHELD}."


def upgrade() -> None:
    """A conversion's or redemption's failure has kept, since the fix of outside attack
    helper-77, a telling without the partner's words (which may name the member) for
    merchants and webhooks; one recorded before kept the words alone, and merchants read
    them. Each such failure gets its telling."""
    bind = op.get_bind()
    for name in ("conversions", "redemptions"):
        rows = sa.table(name, sa.column("id", sa.String()), sa.column("failure", sa.Text()))
        last = ""
        while True:
            found = bind.execute(
                sa.select(rows.c.id, rows.c.failure)
                .where(rows.c.failure.is_not(None), rows.c.id > last)
                .order_by(rows.c.id)
                .limit(BATCH)
            ).all()
            if not found:
                break
            last = found[-1].id
            told = []
            for row in found:
                failure = json.loads(row.failure)
                if isinstance(failure, dict) and "withheld" not in failure:
                    failure["withheld"] = withheld(str(failure.get("message", "")))
                    told.append(
                        {
                            "rid": row.id,
                            "failure": json.dumps(
                                failure, separators=(",", ":"), ensure_ascii=False
                            ),
                        }
                    )
            if told:
                bind.execute(
                    rows.update()
                    .where(rows.c.id == sa.bindparam("rid"))
                    .values(failure=sa.bindparam("failure")),
                    told,
                )


def downgrade() -> None:
    """The tellings stay: a failure with one reads the same to code before 0029."""
