"""upsertReward, redeemReward, cancelRedemption; the rewards, reward, redemption queries."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

import strawberry

from hub.auth import Principal
from hub.enums import CancellationReason as DomainReason
from hub.enums import CreditLevel as DomainCreditLevel
from hub.enums import MerchantCategory as DomainCategory
from hub.enums import RewardKind as DomainRewardKind
from hub.enums import Role
from hub.mall import catalog, redemption
from hub.mall.pricing import SLOTTED_KINDS
from hub.models import Redemption as RedemptionRow
from hub.permissions import Action, sees_money_of, sees_redemption_money
from schema.context import Info
from schema.enums import CancellationReason, CreditLevel, ErrorCode, MerchantCategory, RewardKind
from schema.errors import UserError, attempt, checked_argument, failure_shown
from schema.pagination import Connection, checked_date, decode_cursor, page_size
from schema.selections import paths_to
from schema.types.mall import Redemption, Reward, RewardConnection
from schema.types.merchants import Merchant, load_merchant
from schema.types.vouchers import VoucherTermsInput


@strawberry.input
class SlotInput:
    ref: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Places in all, those already booked included; null: no limit.",
    )


@strawberry.input
class RewardInput:
    ref: str = strawberry.field(description="The merchant's own id for it; Reward.id is derived.")
    kind: RewardKind  # type: ignore[valid-type]
    title: str
    description: str | None = strawberry.UNSET
    price: int
    settlement_price: Decimal | None = strawberry.UNSET
    stock: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="How many are left to redeem; null: unlimited. Left out of an edit, the "
        "reward keeps what it has left; left out of a new reward, unlimited.",
    )
    active: bool = True
    merchant_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="ADMIN only: whose reward it is; without it, the platform's own.",
    )
    slots: list[SlotInput] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Entry windows, nights or departures, by ref; a slot given again is "
        "updated and keeps its bookings. Required (one not yet started) for an active reward "
        f"of a kind booked by slot: {', '.join(kind.value for kind in SLOTTED_KINDS)}.",
    )
    priority_until: dt.datetime | None = strawberry.field(
        default=strawberry.UNSET,
        description="Before it only members in priorityTiers or priorityCreditLevels may "
        "redeem; others get NOT_ELIGIBLE with the time it opens.",
    )
    priority_tiers: list[strawberry.ID] | None = strawberry.field(
        default_factory=list, description="Tiers of the merchant's own program."
    )
    priority_credit_levels: list[CreditLevel] | None = strawberry.field(  # type: ignore[valid-type]
        default_factory=list
    )
    tags: list[str] | None = strawberry.field(
        default_factory=list,
        description="Labels; green puts it in the green zone: payable with GREEN programs.",
    )
    voucher: VoucherTermsInput | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Required for kind VOUCHER (INVALID_INPUT without), for no other kind: the terms "
            "of the code each confirmed redemption gets."
        ),
    )


@strawberry.type
class UpsertRewardPayload:
    reward: Reward | None
    user_errors: list[UserError]


@strawberry.input
class RewardFilter:
    merchant: strawberry.ID | None = strawberry.UNSET
    category: MerchantCategory | None = strawberry.UNSET  # type: ignore[valid-type]
    kind: RewardKind | None = strawberry.UNSET  # type: ignore[valid-type]
    payable_with: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Only rewards this program can pay for."
    )
    max_price: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="In payableWith's points when given, else own points.",
    )
    search: str | None = strawberry.UNSET
    available_on: dt.date | None = strawberry.UNSET


@strawberry.input
class RedeemRewardInput:
    member_id: strawberry.ID
    reward_id: strawberry.ID
    pay_with: strawberry.ID = strawberry.field(description="A program code.")
    slot_id: strawberry.ID | None = strawberry.UNSET
    quantity: int = strawberry.field(
        default=1,
        description=f"Units of the reward, 1 to {redemption.MAX_QUANTITY}, priced once as a line.",
    )
    idempotency_key: str


@strawberry.type
class RedeemRewardPayload:
    redemption: Redemption | None
    user_errors: list[UserError]


@strawberry.input
class CancelRedemptionInput:
    redemption_id: strawberry.ID
    reason: CancellationReason  # type: ignore[valid-type]
    idempotency_key: str


@strawberry.type
class CancelRedemptionPayload:
    redemption: Redemption | None
    user_errors: list[UserError]


def _given(value: Decimal | None) -> Decimal | None:
    return None if value is None or value is strawberry.UNSET else value


def _str(value: object) -> str | None:
    return str(value) if value else None


PRICE = "settlementPrice"


@dataclass(frozen=True)
class _Prices:
    """The settlement prices a redemption's payload asks for: the redemption's (ADMIN,
    FINANCE and its two merchants may see it) and its reward's (ADMIN, FINANCE and the
    reward's merchant)."""

    line: bool
    listed: bool
    # Asked further down (the member's other redemptions, their rewards): prices of rows
    # the mutation does not know before it runs, so not answered for anyone but ADMIN and
    # FINANCE (outside attack helper-84: the redemption ran, then its answer was an error).
    elsewhere: bool

    @classmethod
    def asked(cls, info: Info) -> _Prices:
        # Below the mutation's field, which a document may repeat under one response key.
        paths = paths_to(info, PRICE)
        line, listed = ("redemption", PRICE), ("redemption", "reward", PRICE)
        return cls(
            line=line in paths, listed=listed in paths, elsewhere=bool(paths - {line, listed})
        )

    def need_checking(self, principal: Principal) -> bool:
        asked = self.line or self.listed or self.elsewhere
        return asked and principal.role not in (Role.ADMIN, Role.FINANCE)

    async def hidden(
        self, info: Info, principal: Principal, reward_merchant: str, paid_with: str
    ) -> list[UserError]:
        """FORBIDDEN, before anything moves, when the caller may not see a price asked for:
        answered after the redemption moved points, that field's error would null the
        redemption and hide that it happened."""
        if self.elsewhere:
            return [
                UserError(
                    field=None,
                    code=ErrorCode.FORBIDDEN,
                    message="This answer may show settlement prices of its redemption and "
                    "its reward only (other redemptions' are for a query, where each is "
                    "shown or refused on its own); nothing was done. Ask again without them.",
                )
            ]
        sees_reward = sees_money_of(principal, reward_merchant)
        payer = await info.context.loaders.program.load(paid_with)
        sees_line = (
            sees_redemption_money(principal, reward_merchant, payer.merchant_id)
            if payer is not None
            else sees_reward
        )
        if not ((self.line and not sees_line) or (self.listed and not sees_reward)):
            return []
        return [
            UserError(
                field=None,
                code=ErrorCode.FORBIDDEN,
                message="This key may not see the settlement price it asks for (ADMIN, FINANCE "
                "and the merchants it is owed between only); nothing was done. Ask again "
                "without settlementPrice.",
            )
        ]


def _reported(
    row: RedemptionRow | None, principal: Principal
) -> tuple[Redemption | None, list[UserError]]:
    """A redemption and the error it failed with, if it did (as this caller may read it)."""
    if row is None:
        return None, []
    shown = failure_shown(row, principal)
    return Redemption.from_row(row), [shown] if shown else []


@strawberry.type
class MallMutations:
    @strawberry.mutation(description="MERCHANT (own program) or ADMIN: a hosted reward.")
    async def upsert_reward(self, info: Info, input: RewardInput) -> UpsertRewardPayload:
        principal = info.context.require(Action.UPSERT_REWARD)
        data = catalog.NewReward(
            ref=input.ref,
            kind=DomainRewardKind(input.kind),
            title=input.title,
            price=input.price,
            description=input.description or None,
            # "0.00" is a price (falsy as a Decimal); only an absent one takes the default.
            settlement_price=_given(input.settlement_price),
            stock=input.stock if isinstance(input.stock, int) else None,
            keep_stock=input.stock is strawberry.UNSET,
            active=input.active,
            merchant_id=_str(input.merchant_id),
            slots=[
                catalog.NewSlot(
                    ref=s.ref,
                    starts_at=s.starts_at,
                    ends_at=s.ends_at,
                    capacity=s.capacity if isinstance(s.capacity, int) else None,
                )
                for s in (input.slots or [])
            ],
            priority_until=input.priority_until or None,
            priority_tiers=[str(t) for t in input.priority_tiers or []],
            priority_credit_levels=[
                DomainCreditLevel(c) for c in input.priority_credit_levels or []
            ],
            tags=list(input.tags or []),
            voucher=input.voucher.to_domain() if input.voucher else None,
        )
        row, errors = await info.context.write(lambda s: catalog.upsert_reward(s, principal, data))
        reward = await Reward.of(info, row) if row else None
        return UpsertRewardPayload(reward=reward, user_errors=errors)

    @strawberry.mutation(description="The member (or ADMIN): redeem a reward with any program.")
    async def redeem_reward(self, info: Info, input: RedeemRewardInput) -> RedeemRewardPayload:
        principal = info.context.require(Action.REDEEM_REWARD)
        runtime = info.context.runtime
        request = redemption.RedeemRequest(
            member_id=str(input.member_id),
            reward_id=str(input.reward_id),
            pay_with=str(input.pay_with),
            slot_id=_str(input.slot_id),
            quantity=input.quantity,
            idempotency_key=input.idempotency_key,
        )
        prices = _Prices.asked(info)
        if prices.need_checking(principal):
            reward = await info.context.loaders.reward.load(request.reward_id)
            if reward is not None and (
                hidden := await prices.hidden(info, principal, reward.merchant_id, request.pay_with)
            ):
                return RedeemRewardPayload(redemption=None, user_errors=hidden)
        done, errors = await attempt(
            redemption.redeem(runtime.db, principal, runtime.settings, runtime.connectors, request)
        )
        row = done.redemption if done is not None else None
        if done is not None and done.reward is not None:
            # What the redemption's transaction left, not read again for the answer.
            info.context.loaders.reward.prime(done.reward.id, done.reward)
        found, failed = _reported(row, principal)
        return RedeemRewardPayload(redemption=found, user_errors=errors or failed)

    @strawberry.mutation(
        description="The member (MEMBER_REQUEST), the reward's merchant (any reason), or ADMIN."
    )
    async def cancel_redemption(
        self, info: Info, input: CancelRedemptionInput
    ) -> CancelRedemptionPayload:
        principal = info.context.require(Action.CANCEL_REDEMPTION)
        runtime = info.context.runtime
        request = redemption.CancelRequest(
            redemption_id=str(input.redemption_id),
            reason=DomainReason(input.reason),
            idempotency_key=input.idempotency_key,
        )
        prices = _Prices.asked(info)
        if prices.need_checking(principal):
            seen = await info.context.read(
                lambda s: redemption.visible_redemption(s, principal, request.redemption_id)
            )
            if seen is not None and (
                hidden := await prices.hidden(info, principal, seen.merchant_id, seen.paid_with)
            ):
                return CancelRedemptionPayload(redemption=None, user_errors=hidden)
        row, errors = await attempt(
            redemption.cancel(runtime.db, principal, runtime.settings, runtime.connectors, request)
        )
        found, failed = _reported(row, principal)
        if row is not None and row.cancel_step is not None:
            # The cancellation went ahead (a merchant's refusal ends it, cancel_step None):
            # what its refund waits for (a partner refusing it for now, a full balance) is
            # the redemption's failure, not an error of this request (outside attack
            # helper-79: a storefront read "nothing changed" from it).
            failed = []
        return CancelRedemptionPayload(redemption=found, user_errors=errors or failed)


@strawberry.type
class MallQueries:
    @strawberry.field(description="Every merchant's rewards, merged; partners asked concurrently.")
    async def rewards(
        self,
        info: Info,
        filter: RewardFilter | None = strawberry.UNSET,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> RewardConnection:
        size = page_size(first)
        start = decode_cursor("reward", after or None)
        f = filter or RewardFilter()
        filters = catalog.Filter(
            merchant=_str(f.merchant),
            category=DomainCategory(f.category).value if f.category else None,
            kind=DomainRewardKind(f.kind).value if f.kind else None,
            payable_with=_str(f.payable_with),
            max_price=f.max_price if isinstance(f.max_price, int) else None,
            search=checked_argument(lambda: catalog.search_term(f.search or None)),
            available_on=checked_date(f.available_on or None, "availableOn"),
        )
        partners = info.context.runtime.catalog
        # One budget for the page: the day's slots get what the catalogs left of it.
        deadline = time.monotonic() + info.context.settings.catalog_budget_seconds
        unavailable = await partners.ensure_fresh(
            await partners.connected_programs(filters.merchant)
        )
        if filters.available_on:
            left = max(0.0, deadline - time.monotonic())
            late = await partners.slots_on(filters.available_on, filters.merchant, wait=left)
            unavailable = sorted({*unavailable, *late})
        book = await info.context.loaders.price_book()
        tz = info.context.settings.tz
        async with info.context.db.single_read() as conn:
            rows, more = await catalog.page(conn, book, filters, size, start, tz)
        rewards = []
        merchants: dict[str, Merchant] = {}  # one object a merchant, however many rewards
        for row in rows:
            merchant = merchants.get(row.merchant_id)
            if merchant is None:
                merchant = merchants[row.merchant_id] = await load_merchant(info, row.merchant_id)
            rewards.append((Reward.priced(row, book, merchant), row.id))
        page = Connection.of("reward", rewards, more)
        return RewardConnection(
            edges=page.edges, page_info=page.page_info, unavailable_merchant_ids=unavailable
        )

    @strawberry.field
    async def reward(self, info: Info, id: strawberry.ID) -> Reward | None:
        return await Reward.resolve_reference(info, id)  # the lookup _entities makes

    @strawberry.field(description="null when no such redemption is visible to the caller.")
    async def redemption(self, info: Info, id: strawberry.ID) -> Redemption | None:
        principal = info.context.require(Action.READ_ACTIVITY)
        row = await info.context.read(
            lambda s: redemption.visible_redemption(s, principal, str(id))
        )
        return Redemption.from_row(row) if row else None
