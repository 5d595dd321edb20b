"""Member lookups filtered by what the caller may see: one rule (hub.members.visible_members)
for member(id:), memberByRef, _entities, and every object that names a member."""

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


async def loaded_visible_member(info: Info, member_id: str) -> Member | None:
    """The member if it exists and the caller may see it, else None: one query for every
    member the request asks for at once (`_entities` resolves 100 in one statement)."""
    from schema.types.members import Member

    row = await info.context.loaders.visible_member.load(member_id)
    return Member.from_row(row) if row else None
