"""Test helpers: the API client and a few ready-made merchants."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from hub.app import create_app
from hub.config import Settings

ADMIN_KEY = "test-admin-secret"


class GraphQLErrors(AssertionError):
    pass


class Api:
    """POST /graphql as a partner would: a key, optionally a member token."""

    def __init__(self, client: httpx.AsyncClient, app: Any) -> None:
        self.client = client
        self.app = app

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = ADMIN_KEY,
        member_token: str | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if member_token is not None:
            headers["X-Member-Token"] = member_token
        # As JSON with ASCII escapes, as many clients send it: a lone surrogate ("\ud800")
        # is valid JSON that no UTF-8 encoder writes.
        body = json.dumps({"query": query, "variables": variables or {}})
        return await self.client.post("/graphql", content=body.encode(), headers=headers)

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = ADMIN_KEY,
        member_token: str | None = None,
    ) -> dict[str, Any]:
        """The data of a query that must succeed without top-level errors."""
        response = await self.post(query, variables, key=key, member_token=member_token)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise GraphQLErrors(f"HTTP {response.status_code}: {body}")
        data: dict[str, Any] = body["data"]
        return data

    async def errors(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = ADMIN_KEY,
        member_token: str | None = None,
    ) -> list[dict[str, Any]]:
        """The top-level errors of a query that must fail."""
        response = await self.post(query, variables, key=key, member_token=member_token)
        body = response.json()
        assert body.get("errors"), body
        errors: list[dict[str, Any]] = body["errors"]
        return errors


def quiet_settings(db_url: str, **overrides: Any) -> Settings:
    """The tests' settings: the database, the admin key, warnings only, no background
    jobs; `overrides` on top (a test file's fixture of the same name gives its own)."""
    return Settings(
        database_url=db_url,
        bootstrap_admin_key=ADMIN_KEY,
        log_level="WARNING",
        background_jobs=False,
        **overrides,
    )


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            yield Api(client, app)


REGISTER = """
mutation Register($input: RegisterMerchantInput!) {
  registerMerchant(input: $input) {
    merchant { id name category status compensationPercent
               program { code name unitName connector pointValue accrualRate expiryMonths } }
    userErrors { field message code }
  }
}"""

CREATE_KEY = """
mutation Key($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret keyId userErrors { field message code } }
}"""


def merchant_input(
    merchant_id: str, code: str, category: str = "OTHER", **extra: Any
) -> dict[str, Any]:
    data = {
        "id": merchant_id,
        "name": merchant_id.title(),
        "category": category,
        "programCode": code,
        "programName": f"{code} points",
        "pointValue": "0.10",
    }
    data.update(extra)
    return data


async def register(api: Api, merchant_id: str, code: str, **extra: Any) -> dict[str, Any]:
    data = await api.gql(REGISTER, {"input": merchant_input(merchant_id, code, **extra)})
    payload: dict[str, Any] = data["registerMerchant"]
    assert payload["userErrors"] == [], payload
    return payload


async def create_key(api: Api, role: str, merchant_id: str | None = None) -> str:
    data = await api.gql(
        CREATE_KEY, {"input": {"role": role, "merchantId": merchant_id, "label": f"{role} test"}}
    )
    payload = data["createApiKey"]
    assert payload["userErrors"] == [], payload
    secret: str = payload["secret"]
    return secret


ENROLL = """
mutation Enroll($input: EnrollMemberInput!) {
  enrollMember(input: $input) { member { id displayName } userErrors { field message code } }
}"""

ACCRUE = """
mutation Accrue($input: AccruePointsInput!) {
  accruePoints(input: $input) {
    points
    entry { id kind points balanceAfter reference memo businessDate program { code } }
    userErrors { field message code }
  }
}"""

BALANCES = """
query Balances($id: ID!) {
  member(id: $id) { id displayName accounts { program { code } externalRef balance held
                                             expiring { points expiresAt } } }
}"""


async def enroll(
    api: Api,
    program: str,
    ref: str,
    name: str = "Li Wei",
    *,
    member_id: str | None = None,
    key: str = ADMIN_KEY,
    member_token: str | None = None,
) -> str:
    data = await api.gql(
        ENROLL,
        {
            "input": {
                "program": program,
                "externalRef": ref,
                "displayName": name,
                "memberId": member_id,
            }
        },
        key=key,
        member_token=member_token,
    )
    payload = data["enrollMember"]
    assert payload["userErrors"] == [], payload
    member: str = payload["member"]["id"]
    return member


async def accrue(
    api: Api,
    member_id: str,
    program: str,
    amount: str,
    *,
    order: str | None = None,
    key: str = ADMIN_KEY,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    import secrets

    order = order or f"order-{secrets.token_hex(4)}"
    data = await api.gql(
        ACCRUE,
        {
            "input": {
                "memberId": member_id,
                "program": program,
                "orderRef": order,
                "amount": amount,
                "idempotencyKey": idempotency_key or f"accrue-{order}",
            }
        },
        key=key,
    )
    payload: dict[str, Any] = data["accruePoints"]
    return payload


async def balances(api: Api, member_id: str, key: str = ADMIN_KEY, **kw: Any) -> dict[str, int]:
    data = await api.gql(BALANCES, {"id": member_id}, key=key, **kw)
    if data["member"] is None:
        return {}
    return {a["program"]["code"]: a["balance"] for a in data["member"]["accounts"]}


async def verify_ledger(url: str) -> list[str]:
    """`hub verify`'s findings on the database at `url`."""
    from hub.db import Database
    from hub.verify import verify

    db = Database(url)
    try:
        async with db.read() as session:
            return [str(v) for v in await verify(session)]
    finally:
        await db.dispose()


SET_RATE = """
mutation Rate($input: ExchangeRateInput!) {
  setExchangeRate(input: $input) {
    rate { id from { code } to { code } rate minPoints step bonusPercent dailyLimitPerMember
           effectiveFrom effectiveTo }
    userErrors { field message code }
  }
}"""

QUOTE = """
mutation Quote($input: QuoteInput!) {
  quoteConversion(input: $input) {
    quote { id points receive expiresAt from { code } to { code } route { code } }
    userErrors { field message code }
  }
}"""

CONVERT = """
mutation Convert($input: ConvertPointsInput!) {
  convertPoints(input: $input) {
    conversion { id status pointsDebited pointsCredited route { code } from { code } to { code }
                 member { id } createdAt }
    userErrors { field message code }
  }
}"""


async def set_rate(api: Api, source: str, target: str, rate: str, **extra: Any) -> dict[str, Any]:
    data = await api.gql(SET_RATE, {"input": {"from": source, "to": target, "rate": rate, **extra}})
    payload: dict[str, Any] = data["setExchangeRate"]
    assert payload["userErrors"] == [], payload
    return payload["rate"]  # type: ignore[no-any-return]


async def convert(
    api: Api,
    member_id: str,
    source: str,
    target: str,
    points: int,
    *,
    key: str = ADMIN_KEY,
    idempotency_key: str | None = None,
    quote_id: str | None = None,
    member_token: str | None = None,
) -> dict[str, Any]:
    import secrets

    data = await api.gql(
        CONVERT,
        {
            "input": {
                "memberId": member_id,
                "from": source,
                "to": target,
                "points": points,
                "quoteId": quote_id,
                "idempotencyKey": idempotency_key or f"convert-{secrets.token_hex(6)}",
            }
        },
        key=key,
        member_token=member_token,
    )
    payload: dict[str, Any] = data["convertPoints"]
    return payload


async def member_session(api: Api, member_id: str, key: str = ADMIN_KEY) -> str:
    data = await api.gql(
        "mutation S($id: ID!) { createMemberSession(memberId: $id) { token userErrors { code } } }",
        {"id": member_id},
        key=key,
    )
    token: str = data["createMemberSession"]["token"]
    return token


async def obligations(url: str) -> list[dict[str, Any]]:
    """Every obligation in the database, oldest first."""
    from sqlalchemy import select

    from hub.db import Database
    from hub.models import Obligation

    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.scalars(select(Obligation).order_by(Obligation.id))
            return [
                {
                    "kind": o.kind,
                    "debtor": o.debtor_id,
                    "creditor": o.creditor_id,
                    "program": o.program_code,
                    "points": o.points,
                    "amount": o.amount,
                    "reference": o.reference,
                    "business_date": o.business_date,
                }
                for o in rows
            ]
    finally:
        await db.dispose()


async def outbox(url: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every event the hub has announced, oldest first: (type, merchant, data)."""
    import json

    from sqlalchemy import select

    from hub.db import Database
    from hub.models import OutboxEvent

    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
            return [(r.type, r.merchant_id, json.loads(r.payload)["data"]) for r in rows]
    finally:
        await db.dispose()


@asynccontextmanager
async def live_app(settings: Settings) -> AsyncIterator[tuple[str, Api]]:
    """The hub app served by uvicorn on a loopback port (partners can call it back)."""
    import uvicorn

    from connectors.sandbox.runner import free_port

    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    import asyncio

    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield url, Api(client, app)
    finally:
        server.should_exit = True
        await task


UPSERT = """
mutation Upsert($input: RewardInput!) {
  upsertReward(input: $input) {
    reward { id kind title price listPrice settlementPrice stock available
             merchant { id } payableWith { code } }
    userErrors { field message code }
  }
}"""

REDEEM = """
mutation Redeem($input: RedeemRewardInput!) {
  redeemReward(input: $input) {
    redemption { id status points quantity settlementPrice fulfillmentRef refundedPoints
                 compensationPoints paidWith { code } reward { id } slot { id } }
    userErrors { field message code }
  }
}"""

CANCEL = """
mutation Cancel($input: CancelRedemptionInput!) {
  cancelRedemption(input: $input) {
    redemption { id status refundedPoints compensationPoints cancelledAt }
    userErrors { field message code }
  }
}"""


async def upsert_reward(api: Api, key: str = ADMIN_KEY, **data: Any) -> dict[str, Any]:
    result = await api.gql(UPSERT, {"input": data}, key=key)
    payload: dict[str, Any] = result["upsertReward"]
    assert payload["userErrors"] == [], payload
    return payload["reward"]  # type: ignore[no-any-return]


async def redeem(
    api: Api,
    member_id: str,
    reward_id: str,
    pay_with: str,
    *,
    slot_id: str | None = None,
    quantity: int = 1,
    key: str = ADMIN_KEY,
    member_token: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    import secrets

    # A storefront (a member's session) may not see what merchants owe each other.
    query = REDEEM if member_token is None else REDEEM.replace(" settlementPrice", "")
    data = await api.gql(
        query,
        {
            "input": {
                "memberId": member_id,
                "rewardId": reward_id,
                "payWith": pay_with,
                "slotId": slot_id,
                "quantity": quantity,
                "idempotencyKey": idempotency_key or f"redeem-{secrets.token_hex(6)}",
            }
        },
        key=key,
        member_token=member_token,
    )
    payload: dict[str, Any] = data["redeemReward"]
    return payload


async def cancel_redemption(
    api: Api,
    redemption_id: str,
    reason: str = "MEMBER_REQUEST",
    *,
    key: str = ADMIN_KEY,
    member_token: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    import secrets

    data = await api.gql(
        CANCEL,
        {
            "input": {
                "redemptionId": redemption_id,
                "reason": reason,
                "idempotencyKey": idempotency_key or f"cancel-{secrets.token_hex(6)}",
            }
        },
        key=key,
        member_token=member_token,
    )
    payload: dict[str, Any] = data["cancelRedemption"]
    return payload


async def empty_database(url: str) -> None:
    """Delete every row of every table and restart every sequence, as a TRUNCATE ...
    RESTART IDENTITY would. Straight through the driver, in one round trip: a test's
    tables hold a few rows, and a TRUNCATE of all of them (a catalog change per table)
    or a new SQLAlchemy engine (its dialect's first connect) cost PostgreSQL 150 ms a
    test, this about 10. A table a test filled (a bulk import's) is truncated: deleting
    many rows one by one is the slower there."""
    import sqlite3

    import asyncpg
    from sqlalchemy.engine import make_url

    from hub.models import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    found = make_url(url)
    if found.get_backend_name() != "postgresql":
        deletes = "".join(f"DELETE FROM {t};" for t in tables)
        with contextlib.closing(sqlite3.connect(found.database or "")) as conn:
            conn.executescript(f"BEGIN;{deletes}COMMIT;")
        return
    conn = await asyncpg.connect(found.set(drivername="postgresql").render_as_string(False))
    try:
        sized = " UNION ALL ".join(
            f"SELECT '{t}' WHERE (SELECT count(*) FROM (SELECT FROM {t} LIMIT {_MANY}) s) = {_MANY}"
            for t in tables
        )
        full = {row[0] for row in await conn.fetch(sized)}
        truncate = f"TRUNCATE {', '.join(sorted(full))} CASCADE;" if full else ""
        deletes = "".join(f"DELETE FROM {t};" for t in tables if t not in full)
        await conn.execute(
            f"BEGIN;{truncate}{deletes}SELECT setval(format('%I.%I', schemaname, sequencename), "
            "1, false) FROM pg_sequences WHERE schemaname = current_schema();COMMIT;"
        )
    finally:
        await conn.close()


_MANY = 5000  # rows from which a table is truncated rather than deleted from
