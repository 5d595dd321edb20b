"""A week of history for the demo, so that `/console` opens on batches with content.

Run once, when the demo world is new and its sandbox partners answer: the moves go
through the hub's own GraphQL API (conversions between hosted programs and from a
partner, redemptions, an award flight the airline cancels with compensation, a
Western restaurant's voucher redeemed and used at its till), each day's
obligations are dated back to that day, and the day is settled. Finally a hotel
disputes yesterday's statement and finance accepts it with an adjustment, which the
next batch carries. Only the two history members take part, so the demo members'
balances are the ones the README and the mall describe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from sqlalchemy import func, select, update
from starlette.types import ASGIApp

from connectors.sandbox.core import Sandbox
from hub.config import Settings
from hub.db import Database, utcnow
from hub.models import Conversion, Obligation, Redemption, SettlementBatch, Voucher

DAYS = 7
Echo = Callable[[str], object]


class HistoryError(RuntimeError):
    pass


class _Hub:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def gql(self, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        if body.get("errors"):
            raise HistoryError(f"demo history: {body['errors'][0]['message']}")
        data: dict[str, Any] = body["data"]
        return data

    async def payload(self, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
        data = await self.gql(query, variables, key)
        result: dict[str, Any] = next(iter(data.values()))
        if result.get("userErrors"):
            raise HistoryError(f"demo history: {result['userErrors'][0]['message']}")
        return result


MEMBER = 'query($r: String!) { memberByRef(program: "HUB", externalRef: $r) { id } }'
CONVERT = """mutation($i: ConvertPointsInput!) {
  convertPoints(input: $i) { conversion { id status } userErrors { message } } }"""
REDEEM = """mutation($i: RedeemRewardInput!) {
  redeemReward(input: $i) { redemption { id status } userErrors { message } } }"""
CANCEL = """mutation($i: CancelRedemptionInput!) {
  cancelRedemption(input: $i) { redemption { id status } userErrors { message } } }"""
CATALOG = "{ rewards(first: 100) { edges { node { id } } } }"
SLOTS = 'query($d: Date) { reward(id: "skyair:AW-PVG-PEK-Y") { slots(date: $d) { id } } }'
SETTLE = """mutation($d: Date!) {
  runSettlement(businessDate: $d) { batch { statements { id merchant { id } } }
                                    userErrors { message } } }"""
VOUCHER = "query($id: ID!) { redemption(id: $id) { voucher { code } } }"
USE_VOUCHER = """mutation($c: String!, $o: String!, $a: Decimal!) {
  useVoucher(code: $c, orderRef: $o, orderAmount: $a) {
    voucher { usedAt } userErrors { message } } }"""
DISPUTE = """mutation($id: ID!, $r: String!) {
  disputeStatement(id: $id, reason: $r) { statement { id } userErrors { message } } }"""
RESOLVE = """mutation($i: ResolveDisputeInput!) {
  resolveDispute(input: $i) { statement { id } userErrors { message } } }"""


async def seed_week(
    app: ASGIApp,
    settings: Settings,
    partners: Sequence[Sandbox] = (),
    progress: Echo = print,
) -> bool:
    """Play and settle the last week once; False when the demo already has batches.

    `partners` are the running sandboxes: their records of each day's moves are dated
    back with the hub's, so that reconciliation of each day matches."""
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            if await session.scalar(select(func.count()).select_from(SettlementBatch)):
                return False
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://demo.local", timeout=30
        ) as client:
            await _play(_Hub(client), db, settings, partners, progress)
        return True
    finally:
        await db.dispose()


async def _play(
    hub: _Hub,
    db: Database,
    settings: Settings,
    partners: Sequence[Sandbox],
    progress: Echo,
) -> None:
    liu = (await hub.gql(MEMBER, {"r": "H-1005"}, "demo-admin"))["memberByRef"]["id"]
    zhao = (await hub.gql(MEMBER, {"r": "H-1006"}, "demo-admin"))["memberByRef"]["id"]
    today = settings.business_date(utcnow())
    statements: dict[str, str] = {}
    for ago in range(DAYS, 0, -1):
        day = today - dt.timedelta(days=ago)
        since = await _high_water(db)
        seen = {id(p): set(p.ledger.moves) for p in partners}
        tag = day.isoformat()
        await _convert(hub, liu, "HUB", "JADE", 500, f"history-{tag}-hub-jade")
        await _convert(hub, liu, "SKYMILES", "LOTUS", 1000, f"history-{tag}-sky-lotus")
        await _convert(hub, zhao, "HUB", "WESTLAKE", 300, f"history-{tag}-hub-westlake")
        await hub.payload(
            REDEEM,
            {
                "i": {
                    "memberId": zhao,
                    "rewardId": "jade:SET-MEAL",
                    "payWith": "HUB",
                    "idempotencyKey": f"history-{tag}-meal",
                }
            },
            "demo-admin",
        )
        if ago == 3:
            await _cancelled_flight(hub, liu, today, tag)
        if ago == 2:
            await _voucher_at_the_till(hub, liu, tag)
        await _date_back(db, settings, since, day)
        for partner in partners:
            _date_back_partner(partner, seen[id(partner)], settings, day)
        settled = await hub.payload(SETTLE, {"d": tag}, "demo-finance")
        statements = {s["merchant"]["id"]: s["id"] for s in settled["batch"]["statements"]}
        progress(f"history: {tag} played and settled ({DAYS - ago + 1}/{DAYS})")
    # Yesterday's hotel statement misses two stays: lotus disputes, finance accepts.
    await hub.payload(
        DISPUTE,
        {"id": statements["lotus"], "r": "Two award stays of Liu Yang are missing"},
        "demo-lotus",
    )
    await hub.payload(
        RESOLVE,
        {
            "i": {
                "statementId": statements["lotus"],
                "resolution": "ACCEPTED",
                "note": "Confirmed with Sky Air: the two stays were converted late",
                "adjustments": [
                    {"counterparty": "skyair", "amount": "15.00", "reason": "Stays 881 and 882"}
                ],
            }
        },
        "demo-finance",
    )
    progress("history: a disputed hotel statement resolved with an adjustment for today's batch")


async def _convert(hub: _Hub, member: str, source: str, target: str, points: int, key: str) -> None:
    await hub.payload(
        CONVERT,
        {
            "i": {
                "memberId": member,
                "from": source,
                "to": target,
                "points": points,
                "idempotencyKey": key,
            }
        },
        "demo-admin",
    )


async def _cancelled_flight(hub: _Hub, member: str, today: dt.date, tag: str) -> None:
    """An award flight paid in HUB, then cancelled by the airline: refund and compensation."""
    flight_day = (today + dt.timedelta(days=3)).isoformat()
    await hub.gql(CATALOG, {}, "demo-admin")  # the first page fetches the partners' catalogs
    seats = (await hub.gql(SLOTS, {"d": flight_day}, "demo-admin"))["reward"]["slots"]
    booked = await hub.payload(
        REDEEM,
        {
            "i": {
                "memberId": member,
                "rewardId": "skyair:AW-PVG-PEK-Y",
                "payWith": "HUB",
                "slotId": seats[0]["id"],
                "idempotencyKey": f"history-{tag}-flight",
            }
        },
        "demo-admin",
    )
    await hub.payload(
        CANCEL,
        {
            "i": {
                "redemptionId": booked["redemption"]["id"],
                "reason": "FLIGHT_CANCELLED",
                "idempotencyKey": f"history-{tag}-flight-cancelled",
            }
        },
        "demo-skyair",
    )


async def _voucher_at_the_till(hub: _Hub, member: str, tag: str) -> None:
    """The bistro's "50 off 200" paid in HUB, then used at the bistro's till on a bill."""
    redeemed = await hub.payload(
        REDEEM,
        {
            "i": {
                "memberId": member,
                "rewardId": "bistro:FIFTY-OFF-200",
                "payWith": "HUB",
                "idempotencyKey": f"history-{tag}-voucher",
            }
        },
        "demo-admin",
    )
    found = await hub.gql(VOUCHER, {"id": redeemed["redemption"]["id"]}, "demo-admin")
    code = found["redemption"]["voucher"]["code"]
    await hub.payload(
        USE_VOUCHER, {"c": code, "o": f"BISTRO-{tag}-T12", "a": "236.00"}, "demo-bistro"
    )


async def _high_water(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.coalesce(func.max(Obligation.id), 0))) or 0)


async def _date_back(db: Database, settings: Settings, since: int, day: dt.date) -> None:
    """Date the day's moves back to noon of `day` (the demo replays a week in a moment)."""
    noon = dt.datetime.combine(day, dt.time(12), settings.tz).astimezone(dt.UTC)

    async def work(session: Any) -> None:
        for moves in (
            update(Obligation)
            .where(Obligation.id > since)
            .values(occurred_at=noon, business_date=day),
            update(Conversion)
            .where(Conversion.business_date > day, Conversion.created_at > noon)
            .values(created_at=noon, updated_at=noon, business_date=day),
            update(Redemption)
            .where(Redemption.created_at > noon)
            .values(created_at=noon, updated_at=noon),
            update(Redemption)
            .where(Redemption.cancelled_at > noon, Redemption.created_at == noon)
            .values(cancelled_at=noon),
        ):
            await session.execute(moves)
        for voucher in await session.scalars(select(Voucher).where(Voucher.created_at > noon)):
            shift = voucher.created_at - noon
            voucher.created_at, voucher.valid_until = noon, voucher.valid_until - shift
            if voucher.used_at is not None:
                voucher.used_at = noon + dt.timedelta(hours=2)

    await db.transaction(work)


def _date_back_partner(partner: Sandbox, seen: set[str], settings: Settings, day: dt.date) -> None:
    """The partner's own records of the day's moves, dated back like the hub's."""
    noon = dt.datetime.combine(day, dt.time(12), settings.tz).isoformat()
    for key, move in partner.ledger.moves.items():
        if key not in seen:
            move["at"] = noon
    partner.save()
