"""Several replicas (issue 16): two `hub serve` processes on different ports over one
PostgreSQL database and one Redis act as one hub. A rate limit is one bucket whichever
process is asked; a conversion left pending against a partner that was down is resumed
by one process, its partner call sent once; both processes asked to settle the same
date at once make one batch."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.db import Database
from hub.migrate import upgrade
from hub.models import Conversion, Obligation, SettlementBatch
from hub.obligation_rules import unsettled
from tests.helpers import (
    Api,
    accrue,
    balances,
    convert,
    create_key,
    enroll,
    obligations,
    register,
    set_rate,
    verify_ledger,
)
from tests.partners import Partners, partners, register_connected
from tests.process import HubProcess, partner_env
from tests.shared_redis import REDIS_URL, keys_under, needs_redis, own_prefix

POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL")

pytestmark = [
    needs_redis,
    pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL only: HUB_TEST_POSTGRES_URL"),
]

LIMIT = 120  # requests (root fields) per minute per key, on every replica
THIRTY_FIELDS = "{ " + " ".join(f"v{i}: viewer {{ role }}" for i in range(30)) + " }"
SETTLE = """
mutation($d: Date!) { runSettlement(businessDate: $d) {
  batch { id businessDate } userErrors { code message } } }"""


@pytest.fixture
async def fresh_postgres() -> AsyncIterator[str]:
    """A database of this test's own, migrated, dropped afterwards."""
    assert POSTGRES_URL
    admin = make_url(POSTGRES_URL)
    name = f"hub_replicas_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url)
        yield url
    finally:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()


async def _conversion(url: str, conversion_id: str) -> tuple[str, int]:
    db = Database(url)
    try:
        async with db.read() as session:
            row = await session.get(Conversion, conversion_id)
            assert row is not None
            return row.status, row.attempts
    finally:
        await db.dispose()


async def _batches(url: str, day: dt.date) -> list[str]:
    db = Database(url)
    try:
        async with db.read() as session:
            return list(
                await session.scalars(
                    select(SettlementBatch.id).where(SettlementBatch.business_date == day)
                )
            )
    finally:
        await db.dispose()


async def _unsettled(url: str) -> int:
    db = Database(url)
    try:
        async with db.read() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Obligation)
                .where(unsettled(session.get_bind().dialect.name))
            )
            return int(count or 0)
    finally:
        await db.dispose()


async def _world(api: Api, live: Partners) -> str:
    """JADE is hosted by the hub; LOTUS lives at the hotel's own system (a sandbox)."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register(api, "jade", "JADE", category="RESTAURANT", pointValue="0.125")
    await register_connected(
        api,
        live,
        "lotus",
        "LOTUS",
        "HOTEL",
        pointValue="0.05",
        timeoutSeconds=3,
        breakerFailures=50,
    )
    await live.member("lotus", "L-1", 0)
    member = await enroll(api, "JADE", "J-1", "Chen Jie")
    await enroll(api, "LOTUS", "L-1", member_id=member)
    accrued = await accrue(api, member, "JADE", "1000")
    assert accrued["userErrors"] == [] and accrued["points"] == 1000, accrued
    await set_rate(api, "JADE", "LOTUS", "2")
    return member


async def test_two_replicas_act_as_one_hub(fresh_postgres: str, tmp_path: Path) -> None:
    url = fresh_postgres
    async with partners() as live, own_prefix() as prefix:
        await live.start("lotus", "HOTEL")
        env = {
            **partner_env(live.secrets()),
            "HUB_REDIS_URL": REDIS_URL,
            "HUB_REDIS_PREFIX": prefix,
            "HUB_RATE_LIMIT_PER_MINUTE": str(LIMIT),
            "HUB_SWEEP_INTERVAL_SECONDS": "0.2",
        }
        one = HubProcess(url, env=env, log=tmp_path / "one.log")
        two = HubProcess(url, env=env, log=tmp_path / "two.log")
        await one.start()
        await two.start()
        assert one.port != two.port
        try:
            async with (
                httpx.AsyncClient(base_url=one.url, timeout=30) as c1,
                httpx.AsyncClient(base_url=two.url, timeout=30) as c2,
            ):
                first, second = Api(c1, None), Api(c2, None)
                member = await _world(first, live)
                await _a_limit_is_shared(first, second, prefix)
                conversion = await _a_saga_is_resumed_once(first, second, live, url, member)
                await _one_batch_for_one_date(first, second, url, conversion)
            assert await verify_ledger(url) == []
        finally:
            one.stop()
            two.stop()
        for hub in (one, two):  # no step failed with an exception in either process
            assert hub.log is not None and "Traceback" not in hub.log.read_text()


async def _a_limit_is_shared(first: Api, second: Api, prefix: str) -> None:
    """A key's requests split across both ports draw from one bucket: once the first
    process spent it, the second refuses though it served the key nothing."""
    key = await create_key(first, "ADMIN")
    for _ in range(LIMIT // 30):
        spent = await first.post(THIRTY_FIELDS, key=key)
        assert spent.status_code == 200, spent.text
    refused = await second.post(THIRTY_FIELDS, key=key)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert any(k.startswith(prefix + "ratelimit:key:") for k in await keys_under(prefix))
    # Another key has its own bucket, on either process.
    assert (await second.post(THIRTY_FIELDS)).status_code == 200


async def _a_saga_is_resumed_once(
    first: Api, second: Api, live: Partners, url: str, member: str
) -> str:
    """The hotel is down when a conversion credits it: the conversion stays PENDING. The
    hotel comes back, slow (each call takes 0.8 s, longer than four sweeps of either
    process); both processes' sweepers see the conversion due, one takes it, and the
    hotel is called once and credits once."""
    await live.stop("lotus")
    pending = await convert(first, member, "JADE", "LOTUS", 100, idempotency_key="c-1")
    conversion: dict[str, Any] = pending["conversion"]
    assert conversion["status"] == "PENDING", pending
    await live.restart("lotus")
    await live.faults("lotus", latency_ms=800, operations=["credit"])
    hotel = live.sandbox("lotus")
    assert hotel.stats["credit"] == 0  # the call while it was down never arrived

    status, attempts = "PENDING", 0
    for _ in range(300):
        status, attempts = await _conversion(url, conversion["id"])
        if status != "PENDING":
            break
        await asyncio.sleep(0.1)
    assert status == "COMPLETED", (status, attempts)
    await asyncio.sleep(1.5)  # time for a second resumption, were there one
    assert hotel.stats["credit"] == 1, dict(hotel.stats)
    credits = [k for k in hotel.ledger.moves if k == f"{conversion['id']}:credit"]
    assert credits == [f"{conversion['id']}:credit"]
    assert live.balance("lotus", "L-1") == 200

    # Both processes tell the same story; a retry through either moves nothing.
    for api in (first, second):
        again = await convert(api, member, "JADE", "LOTUS", 100, idempotency_key="c-1")
        assert again["conversion"]["id"] == conversion["id"]
        assert again["conversion"]["status"] == "COMPLETED"
        assert await balances(api, member) == {"JADE": 900, "LOTUS": 200}
    assert hotel.stats["credit"] == 1
    owed = [o for o in await obligations(url) if o["reference"] == conversion["id"]]
    assert [(o["debtor"], o["creditor"], o["points"]) for o in owed] == [("jade", "lotus", 200)]
    return str(conversion["id"])


async def _one_batch_for_one_date(first: Api, second: Api, url: str, conversion: str) -> None:
    """Both processes asked at once to settle the same date: one batch, under the lease."""
    (owed,) = [o for o in await obligations(url) if o["reference"] == conversion]
    day = owed["business_date"]
    answers = await asyncio.gather(
        *(api.gql(SETTLE, {"d": day.isoformat()}) for api in (first, second))
    )
    payloads = [a["runSettlement"] for a in answers]
    made = {p["batch"]["id"] for p in payloads if p["batch"] is not None}
    assert len(made) == 1, payloads
    for p in payloads:  # the other saw the same batch, or was told the run is elsewhere
        assert p["batch"] is not None or [e["code"] for e in p["userErrors"]] == [
            "INVALID_STATE"
        ], p
    assert await _batches(url, day) == sorted(made)
    assert await _unsettled(url) == 0
    # Asked again, either process answers with that batch.
    for api in (first, second):
        again = (await api.gql(SETTLE, {"d": day.isoformat()}))["runSettlement"]
        assert again["batch"]["id"] in made and again["userErrors"] == []
    assert await _batches(url, day) == sorted(made)
