"""ExchangeRate, Quote, Conversion."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from hub import models
from hub.exchange.saga import points_moved
from schema.context import Info
from schema.enums import ConversionStatus
from schema.formatting import plain
from schema.types.members import Member
from schema.types.merchants import Program, load_program


async def _programs(info: Info, codes: list[str]) -> list[Program]:
    return [await load_program(info, code) for code in codes]


@strawberry.type(description="One version of the rate of an ordered pair of programs.")
class ExchangeRate:
    id: strawberry.ID
    rate: Decimal = strawberry.field(description="Destination points per source point.")
    min_points: int
    step: int = strawberry.field(description="Source points must be a multiple of step.")
    bonus_percent: Decimal
    daily_limit_per_member: int | None = strawberry.field(description="Source points; null: none.")
    effective_from: dt.datetime
    effective_to: dt.datetime | None
    row: strawberry.Private[models.ExchangeRate]

    @classmethod
    def from_row(cls, row: models.ExchangeRate) -> ExchangeRate:
        return cls(
            id=strawberry.ID(row.id),
            rate=plain(row.rate),
            min_points=row.min_points,
            step=row.step,
            bonus_percent=plain(row.bonus_percent),
            daily_limit_per_member=row.daily_limit_per_member,
            effective_from=row.effective_from,
            effective_to=row.effective_to,
            row=row,
        )

    @strawberry.field(name="from")
    async def from_(self, info: Info) -> Program:
        return await load_program(info, self.row.from_code)

    @strawberry.field
    async def to(self, info: Info) -> Program:
        return await load_program(info, self.row.to_code)


@strawberry.type(description="A conversion priced now; its rate holds until expiresAt.")
class Quote:
    id: strawberry.ID
    points: int = strawberry.field(description="Source points to debit.")
    receive: int = strawberry.field(
        description="Destination points to credit, rounded down, bonus included."
    )
    expires_at: dt.datetime
    row: strawberry.Private[models.Quote]

    @classmethod
    def from_row(cls, row: models.Quote) -> Quote:
        return cls(
            id=strawberry.ID(row.id),
            points=row.points,
            receive=row.receive,
            expires_at=row.expires_at,
            row=row,
        )

    @strawberry.field(name="from")
    async def from_(self, info: Info) -> Program:
        return await load_program(info, self.row.from_code)

    @strawberry.field
    async def to(self, info: Info) -> Program:
        return await load_program(info, self.row.to_code)

    @strawberry.field(description="[from, to] or [from, platform, to].")
    async def route(self, info: Info) -> list[Program]:
        return await _programs(info, self.row.route)


@strawberry.type(description="A member's move of points from one program to another.")
class Conversion:
    id: strawberry.ID
    points_debited: int = strawberry.field(
        description="Points taken from the member; 0 when it FAILED or was REVERSED (nothing "
        "moved in the end)."
    )
    points_credited: int = strawberry.field(
        description="Points given in the destination program; 0 when it FAILED, was REVERSED, "
        "or its debit is being returned."
    )
    status: ConversionStatus  # type: ignore[valid-type]
    created_at: dt.datetime
    row: strawberry.Private[models.Conversion]

    @classmethod
    def from_row(cls, row: models.Conversion) -> Conversion:
        debited, credited = points_moved(row)
        return cls(
            id=strawberry.ID(row.id),
            points_debited=debited,
            points_credited=credited,
            status=row.status,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field
    async def member(self, info: Info) -> Member:
        return await Member.of(info, self.row.member_id)

    @strawberry.field(name="from")
    async def from_(self, info: Info) -> Program:
        return await load_program(info, self.row.from_code)

    @strawberry.field
    async def to(self, info: Info) -> Program:
        return await load_program(info, self.row.to_code)

    @strawberry.field
    async def route(self, info: Info) -> list[Program]:
        return await _programs(info, self.row.route)
