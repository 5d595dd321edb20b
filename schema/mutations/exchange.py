"""setExchangeRate, quoteConversion, convertPoints; exchangeRates and conversion queries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

import strawberry

from hub.db import utcnow
from hub.exchange import conversion as conversions
from hub.exchange import quotes, rates
from hub.permissions import Action
from schema.attributes import from_attributes
from schema.context import Info
from schema.errors import UserError, attempt, failure_shown
from schema.types.exchange import Conversion, ExchangeRate, Quote


@strawberry.input
class ExchangeRateInput:
    from_: strawberry.ID = strawberry.field(name="from")
    to: strawberry.ID
    rate: Decimal
    min_points: int = 1
    step: int = 1
    bonus_percent: Decimal = Decimal("0")
    daily_limit_per_member: int | None = strawberry.UNSET
    effective_from: dt.datetime | None = strawberry.field(
        default=strawberry.UNSET, description="Default: now."
    )
    effective_to: dt.datetime | None = strawberry.UNSET


@strawberry.type
class SetExchangeRatePayload:
    rate: ExchangeRate | None
    user_errors: list[UserError]


@strawberry.input
class QuoteInput:
    member_id: strawberry.ID
    from_: strawberry.ID = strawberry.field(name="from")
    to: strawberry.ID
    points: int


@strawberry.type
class QuotePayload:
    quote: Quote | None
    user_errors: list[UserError]


@strawberry.input
class ConvertPointsInput:
    member_id: strawberry.ID
    from_: strawberry.ID = strawberry.field(name="from")
    to: strawberry.ID
    points: int
    quote_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Honour a quote's rate until it expires."
    )
    idempotency_key: str


@strawberry.type
class ConvertPointsPayload:
    conversion: Conversion | None
    user_errors: list[UserError]


@strawberry.type
class ExchangeMutations:
    @strawberry.mutation(description="ADMIN: a new version of a pair's rate.")
    async def set_exchange_rate(
        self, info: Info, input: ExchangeRateInput
    ) -> SetExchangeRatePayload:
        principal = info.context.require(Action.SET_EXCHANGE_RATE)
        data = from_attributes(
            rates.NewRate,
            input,
            from_code=str(input.from_),
            to_code=str(input.to),
            # 0 is a limit (refused: below minPoints), not the null that means none
            daily_limit_per_member=(
                input.daily_limit_per_member
                if isinstance(input.daily_limit_per_member, int)
                else None
            ),
            effective_from=input.effective_from or None,
            effective_to=input.effective_to or None,
        )
        row, errors = await info.context.write(
            lambda s: rates.set_rate(s, principal, data, held=info.context.settings.rates_held_for)
        )
        info.context.runtime.caches.recheck()
        return SetExchangeRatePayload(
            rate=ExchangeRate.from_row(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(description="The member (or ADMIN): price a conversion, held 60 s.")
    async def quote_conversion(self, info: Info, input: QuoteInput) -> QuotePayload:
        principal = info.context.require(Action.QUOTE_CONVERSION)
        settings = info.context.settings
        row, errors = await info.context.write(
            lambda s: quotes.create_quote(
                s,
                principal,
                settings,
                str(input.member_id),
                str(input.from_),
                str(input.to),
                input.points,
            )
        )
        return QuotePayload(quote=Quote.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="The member (or ADMIN): convert points between programs.")
    async def convert_points(self, info: Info, input: ConvertPointsInput) -> ConvertPointsPayload:
        principal = info.context.require(Action.CONVERT_POINTS)
        runtime = info.context.runtime
        request = conversions.ConvertRequest(
            member_id=str(input.member_id),
            from_code=str(input.from_),
            to_code=str(input.to),
            points=input.points,
            quote_id=str(input.quote_id) if input.quote_id else None,
            idempotency_key=input.idempotency_key,
        )

        converted, errors = await attempt(
            conversions.convert(
                runtime.db, principal, runtime.settings, runtime.connectors, request
            )
        )
        if converted is None:
            return ConvertPointsPayload(conversion=None, user_errors=errors)
        if converted.member is not None:
            info.context.loaders.visible_member.prime(converted.member.id, converted.member)
        row = converted.conversion
        shown = failure_shown(row, principal)
        return ConvertPointsPayload(
            conversion=Conversion.from_row(row), user_errors=[shown] if shown else []
        )


@strawberry.type
class ExchangeQueries:
    @strawberry.field(description="The rates in effect now, one per ordered pair.")
    async def exchange_rates(
        self,
        info: Info,
        from_: Annotated[strawberry.ID | None, strawberry.argument(name="from")] = strawberry.UNSET,
        to: strawberry.ID | None = strawberry.UNSET,
    ) -> list[ExchangeRate]:
        book = await info.context.runtime.caches.rates()
        rows = book.in_effect(utcnow(), str(from_) if from_ else None, str(to) if to else None)
        return [ExchangeRate.from_row(r) for r in rows]

    @strawberry.field(description="null when no such conversion is visible to the caller.")
    async def conversion(self, info: Info, id: strawberry.ID) -> Conversion | None:
        principal = info.context.require(Action.READ_ACTIVITY)
        row = await info.context.read(lambda s: quotes.visible_conversion(s, principal, str(id)))
        return Conversion.from_row(row) if row else None
