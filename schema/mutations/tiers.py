"""setTiers and setMemberCredit."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from hub import credit
from hub.enums import CreditLevel as DomainCreditLevel
from hub.permissions import Action
from hub.tiers import ladder
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import CreditLevel
from schema.errors import ARGUMENTS, UserError
from schema.types.members import Member
from schema.types.merchants import Program


@strawberry.input(description="One tier of setTiers; tiers are given lowest first.")
class TierInput:
    code: strawberry.ID
    name: str
    min_spend: Decimal = strawberry.field(
        description="Money spent at the program in the trailing 12 months."
    )
    min_orders: int = strawberry.field(
        default=0, description="Purchases in the trailing 12 months."
    )
    accrual_multiplier: Decimal = strawberry.field(
        default=Decimal("1"), description="At least 1, at most 20."
    )
    redemption_discount_percent: Decimal = strawberry.field(
        default=Decimal("0"), description="Off mall prices paid in this program, 0-99."
    )
    benefits: list[str] = strawberry.field(
        default_factory=list, description="Shown to the member: 'Free parking'."
    )

    def to_domain(self) -> ladder.TierSpec:
        return from_attributes(
            ladder.TierSpec, self, code=str(self.code), benefits=list(self.benefits)
        )


@strawberry.type
class SetTiersPayload:
    program: Program | None
    user_errors: list[UserError]


@strawberry.type
class SetMemberCreditPayload:
    member: Member | None
    user_errors: list[UserError]


@strawberry.type
class TierMutations:
    @strawberry.mutation(
        description="MERCHANT (own program) or ADMIN: replace the program's tiers (lowest "
        "first; an empty list removes them). Members move up at their next qualifying "
        "accrual and at the nightly review, down only at the review."
    )
    async def set_tiers(
        self, info: Info, program: strawberry.ID, tiers: list[TierInput]
    ) -> SetTiersPayload:
        principal = info.context.require(Action.SET_TIERS)
        specs = [t.to_domain() for t in tiers]
        row, errors = await info.context.write(
            lambda s: ladder.set_tiers(s, principal, str(program), specs), under=ARGUMENTS
        )
        if row is not None:
            info.context.runtime.caches.recheck()  # in effect here from the next request on
        return SetTiersPayload(program=Program.from_row(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        description="ADMIN (fed by the external credit system): a member's credit level, "
        "seen by the member and ADMIN only."
    )
    async def set_member_credit(
        self,
        info: Info,
        member_id: strawberry.ID,
        level: CreditLevel,  # type: ignore[valid-type]
    ) -> SetMemberCreditPayload:
        info.context.require(Action.SET_MEMBER_CREDIT)
        value = DomainCreditLevel(level)
        row, errors = await info.context.write(
            lambda s: credit.set_member_credit(s, str(member_id), value), under=ARGUMENTS
        )
        return SetMemberCreditPayload(
            member=Member.from_row(row) if row else None, user_errors=errors
        )
