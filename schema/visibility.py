"""Member lookups filtered by what the caller may see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import members

if TYPE_CHECKING:
    from schema.context import Info
    from schema.types.members import Member


async def visible_member(info: Info, member_id: str) -> Member | None:
    from schema.types.members import Member

    async with info.context.db.read() as session:
        row = await members.visible_member(session, info.context.principal, member_id)
    return Member.from_row(row) if row else None
