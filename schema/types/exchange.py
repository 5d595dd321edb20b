"""ExchangeRate, Quote, Conversion."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from hub import models
from hub.exchange.saga import points_moved
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import ConversionStatus
from schema.errors import UserError, failure_shown
from schema.formatting import plain
from schema.types.members import Member
from schema.types.merchants import Program, program_now

# A rate, a quote and a conversion each move points from one program to another: their
# from, to and route are these fields, declared on each type with these resolvers.


# Not coroutines: kept programs answer at once (program_now).


def _from(root: strawberry.Parent[ExchangeRate | Quote | Conversion], info: Info) -> Program:
    return program_now(info, root.row.from_code)


def _to(root: strawberry.Parent[ExchangeRate | Quote | Conversion], info: Info) -> Program:
    return program_now(info, root.row.to_code)


def _route(root: strawberry.Parent[Quote | Conversion], info: Info) -> list[Program]:
    return [program_now(info, code) for code in root.row.route]


async def _member(root: strawberry.Parent[Conversion], info: Info) -> Member:
    return await Member.of(info, root.row.member_id)


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
    from_: Program = strawberry.field(name="from", resolver=_from)
    to: Program = strawberry.field(resolver=_to)

    @classmethod
    def from_row(cls, row: models.ExchangeRate) -> ExchangeRate:
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(row.id),
            rate=plain(row.rate),
            bonus_percent=plain(row.bonus_percent),
            row=row,
        )


@strawberry.type(description="A conversion priced now; its rate holds until expiresAt.")
class Quote:
    id: strawberry.ID
    points: int = strawberry.field(description="Source points to debit.")
    receive: int = strawberry.field(
        description="Destination points to credit, rounded down, bonus included."
    )
    expires_at: dt.datetime
    row: strawberry.Private[models.Quote]
    from_: Program = strawberry.field(name="from", resolver=_from)
    to: Program = strawberry.field(resolver=_to)
    route: list[Program] = strawberry.field(
        description="[from, to] or [from, platform, to].", resolver=_route
    )

    @classmethod
    def from_row(cls, row: models.Quote) -> Quote:
        return from_attributes(cls, row, id=strawberry.ID(row.id), row=row)


@strawberry.type(description="A member's move of points from one program to another.")
class Conversion:
    id: strawberry.ID
    points_debited: int = strawberry.field(
        description="Points taken from the member; 0 when it FAILED or was REVERSED (nothing "
        "moved in the end)."
    )
    points_credited: int = strawberry.field(
        description="Points given in the destination program once COMPLETED (while PENDING, "
        "the points it is to credit: not the member's until COMPLETED); 0 when it FAILED, "
        "was REVERSED, or its debit is being returned."
    )
    status: ConversionStatus  # type: ignore[valid-type]
    created_at: dt.datetime
    row: strawberry.Private[models.Conversion]
    member: Member = strawberry.field(resolver=_member)  # declared here: before from, as printed
    from_: Program = strawberry.field(name="from", resolver=_from)
    to: Program = strawberry.field(resolver=_to)
    route: list[Program] = strawberry.field(resolver=_route)

    @classmethod
    def from_row(cls, row: models.Conversion) -> Conversion:
        debited, credited = points_moved(row)
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(row.id),
            points_debited=debited,
            points_credited=credited,
            row=row,
        )

    @strawberry.field(
        description="Why it FAILED, or was or is being REVERSED (PENDING while its points "
        "are given back): the userError its request answered, or would have answered, with. "
        "Null otherwise."
    )
    def failure(self, info: Info) -> UserError | None:
        return failure_shown(self.row, info.context.principal)
