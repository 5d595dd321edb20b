"""Prices in any program: the rates in effect and active promotions, read once per request.

Prices are for one member when the book has their profile: the promotions they qualify
for (a tier, a credit level, an age, the birthday month) and their tier's redemption
discount in the paying program. Without a member only promotions for everyone apply."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub import green, obligations, promotions
from hub.db import KEPT, utcnow
from hub.eligibility import Profile, applies, opens_at
from hub.enums import MerchantCategory, ProgramKind, RewardKind, SettlementBasis
from hub.exchange.pricing import RouteLeg, points_needed, price_to_receive
from hub.exchange.rates import rates_in_effect
from hub.mall import settlement_prices
from hub.models import ExchangeRate, Merchant, Program, Promotion, Reward
from hub.models.mall import RewardLike
from hub.promotions import percent_off
from hub.validate import MAX_BALANCE

if TYPE_CHECKING:
    from hub.caches import Programs, Rates

# The kinds of reward booked by slot (a night, a departure, an entry window), in the order
# the API's descriptions name them.
SLOTTED_KINDS = (
    RewardKind.HOTEL_NIGHT,
    RewardKind.ROOM_UPGRADE,
    RewardKind.HOTEL_SERVICE,
    RewardKind.AWARD_FLIGHT,
    RewardKind.ATTRACTION_TICKET,
)
SLOTTED = frozenset(SLOTTED_KINDS)


@dataclass(frozen=True)
class Line:
    """A redemption line priced once, for its whole quantity."""

    price_points: int  # the reward's price x quantity, in its merchant's points
    points: int  # what the member pays, in the paying program
    legs: list[RouteLeg]  # the conversion the payment goes through; none in the reward's program
    settlement: Decimal  # what the paying merchant owes the reward's merchant for the line
    basis: SettlementBasis
    # What the member's tier in the paying program takes off `points` (that program gives
    # it: the line's price and what is owed for it do not change).
    discount: int = 0


@dataclass
class PriceBook:
    # Read-only: a book made from what the process keeps shares these with other requests.
    rates: Mapping[tuple[str, str], ExchangeRate]
    platform: str | None
    programs: Mapping[str, Program]
    by_merchant: Mapping[str, Program]
    discounts: dict[str, list[Promotion]]
    shopper: Profile | None = None
    at: dt.datetime | None = None
    # Points of a program that buy a price in another, by (paying, selling, price): a page's
    # rewards share a few prices, and each is converted once.
    _needed: dict[tuple[str, str, int], int | None] = field(
        default_factory=dict, init=False, repr=False
    )
    # What price_in answered, by what it depends on besides the book: the reward's
    # merchant, price and tags, and the paying program. A page asks each reward's price
    # more than once (to filter, for `price`, for `priceIn`).
    _prices: dict[tuple[str, int, str | None, str], int | None] = field(
        default_factory=dict, init=False, repr=False
    )

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        at: dt.datetime,
        shopper: Profile | None = None,
        *,
        codes: Sequence[str] = (),
        merchant_id: str | None = None,
    ) -> PriceBook:
        """The book a redemption prices with: rates, programs and promotions as the process
        keeps them (hub.caches: what the rewards page priced with, and what a conversion
        prices with; a version set through another process is seen within
        HUB_CACHE_CHECK_SECONDS, which the cycle check allows for), else read in the
        caller's transaction. `codes`, `merchant_id`: programs the caller needs (by code,
        and the merchant's own)."""
        kept = session.info.get(KEPT)
        if kept is not None:
            # Programs `codes` and `merchant_id`'s are known (read again if registered since,
            # by another process).
            if merchant_id is not None:
                await kept.program_of_merchant(merchant_id)
            programs, loyalty = await kept.programs(codes), await kept.loyalty()
            return cls.kept(at, await kept.rates(), programs, loyalty.running(at), shopper)
        rates = await rates_in_effect(session, at, None, None)
        programs = {p.code: p for p in await session.scalars(select(Program))}
        platform = await session.scalar(
            select(Program.code)
            .join(Merchant, Merchant.id == Program.merchant_id)
            .where(
                Merchant.category == MerchantCategory.PLATFORM,
                Program.kind == ProgramKind.STANDARD,
            )
        )
        active = await session.scalars(
            select(Promotion).where(Promotion.starts_at <= at, Promotion.ends_at > at)
        )
        return cls.of(at, rates, programs, platform, active, shopper)

    @classmethod
    def kept(
        cls,
        at: dt.datetime,
        rates: Rates,
        programs: Programs,
        active: Iterable[Promotion],
        shopper: Profile | None = None,
    ) -> PriceBook:
        """The book from what the process keeps (hub.caches): the rates in effect and each
        merchant's program as kept, shared read-only, not copied for every request."""
        return cls(
            rates=rates.effective(at),
            platform=programs.platform,
            programs=programs.by_code,
            by_merchant=programs.by_merchant,
            discounts=_discounts(active, shopper),
            shopper=shopper,
            at=at,
        )

    @classmethod
    def of(
        cls,
        at: dt.datetime,
        rates: Iterable[ExchangeRate],
        programs: dict[str, Program],
        platform: str | None,
        active: Iterable[Promotion],
        shopper: Profile | None = None,
    ) -> PriceBook:
        """The book from parts already at hand: the rates and promotions in effect at `at`
        (hub.caches keeps them in memory, with the programs); the promotions the shopper
        qualifies for are kept."""
        return cls(
            rates={(r.from_code, r.to_code): r for r in rates},
            platform=platform,
            programs=programs,
            by_merchant={
                p.merchant_id: p for p in programs.values() if p.kind == ProgramKind.STANDARD
            },
            discounts=_discounts(active, shopper),
            shopper=shopper,
            at=at,
        )

    def program_of(self, reward: RewardLike) -> Program:
        return self.by_merchant[reward.merchant_id]

    def route(self, source: str, target: str) -> list[ExchangeRate] | None:
        direct = self.rates.get((source, target))
        if direct is not None:
            return [direct]
        if self.platform and self.platform not in (source, target):
            first = self.rates.get((source, self.platform))
            second = self.rates.get((self.platform, target))
            if first is not None and second is not None:
                return [first, second]
        return None

    def own_price(self, reward: RewardLike) -> int:
        """The reward's price in its merchant's points, the best discount the member has
        there applied: what the reward's merchant is paid for (settlement prices it)."""
        code = self.program_of(reward).code
        return promotions.discounted_price(reward.price, self.discounts.get(code, []))

    def price(self, reward: RewardLike) -> int:
        """What one unit costs the member in the merchant's own points."""
        price = self._cached(reward, self.program_of(reward).code)
        assert price is not None
        return price

    def price_in(self, reward: RewardLike, program: str) -> int | None:
        """What one unit costs in `program`, rounded up for the payer; None if it cannot pay.
        The member's tier in the paying program takes its redemption discount off: the
        paying program gives it, so what it owes the reward's merchant stays the same. A
        member's book: None as well in a program the member holds no account in."""
        if self.shopper is not None and not self.shopper.may_pay_from(program):
            return None
        return self._cached(reward, program)

    def _cached(self, reward: RewardLike, program: str) -> int | None:
        key = (reward.merchant_id, reward.price, reward.tags, program)
        if key not in self._prices:
            self._prices[key] = self._price_in(reward, program)
        return self._prices[key]

    def _price_in(self, reward: RewardLike, program: str) -> int | None:
        own = self.program_of(reward).code
        price = self.own_price(reward)
        if program != own:
            payer = self.programs.get(program)
            if payer is None or not green.may_pay(payer, reward):
                return None
            converted = self.converted(program, own, price)
            if converted is None:
                return None
            price = converted
        discount = self.shopper.tier_discount(program) if self.shopper else Decimal(0)
        priced = percent_off(price, discount)
        # More than any balance can hold: no member can pay it from there (and the API's
        # Int, 32 bits, could not say it: outside attack helper-83).
        return priced if priced <= MAX_BALANCE else None

    def converted(self, source: str, target: str, points: int) -> int | None:
        """The fewest `source` points that buy `points` of `target` (points_needed on the
        route between them); None if none can."""
        key = (source, target, points)
        if key not in self._needed:
            route = self.route(source, target)
            self._needed[key] = None if route is None else points_needed(route, points)
        return self._needed[key]

    def opens_at(self, reward: RewardLike) -> dt.datetime | None:
        """When the member may redeem it (None: now); see hub.eligibility.opens_at."""
        at = self.at or utcnow()
        return opens_at(reward, self.program_of(reward).code, self.shopper, at)

    def line(self, reward: Reward, program: str, quantity: int) -> Line | None:
        """`quantity` units paid in `program`, priced as one conversion of their whole price
        (a unit price rounded up for the payer and multiplied would charge each unit's
        rounding again), less the member's tier discount in `program`; None if `program`
        cannot pay."""
        own = self.program_of(reward)
        price_points = self.own_price(reward) * quantity
        settlement, basis = settlement_prices.for_line(
            reward.settlement_price,
            reward.settlement_contracted,
            price_points,
            own.point_value,
            quantity,
        )
        percent = self.shopper.tier_discount(program) if self.shopper else Decimal(0)
        if program == own.code:
            pays = percent_off(price_points, percent)
            return Line(price_points, pays, [], settlement, basis, price_points - pays)
        payer = self.programs.get(program)
        if payer is None or not green.may_pay(payer, reward):
            return None
        route = self.route(program, own.code)
        priced = None if route is None else price_to_receive(route, price_points)
        if priced is None:
            return None
        pays = percent_off(priced.points, percent)
        return Line(price_points, pays, priced.legs, settlement, basis, priced.points - pays)

    def payable_with(self, reward: RewardLike) -> list[str]:
        own = self.program_of(reward).code
        return [
            code
            for code in sorted(self.programs)
            if code == own
            or (green.may_pay(self.programs[code], reward) and self.route(code, own) is not None)
        ]

    def settlement_unit(self, reward: RewardLike) -> Decimal:
        """What the paying merchant owes the reward's merchant per unit: the points' worth,
        or less if the merchant asked less, or an ADMIN's contracted price."""
        worth = obligations.amount_for(self.own_price(reward), self.program_of(reward).point_value)
        return settlement_prices.per_unit(
            reward.settlement_price, reward.settlement_contracted, worth
        )


def _discounts(active: Iterable[Promotion], shopper: Profile | None) -> dict[str, list[Promotion]]:
    """The running promotions the shopper qualifies for, by program."""
    discounts: dict[str, list[Promotion]] = {}
    for promotion in active:
        if applies(promotion, shopper):
            discounts.setdefault(promotion.program_code, []).append(promotion)
    return discounts
