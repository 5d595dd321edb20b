"""Member lookups filtered by what the caller may see: one rule (hub.members.sees_member)
for member(id:), memberByRef, _entities, and every object that names a member."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import members
from hub.enums import Role

if TYPE_CHECKING:
    from schema.context import Info
    from schema.types.members import Member


async def visible_member(info: Info, member_id: str) -> Member | None:
    from schema.types.members import Member

    async with info.context.db.read() as session:
        row = await members.visible_member(session, info.context.principal, member_id)
    return Member.from_row(row) if row else None


async def sees_member(info: Info, member_id: str) -> bool:
    """Whether the caller may see this member, through the request's loaders (batched)."""
    principal = info.context.principal
    held: list[str] = []
    own: list[str] = []
    if principal.role == Role.MERCHANT and principal.merchant_id is not None:
        programs = await info.context.loaders.programs_of_merchant.load(principal.merchant_id)
        own = [p.code for p in programs or []]
        accounts = await info.context.loaders.accounts_of_member.load(member_id) or []
        held = [a.program_code for a in accounts]
    return members.sees_member(principal, member_id, held, own)


async def loaded_visible_member(info: Info, member_id: str) -> Member | None:
    """The member if it exists and the caller may see it, else None (batched)."""
    from schema.types.members import Member

    if not await sees_member(info, member_id):
        return None
    return await Member.load(info, member_id)
