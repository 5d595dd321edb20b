"""Merchant, Program, the viewer and API keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar, cast

import strawberry

from hub import models
from hub.enums import Role as DomainRole
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import ConnectorKind, MerchantCategory, MerchantStatus, ProgramKind, Role
from schema.formatting import plain

if TYPE_CHECKING:
    from schema.types.members import Member
    from schema.types.tiers import Tier


T = TypeVar("T")


@strawberry.federation.type(keys=["id"], description="A partner merchant; id is its slug.")
class Merchant:
    id: strawberry.ID
    name: str
    category: MerchantCategory  # type: ignore[valid-type]
    status: MerchantStatus  # type: ignore[valid-type]
    compensation_percent: Decimal = strawberry.field(
        description="Extra points, in percent of those paid, on a merchant-side cancellation."
    )

    @classmethod
    def from_row(cls, row: models.Merchant) -> Merchant:
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(row.id),
            compensation_percent=plain(row.compensation_percent),
        )

    @strawberry.field
    async def program(self, info: Info) -> Program:
        row = await info.context.loaders.program_of_merchant.load(str(self.id))
        assert row is not None, "every merchant has a program"
        return Program.from_row(row)

    @strawberry.field(
        description="Every program it runs, the primary one first (a GREEN one beside it, say)."
    )
    async def programs(self, info: Info) -> list[Program]:
        rows = await info.context.loaders.programs_of_merchant.load(str(self.id))
        return [Program.from_row(row) for row in rows or []]

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Merchant | None:
        row = await info.context.loaders.merchant.load(str(id))
        return cls.from_row(row) if row else None


class _KeepsMerchant(Protocol):
    merchant_id: str


class _KeepsProgram(Protocol):
    program_code: str


async def merchant_field(root: strawberry.Parent[_KeepsMerchant], info: Info) -> Merchant:
    """The `merchant` of a type that keeps its merchant's id (merchant_id)."""
    return await load_merchant(info, root.merchant_id)


def program_field(root: strawberry.Parent[_KeepsProgram], info: Info) -> Program:
    """The `program` of a type that keeps its program's code (program_code)."""
    return program_now(info, root.program_code)


@strawberry.federation.type(keys=["code"], description="A merchant's loyalty program.")
class Program:
    code: strawberry.ID
    name: str
    unit_name: str
    connector: ConnectorKind  # type: ignore[valid-type]
    point_value: Decimal = strawberry.field(description="Money one point is worth in settlement.")
    accrual_rate: Decimal = strawberry.field(description="Points per unit of money spent.")
    expiry_months: int | None = strawberry.field(description="null: points never expire.")
    kind: ProgramKind = strawberry.field(  # type: ignore[valid-type]
        description="GREEN: earned on green-tagged purchase lines, spent on green-tagged "
        "rewards only."
    )
    merchant_id: strawberry.Private[str]
    merchant: Merchant = strawberry.field(resolver=merchant_field)

    @classmethod
    def from_row(cls, row: models.Program) -> Program:
        return from_attributes(
            cls,
            row,
            code=strawberry.ID(row.code),
            point_value=plain(row.point_value),
            accrual_rate=plain(row.accrual_rate),
        )

    @strawberry.field(description="Lowest first; empty: the program has no tiers.")
    async def tiers(
        self, info: Info
    ) -> list[Annotated[Tier, strawberry.lazy("schema.types.tiers")]]:
        from schema.types.tiers import Tier

        rows = await info.context.loaders.ladder.load(str(self.code)) or []
        return [Tier.from_row(row) for row in rows]

    @classmethod
    async def resolve_reference(cls, info: Info, code: strawberry.ID) -> Program | None:
        row = await info.context.loaders.program.load(str(code))
        return cls.from_row(row) if row else None


def answered_later(awaitable: Awaitable[T]) -> T:
    """What a resolver that is not a coroutine returns when it cannot answer at once: the
    awaitable, which graphql-core awaits as it awaits an async resolver's result, typed as
    what it gives."""
    later: Any = awaitable
    return cast(T, later)


def program_now(info: Info, code: str) -> Program:
    """The program `code`, for a resolver that is not a coroutine: at once when the process
    keeps the programs (hub.caches; the usual case), else the load's coroutine, which
    graphql-core awaits as it awaits an async resolver's (typed as what it gives).

    A field that answers at once costs graphql-core no task, and a list or an object whose
    fields all answer at once costs none either: a member's accounts with their programs
    and balances made 13 tasks a request when every such field was a coroutine."""
    kept = info.context.runtime.caches.program_now(code)
    if kept is not None:
        return Program.from_row(kept)
    return answered_later(load_program(info, code))


async def load_program(info: Info, code: str) -> Program:
    row = await info.context.loaders.program.load(code)
    assert row is not None, f"program {code} exists"
    return Program.from_row(row)


async def load_programs(info: Info, codes: list[str]) -> list[Program]:
    return [await load_program(info, code) for code in codes]


async def load_merchant(info: Info, merchant_id: str) -> Merchant:
    row = await info.context.loaders.merchant.load(merchant_id)
    assert row is not None, f"merchant {merchant_id} exists"
    return Merchant.from_row(row)


@strawberry.type(description="Who is calling.")
class Viewer:
    role: Role  # type: ignore[valid-type]

    @strawberry.field
    async def merchant(self, info: Info) -> Merchant | None:
        merchant_id = info.context.principal.merchant_id
        return await load_merchant(info, merchant_id) if merchant_id else None

    @strawberry.field
    async def member(
        self, info: Info
    ) -> Annotated[Member, strawberry.lazy("schema.types.members")] | None:
        from schema.types.members import Member

        member_id = info.context.principal.member_id
        return await Member.load(info, member_id) if member_id else None


def viewer_of(role: DomainRole) -> Viewer:
    return Viewer(role=role)


@strawberry.type(description="An API key as ADMIN sees it; its secret is never shown again.")
class ApiKey:
    id: strawberry.ID
    role: Role  # type: ignore[valid-type]
    label: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None = strawberry.field(
        description="Kept to within a minute: written at most once a minute per key."
    )
    revoked_at: dt.datetime | None
    merchant_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: models.ApiKey) -> ApiKey:
        return from_attributes(cls, row, id=strawberry.ID(row.id))

    @strawberry.field
    async def merchant(self, info: Info) -> Merchant | None:
        return await load_merchant(info, self.merchant_id) if self.merchant_id else None
