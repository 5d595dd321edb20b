"""Member and what a viewer may see of it."""

from __future__ import annotations

import strawberry

from hub import models
from hub.privacy import mask_name
from schema.context import Info


@strawberry.federation.type(keys=["id"], description="A person enrolled in one or more programs.")
class Member:
    id: strawberry.ID
    row: strawberry.Private[models.Member]

    @classmethod
    def from_row(cls, row: models.Member) -> Member:
        return cls(id=strawberry.ID(row.id), row=row)

    @classmethod
    async def load(cls, info: Info, member_id: str) -> Member | None:
        row = await info.context.loaders.member.load(member_id)
        return cls.from_row(row) if row else None

    @strawberry.field(description="Masked unless the viewer is the member or ADMIN.")
    def display_name(self, info: Info) -> str:
        principal = info.context.principal
        if principal.role == "ADMIN" or principal.member_id == self.row.id:
            return self.row.display_name
        return mask_name(self.row.display_name)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Member | None:
        from schema.visibility import visible_member

        return await visible_member(info, str(id))
