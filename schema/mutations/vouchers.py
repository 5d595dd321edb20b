"""useVoucher at a merchant's till, and the voucher query."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from hub import vouchers
from hub.permissions import Action
from schema.context import Info
from schema.errors import ARGUMENTS, UserError
from schema.types.vouchers import Voucher


@strawberry.type
class UseVoucherPayload:
    voucher: Voucher | None
    user_errors: list[UserError]


@strawberry.type
class VoucherMutations:
    @strawberry.mutation(
        description="The voucher's merchant (its till) or ADMIN: use a voucher for one order, "
        "once. The same orderRef again returns the same result; another order, an order "
        "below minSpend, a voucher past validUntil or another merchant's are refused."
    )
    async def use_voucher(
        self, info: Info, code: str, order_ref: str, order_amount: Decimal
    ) -> UseVoucherPayload:
        principal = info.context.require(Action.USE_VOUCHER)
        row, errors = await info.context.write(
            lambda s: vouchers.use(
                s, principal, code, order_ref, order_amount, info.context.settings.tz
            ),
            under=ARGUMENTS,
        )
        return UseVoucherPayload(
            voucher=Voucher.from_row(row, principal, knows_code=True) if row else None,
            user_errors=errors,
        )


@strawberry.type
class VoucherQueries:
    @strawberry.field(description="The voucher's merchant, or ADMIN; null for anyone else.")
    async def voucher(self, info: Info, code: str) -> Voucher | None:
        principal = info.context.require(Action.READ_VOUCHER)
        row = await info.context.read(lambda s: vouchers.visible(s, principal, code))
        return Voucher.from_row(row, principal, knows_code=True) if row else None
