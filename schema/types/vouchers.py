"""VoucherTerms (what a VOUCHER reward's code is worth) and Voucher (one code)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from hub import models, vouchers
from hub.auth import Principal
from hub.models.mall import RewardLike
from schema.formatting import money


@strawberry.type(description="What a VOUCHER reward's code is worth at the merchant's till.")
class VoucherTerms:
    face_value: Decimal
    min_spend: Decimal
    valid_days: int

    @classmethod
    def of(cls, reward: RewardLike) -> VoucherTerms | None:
        terms = vouchers.terms_of(reward)
        if terms is None:
            return None
        return cls(
            face_value=money(terms.face_value),
            min_spend=money(terms.min_spend),
            valid_days=terms.valid_days,
        )


@strawberry.input
class VoucherTermsInput:
    face_value: Decimal
    min_spend: Decimal = Decimal("0")
    valid_days: int = 90

    def to_domain(self) -> vouchers.Terms:
        return vouchers.Terms(
            face_value=self.face_value, min_spend=self.min_spend, valid_days=self.valid_days
        )


@strawberry.type(
    description="A voucher's code, used once at its merchant's till (useVoucher). The code is "
    "shown in full to the member and ADMIN; others see its last group only."
)
class Voucher:
    code: str
    face_value: Decimal
    min_spend: Decimal
    valid_until: dt.datetime
    used_at: dt.datetime | None
    order_ref: str | None

    @classmethod
    def from_row(
        cls, row: models.Voucher, principal: Principal, *, knows_code: bool = False
    ) -> Voucher:
        """`knows_code`: the caller gave the code (the till), so it sees it as given."""
        full = knows_code or vouchers.shows_code(principal, row)
        return cls(
            code=row.code if full else vouchers.masked(row.code),
            face_value=money(row.face_value),
            min_spend=money(row.min_spend),
            valid_until=row.valid_until,
            used_at=row.used_at,
            order_ref=row.order_ref,
        )
