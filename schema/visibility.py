"""Member lookups filtered by what the caller may see: one rule (hub.members.visible_members)
for member(id:), memberByRef, _entities, and every object that names a member."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import members
from hub.enums import Role
from schema.selections import paths_to

if TYPE_CHECKING:
    from schema.context import Info
    from schema.types.members import Member


async def visible_member(info: Info, member_id: str) -> Member | None:
    """member(id:): the member with its accounts in one statement (the member view, which
    its accounts and balances then use), under the rule of hub.members.sees_member."""
    from schema.types.members import Member

    principal = info.context.principal
    own: list[str] = []
    if principal.role == Role.MERCHANT and principal.merchant_id is not None:
        programs = await info.context.loaders.programs_of_merchant.load(principal.merchant_id)
        own = [p.code for p in programs or []]
        if not own:
            return None
    elif not members.sees_member(principal, member_id, (), ()):
        return None  # decided by the role alone: nothing to read
    # Its lots only when a field below asks which expire (a member may hold thousands).
    loaders = info.context.loaders
    loader = loaders.member_view if paths_to(info, "expiring") else loaders.member_balances
    view = await loader.load(member_id)
    if view is None or not members.sees_member(principal, member_id, view.programs, own):
        return None
    return Member.from_row(view)


async def loaded_visible_member(info: Info, member_id: str) -> Member | None:
    """The member if it exists and the caller may see it, else None: one query for every
    member the request asks for at once (`_entities` resolves 100 in one statement)."""
    from schema.types.members import Member

    row = await info.context.loaders.visible_member.load(member_id)
    return Member.from_row(row) if row else None
