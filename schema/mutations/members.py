"""enrollMember, accruePoints, setPromotion."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from hub import accrual, green, members, promotions
from hub.enums import CreditLevel as DomainCreditLevel
from hub.permissions import Action, sees_as_the_member
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import CreditLevel
from schema.errors import UserError, attempt
from schema.types.members import LedgerEntry, Member


@strawberry.input
class EnrollMemberInput:
    program: strawberry.ID
    external_ref: str = strawberry.field(description="The membership number at this merchant.")
    display_name: str
    phone: str | None = strawberry.UNSET
    member_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Link to an existing hub member instead of creating one: needs that "
        "member's session (X-Member-Token) or ADMIN; a connected program checks externalRef "
        "with the partner first.",
    )
    birth_date: dt.date | None = strawberry.field(
        default=strawberry.UNSET, description="Optional; seen by the member and ADMIN only."
    )


@strawberry.type
class EnrollMemberPayload:
    member: Member | None
    user_errors: list[UserError]


@strawberry.input(description="A line of a purchase: lines tagged green earn GREEN points.")
class PurchaseLineInput:
    sku: str
    amount: Decimal
    tags: list[str] | None = strawberry.field(default_factory=list)

    def to_domain(self) -> green.PurchaseLine:
        return green.PurchaseLine(sku=self.sku, amount=self.amount, tags=list(self.tags or []))


@strawberry.input
class AccruePointsInput:
    member_id: strawberry.ID
    program: strawberry.ID
    order_ref: str = strawberry.field(description="Points are earned only for a real purchase.")
    amount: Decimal = strawberry.field(description="Money spent, > 0.")
    occurred_at: dt.datetime | None = strawberry.UNSET
    idempotency_key: str
    lines: list[PurchaseLineInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Optional; their amounts sum to amount."
    )


@strawberry.type
class AccruePointsPayload:
    entry: LedgerEntry | None
    points: int | None
    green_points: int | None = strawberry.field(
        description="Earned in the merchant's GREEN program on green-tagged lines."
    )
    user_errors: list[UserError]


@strawberry.input
class PromotionInput:
    program: strawberry.ID
    accrual_multiplier: Decimal = Decimal("1")
    redemption_discount_percent: Decimal = Decimal("0")
    starts_at: dt.datetime
    ends_at: dt.datetime
    label: str
    tiers: list[strawberry.ID] | None = strawberry.field(
        default_factory=list,
        description="Only members in one of these tiers of the program; empty: any tier.",
    )
    credit_levels: list[CreditLevel] | None = strawberry.field(  # type: ignore[valid-type]
        default_factory=list,
        description="Only members with one of these credit levels; empty: any.",
    )
    min_age: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Only members at least this old on the day (a seniors' multiplier: 60).",
    )
    birthday_month: bool | None = strawberry.field(
        default=False, description="Only in the member's birthday month."
    )
    tags: list[str] | None = strawberry.field(
        default_factory=list,
        description="Accrual on purchase lines with one of these tags only.",
    )


@strawberry.type
class SetPromotionPayload:
    ok: bool
    user_errors: list[UserError]


def _opt(value: object) -> str | None:
    return str(value) if value else None


@strawberry.type
class MemberMutations:
    @strawberry.mutation(description="MERCHANT (own program) or ADMIN: a member's account.")
    async def enroll_member(self, info: Info, input: EnrollMemberInput) -> EnrollMemberPayload:
        principal = info.context.require(Action.ENROLL_MEMBER)
        data = members.Enrollment(
            program=str(input.program),
            external_ref=input.external_ref,
            display_name=input.display_name,
            phone=input.phone or None,
            member_id=_opt(input.member_id),
            birth_date=input.birth_date or None,
        )
        runtime = info.context.runtime
        # A partner's refusal of the number may carry its own words, which may name the
        # member: ADMIN reads them, and the member linked with its own session; a merchant
        # does not (outside attack helper-80).
        words = sees_as_the_member(principal, data.member_id or "")
        row, errors = await attempt(
            members.enroll_confirmed(runtime.db, runtime.connectors, principal, data), words=words
        )
        return EnrollMemberPayload(member=Member.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(description="MERCHANT (own program) or ADMIN: points for a purchase.")
    async def accrue_points(self, info: Info, input: AccruePointsInput) -> AccruePointsPayload:
        principal = info.context.require(Action.ACCRUE_POINTS)
        settings = info.context.settings
        data = accrual.Purchase(
            member_id=str(input.member_id),
            program=str(input.program),
            order_ref=input.order_ref,
            amount=input.amount,
            occurred_at=input.occurred_at or None,
            idempotency_key=input.idempotency_key,
            lines=(
                [line.to_domain() for line in input.lines]
                if isinstance(input.lines, list)
                else None
            ),
        )

        program = await info.context.loaders.program.load(data.program)
        loyalty = await info.context.runtime.caches.loyalty()

        async def work(session: AsyncSession) -> tuple[accrual.Accrued, LedgerEntry]:
            accrued = await accrual.accrue(session, principal, settings, data, program, loyalty)
            if accrued.made is not None:  # made now: nothing to read back
                entry, balance_after = accrued.made
                return accrued, LedgerEntry.of(entry, accrued.points, balance_after)
            entry, posting = await members.member_posting(session, accrued.entry_id)
            return accrued, LedgerEntry.of(entry, posting.amount, posting.balance_after or 0)

        done, errors = await info.context.write(work)
        if done is None:
            return AccruePointsPayload(
                entry=None, points=None, green_points=None, user_errors=errors
            )
        accrued, node = done
        return AccruePointsPayload(
            entry=node, points=accrued.points, green_points=accrued.green_points, user_errors=[]
        )

    @strawberry.mutation(
        description="MERCHANT (own program) or ADMIN: an accrual multiplier or a redemption "
        "discount for a period."
    )
    async def set_promotion(self, info: Info, input: PromotionInput) -> SetPromotionPayload:
        principal = info.context.require(Action.SET_PROMOTION)
        data = from_attributes(
            promotions.NewPromotion,
            input,
            program=str(input.program),
            tiers=[str(t) for t in input.tiers or []],
            credit_levels=[DomainCreditLevel(c) for c in input.credit_levels or []],
            min_age=input.min_age if isinstance(input.min_age, int) else None,
            birthday_month=bool(input.birthday_month),
            tags=list(input.tags or []),
        )
        row, errors = await info.context.write(
            lambda s: promotions.set_promotion(s, principal, data)
        )
        if row is not None:
            info.context.runtime.caches.recheck()  # in effect here from the next request on
        return SetPromotionPayload(ok=row is not None, user_errors=errors)
