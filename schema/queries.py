"""The Query root: merchants, programs, members and the rest, each a few lines."""

from __future__ import annotations

import strawberry
from strawberry.printer import print_schema

from hub import auth, members, merchants
from hub.enums import Role
from hub.permissions import Action
from schema.context import Info
from schema.types.members import Member
from schema.types.merchants import ApiKey, Merchant, Program, Viewer
from schema.visibility import visible_member


@strawberry.type(name="_Service")
class Service:
    @strawberry.field(description="The federation SDL: ADMIN's only, in production.")
    def sdl(self, info: Info) -> str:
        if info.context.settings.is_production:
            info.context.require(Action.READ_SDL)
        return print_schema(info.schema)


@strawberry.type
class CoreQueries:
    # Replaces strawberry's own _service (which any key could read) with a guarded one.
    @strawberry.field(name="_service")
    def service_(self) -> Service:
        return Service()

    @strawberry.field(description="Who is calling.")
    def viewer(self, info: Info) -> Viewer:
        return Viewer(role=Role(info.context.principal.role))

    @strawberry.field
    async def merchants(self, info: Info) -> list[Merchant]:
        rows = await info.context.read(merchants.list_merchants)
        return [Merchant.from_row(r) for r in rows]

    @strawberry.field
    async def merchant(self, info: Info, id: strawberry.ID) -> Merchant | None:
        return await Merchant.resolve_reference(info, id)  # the lookup _entities makes

    @strawberry.field
    async def programs(self, info: Info) -> list[Program]:
        rows = await info.context.read(merchants.list_programs)
        return [Program.from_row(r) for r in rows]

    @strawberry.field
    async def program(self, info: Info, code: strawberry.ID) -> Program | None:
        return await Program.resolve_reference(info, code)  # the lookup _entities makes

    @strawberry.field(description="null when no such member is visible to the caller.")
    async def member(self, info: Info, id: strawberry.ID) -> Member | None:
        info.context.require(Action.READ_MEMBERS)
        return await visible_member(info, str(id))

    @strawberry.field(description="A member by membership number in a program.")
    async def member_by_ref(
        self, info: Info, program: strawberry.ID, external_ref: str
    ) -> Member | None:
        principal = info.context.require(Action.READ_MEMBERS)
        row = await info.context.read(
            lambda s: members.member_by_ref(s, str(program), external_ref, principal)
        )
        return await visible_member(info, row.id) if row else None

    @strawberry.field(description="ADMIN: every API key, revoked ones too; never a secret.")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        info.context.require(Action.READ_API_KEYS)
        rows = await info.context.read(auth.list_api_keys)
        return [ApiKey.from_row(r) for r in rows]
