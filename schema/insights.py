"""merchantInsights: a merchant's points, members and rewards over a period. Each figure
is resolved only when asked for, each with one aggregate query (hub.insights)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from hub import insights
from hub.enums import Role
from hub.permissions import Action
from schema.context import Info
from schema.errors import checked_argument, forbidden
from schema.pagination import checked_date
from schema.types.mall import Reward
from schema.types.members import Member
from schema.types.merchants import Merchant, load_merchant
from schema.types.tiers import Tier

T = TypeVar("T")


@strawberry.type(description="Members holding a tier now.")
class TierCount:
    tier: Tier | None = strawberry.field(description="null: below the first tier.")
    members: int


@strawberry.type(description="A reward's confirmed redemptions in the period.")
class RewardCount:
    reward: Reward
    redemptions: int
    points: int = strawberry.field(
        description="What they were worth in the merchant's own points: what was paid "
        "where members paid in them, the list price of units paid in another program."
    )


@strawberry.type(description="One business date of the period (an addition to the contract).")
class InsightsDay:
    date: dt.date
    points_issued: int
    points_redeemed: int
    points_expired: int
    green_points_issued: int


@dataclass
class _Memo:
    """What one MerchantInsights has read, so fields that share a query run it once."""

    tasks: dict[str, asyncio.Future[object]] = field(default_factory=dict)


@strawberry.type(
    description="A merchant's figures for business dates `from` to `to` (both included, "
    "in the settlement time zone); points figures come from the hub's ledger (hosted "
    "programs)."
)
class MerchantInsights:
    from_: dt.date = strawberry.field(name="from")
    to: dt.date
    scope: strawberry.Private[insights.Scope]
    period: strawberry.Private[insights.Period]
    memo: strawberry.Private[_Memo]

    async def _read(self, info: Info, name: str, read: Callable[[AsyncSession], Awaitable[T]]) -> T:
        if name not in self.memo.tasks:
            self.memo.tasks[name] = asyncio.ensure_future(info.context.read(read))
        result: T = await self.memo.tasks[name]  # type: ignore[assignment]
        return result

    async def _ledger(self, info: Info) -> insights.LedgerFigures:
        return await self._read(
            info, "ledger", lambda s: insights.ledger_figures(s, self.scope, self.period)
        )

    @strawberry.field
    async def merchant(self, info: Info) -> Merchant:
        return await load_merchant(info, self.scope.merchant_id)

    @strawberry.field(description="Points the merchant's programs gave members.")
    async def points_issued(self, info: Info) -> int:
        return (await self._ledger(info)).issued

    @strawberry.field(description="Points members spent in the mall, net of refunds.")
    async def points_redeemed(self, info: Info) -> int:
        return (await self._ledger(info)).redeemed

    @strawberry.field(description="Points that reached their expiry unspent.")
    async def points_expired(self, info: Info) -> int:
        return (await self._ledger(info)).expired

    @strawberry.field(description="Points the merchant's GREEN programs gave members.")
    async def green_points_issued(self, info: Info) -> int:
        return (await self._ledger(info)).green_issued

    @strawberry.field(
        description="Every business date of the period, oldest first (an addition to the "
        "contract, for charts): the same figures per day."
    )
    async def daily(self, info: Info) -> list[InsightsDay]:
        return [
            InsightsDay(
                date=d.date,
                points_issued=d.issued,
                points_redeemed=d.redeemed,
                points_expired=d.expired,
                green_points_issued=d.green_issued,
            )
            for d in (await self._ledger(info)).days
        ]

    @strawberry.field(
        description="Members who earned, spent or converted the merchant's points, or "
        "redeemed one of its rewards, in the period."
    )
    async def active_members(self, info: Info) -> int:
        return await self._read(
            info, "active", lambda s: insights.active_members(s, self.scope, self.period)
        )

    @strawberry.field(
        description="Members of the merchant's program per tier held now: below the first "
        "tier (tier null) first, then every tier lowest first."
    )
    async def members_by_tier(self, info: Info) -> list[TierCount]:
        counts = await self._read(info, "tiers", lambda s: insights.tier_counts(s, self.scope))
        ladders = await info.context.loaders.ladder.load_many(list(self.scope.standard))
        return [
            TierCount(tier=Tier.from_row(tier) if tier else None, members=members)
            for tier, members in insights.by_tier([ld or [] for ld in ladders], counts)
        ]

    @strawberry.field(
        description=f"The {insights.TOP_REWARDS} rewards most redeemed in the period, most "
        "first (confirmed redemptions)."
    )
    async def top_rewards(self, info: Info) -> list[RewardCount]:
        found = await self._read(
            info, "rewards", lambda s: insights.top_rewards(s, self.scope, self.period)
        )
        return [
            RewardCount(
                reward=await Reward.of(info, r.reward), redemptions=r.redemptions, points=r.points
            )
            for r in found
        ]

    @strawberry.field(
        description="Members whose spend in the 90 days ending with `to` is at least twice "
        f"their spend in the 90 days before, most recent spend first (at most "
        f"{insights.RISING_MEMBERS}); names masked as everywhere."
    )
    async def rising_members(self, info: Info) -> list[Member]:
        rows = await self._read(
            info, "rising", lambda s: insights.rising_members(s, self.scope, self.period)
        )
        return [Member.from_row(r) for r in rows]


@strawberry.type
class InsightsQueries:
    @strawberry.field(
        description="A MERCHANT for itself, or ADMIN; null for an unknown merchant. The "
        f"period spans at most {insights.MAX_DAYS} days."
    )
    async def merchant_insights(
        self,
        info: Info,
        merchant: strawberry.ID,
        from_: Annotated[dt.date, strawberry.argument(name="from")],
        to: dt.date,
    ) -> MerchantInsights | None:
        principal = info.context.require(Action.READ_INSIGHTS)
        if principal.role == Role.MERCHANT and principal.merchant_id != str(merchant):
            raise forbidden("A merchant reads only its own insights.")
        checked_date(from_, "from")
        checked_date(to, "to")
        period = checked_argument(
            lambda: insights.Period.checked(from_, to, info.context.settings.tz)
        )
        scope = await info.context.read(lambda s: insights.scope_of(s, str(merchant)))
        if scope is None:
            return None
        return MerchantInsights(from_=from_, to=to, scope=scope, period=period, memo=_Memo())
