"""Reward, Slot, Redemption and the catalog connection."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from hub import models
from hub import tags as tags_
from hub.mall import catalog
from hub.mall.pricing import PriceBook
from hub.mall.saga import compensation_applied, status_of
from hub.models.mall import RewardLike
from hub.permissions import sees_money_of, sees_redemption_money
from schema import selections
from schema.attributes import from_attributes
from schema.context import Info
from schema.enums import CancellationReason, RedemptionStatus, RewardKind
from schema.errors import UserError, failure_shown, forbidden
from schema.formatting import money
from schema.pagination import Connection, checked_date
from schema.types.members import Member
from schema.types.merchants import (
    Merchant,
    Program,
    load_merchant,
    load_program,
    load_programs,
    program_now,
)
from schema.types.vouchers import Voucher, VoucherTerms


@strawberry.type(description="An entry window, night or flight of a reward.")
class Slot:
    id: strawberry.ID
    starts_at: dt.datetime
    ends_at: dt.datetime
    remaining: int | None = strawberry.field(description="null: no limit.")

    @classmethod
    def from_row(cls, row: models.Slot) -> Slot:
        return from_attributes(cls, row, id=strawberry.ID(row.id))


@strawberry.federation.type(keys=["id"], description="A merchant's reward in the universal mall.")
class Reward:
    id: strawberry.ID
    kind: RewardKind  # type: ignore[valid-type]
    title: str
    description: str | None
    stock: int | None = strawberry.field(description="null: unlimited.")
    # Made with the reward, not resolved on demand: nearly every page asks them, and a
    # resolver costs strawberry more per reward than the price itself.
    price: int = strawberry.field(description="In the merchant's own program, promotions applied.")
    merchant: Merchant
    row: strawberry.Private[RewardLike]
    # What the other fields resolve from at once, with no await per reward: the request's
    # prices (rates, promotions, the member's profile). None only when no field that reads
    # it is asked (as_asked).
    book: strawberry.Private[PriceBook | None]

    @classmethod
    def priced(cls, row: RewardLike, book: PriceBook, merchant: Merchant) -> Reward:
        """The reward as a request's book prices it."""
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(row.id),
            price=book.price(row),
            merchant=merchant,
            row=row,
            book=book,
        )

    @classmethod
    async def of(cls, info: Info, row: RewardLike) -> Reward:
        """The reward as this request shows it: priced by the request's book."""
        merchant = await load_merchant(info, row.merchant_id)
        return cls.priced(row, await info.context.loaders.price_book(row.merchant_id), merchant)

    @classmethod
    async def as_asked(cls, info: Info, row: RewardLike) -> Reward:
        """`of`, for a field of type Reward (`info` is its own): unpriced when the field
        asks nothing a price book gives (a redemption's `reward { id title }`), so that
        the request reads no member profile for prices it does not show."""
        if _asks_prices(info):
            return await cls.of(info, row)
        merchant = await load_merchant(info, row.merchant_id)
        # `price` is not asked: the list price stands in for it, never shown.
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(row.id),
            price=row.price,
            merchant=merchant,
            row=row,
            book=None,
        )

    @property
    def _book(self) -> PriceBook:
        assert self.book is not None, "a priced field asked of a reward made unpriced"
        return self.book

    @strawberry.field(description="Before promotions.")
    def list_price(self) -> int:
        return self.row.price

    @strawberry.field(
        description="What the paying merchant owes the reward's merchant per unit: for ADMIN, "
        "FINANCE and the reward's own merchant (a FORBIDDEN error on this field for anyone "
        "else; a list asking it for others' rewards is refused whole: ask it with "
        "filter: {merchant: ...})."
    )
    def settlement_price(self, info: Info) -> Decimal:
        # The contract keeps it non-null: a caller that may not see it gets FORBIDDEN on
        # this field (as with a member it may not see), never the money.
        if not sees_money_of(info.context.principal, self.row.merchant_id):
            raise forbidden(
                "A reward's settlement price is for ADMIN, FINANCE and its own merchant."
            )
        return money(self._book.settlement_unit(self.row))

    @strawberry.field(description="Whether redeeming it needs a slotId from slots.")
    def requires_slot(self) -> bool:
        return self.row.has_slots

    @strawberry.field(
        description="Active, in stock and, when booked by slot, with a place in a slot "
        "not yet started."
    )
    async def available(self, info: Info) -> bool:
        if not (self.row.active and (self.row.stock is None or self.row.stock > 0)):
            return False
        if not self.row.has_slots or self.row.source != "HOSTED":
            # A partner's slots are its own, read from it when asked (Reward.slots).
            return True
        return bool(await info.context.loaders.bookable.load(self.row.id))

    @strawberry.field(
        description="Upcoming slots, or those starting on `date` (settlement time zone)."
    )
    async def slots(self, info: Info, date: dt.date | None = strawberry.UNSET) -> list[Slot]:
        day = checked_date(date or None, "date")
        if not self.row.has_slots:
            return []
        if self.row.source == "PARTNER":
            await info.context.runtime.catalog.slots(self.row, day)
        tz = info.context.settings.tz
        rows = await info.context.read(lambda s: catalog.slots_of(s, self.row.id, day, tz))
        return [Slot.from_row(r) for r in rows]

    @strawberry.field(description="Cost in another program; null if it cannot pay.")
    def price_in(self, program: strawberry.ID) -> int | None:
        return self._book.price_in(self.row, str(program))

    @strawberry.field
    async def payable_with(self, info: Info) -> list[Program]:
        codes = self._book.payable_with(self.row)
        return await load_programs(info, codes)

    @strawberry.field(
        description="Before it, only the priority tiers and credit levels may redeem; null: "
        "open to every member."
    )
    def priority_until(self) -> dt.datetime | None:
        return self.row.priority_until

    @strawberry.field(
        description="When the viewing member may redeem it: priorityUntil unless their tier "
        "or credit level opens it early; null when they may now (without a member session: "
        "when it opens to every member)."
    )
    def opens_at(self) -> dt.datetime | None:
        return self._book.opens_at(self.row)

    @strawberry.field(
        description="Labels; green marks an eco reward (payable with GREEN programs)."
    )
    def tags(self) -> list[str]:
        return tags_.decode(self.row.tags)

    @strawberry.field(
        description="For kind VOUCHER: what the code is worth at the merchant; the code comes "
        "with the confirmed redemption (Redemption.voucher)."
    )
    def voucher(self) -> VoucherTerms | None:
        return VoucherTerms.of(self.row)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Reward | None:
        row = await info.context.loaders.reward.load(str(id))
        return await cls.of(info, row) if row else None


# The fields of Reward that read no price book (any other field, and a fragment, does).
_UNPRICED = frozenset(
    {"__typename", "id", "kind", "title", "description", "stock", "merchant", "listPrice"}
    | {"requiresSlot", "available", "slots", "priorityUntil", "tags", "voucher"}
)


def _asks_prices(info: Info) -> bool:
    """Whether the Reward field being resolved asks anything its price book gives."""
    return any(name not in _UNPRICED for name in selections.asked(info))


@strawberry.type
class RewardConnection(Connection[Reward]):
    unavailable_merchant_ids: strawberry.Private[list[str]]

    @strawberry.field(description="Partners that did not answer in time.")
    async def unavailable_merchants(self, info: Info) -> list[Merchant]:
        return [await load_merchant(info, m) for m in self.unavailable_merchant_ids]


@strawberry.type(description="A member's redemption of a reward.")
class Redemption:
    id: strawberry.ID
    quantity: int
    points: int
    status: RedemptionStatus  # type: ignore[valid-type]
    fulfillment_ref: str | None = strawberry.field(
        description="The partner's booking or voucher code."
    )
    refunded_points: int
    compensation_points: int = strawberry.field(
        description="The points credited to the member for the merchant's cancellation: "
        "none until the credit is applied."
    )
    created_at: dt.datetime
    cancelled_at: dt.datetime | None
    cancellation_reason: CancellationReason | None = strawberry.field(  # type: ignore[valid-type]
        description="Why it was cancelled, or is being cancelled: a PENDING redemption with "
        "a reason waits for its merchant to confirm the cancellation (the hub asks again "
        "until it does). Null when no cancellation was asked, or the merchant refused it."
    )
    row: strawberry.Private[models.Redemption]

    @classmethod
    def from_row(cls, row: models.Redemption) -> Redemption:
        return from_attributes(
            cls,
            row,
            id=strawberry.ID(row.id),
            status=status_of(row),
            compensation_points=compensation_applied(row),
            cancellation_reason=row.cancel_reason,
            row=row,
        )

    @strawberry.field
    async def member(self, info: Info) -> Member:
        return await Member.of(info, self.row.member_id)

    @strawberry.field(
        description="Why it FAILED or is failing (PENDING while its points are given back), "
        "or why its merchant refused its latest cancellation (it is CONFIRMED again): the "
        "userError its request answered, or would have answered, with. Null otherwise."
    )
    def failure(self, info: Info) -> UserError | None:
        return failure_shown(self.row, info.context.principal)

    @strawberry.field
    async def reward(self, info: Info) -> Reward:
        row = await info.context.loaders.reward.load(self.row.reward_id)
        assert row is not None
        return await Reward.as_asked(info, row)

    @strawberry.field
    async def slot(self, info: Info) -> Slot | None:
        if not self.row.slot_id:
            return None
        row = await info.context.loaders.slot.load(self.row.slot_id)
        return Slot.from_row(row) if row else None

    @strawberry.field
    def paid_with(self, info: Info) -> Program:
        return program_now(info, self.row.paid_with)

    @strawberry.field(
        description="The total the paying merchant owes the reward's merchant: for ADMIN, "
        "FINANCE and those two merchants (a FORBIDDEN error for anyone else)."
    )
    async def settlement_price(self, info: Info) -> Decimal:
        principal = info.context.principal
        payer = await load_program(info, self.row.paid_with)
        if not sees_redemption_money(principal, self.row.merchant_id, payer.merchant_id):
            raise forbidden(
                "A redemption's settlement price is for ADMIN, FINANCE, the reward's merchant "
                "and the paying merchant."
            )
        return money(self.row.settlement_price)

    @strawberry.field(
        description="Issued on confirmation for VOUCHER rewards with terms; its code in full "
        "for the member and ADMIN only."
    )
    async def voucher(self, info: Info) -> Voucher | None:
        row = await info.context.loaders.voucher_of_redemption.load(self.row.id)
        return Voucher.from_row(row, info.context.principal) if row else None

    @strawberry.field(description="Whether the viewer may cancel it now (MEMBER_REQUEST).")
    async def cancellable(self, info: Info) -> bool:
        from hub.db import utcnow

        if self.row.status != "CONFIRMED" or self.row.cancel_step:
            return False
        voucher = await info.context.loaders.voucher_of_redemption.load(self.row.id)
        if voucher is not None and voucher.used_at is not None:
            return False  # spent at the till
        if not self.row.slot_id:
            return True
        slot = await info.context.loaders.slot.load(self.row.slot_id)
        return slot is None or slot.starts_at > utcnow()
