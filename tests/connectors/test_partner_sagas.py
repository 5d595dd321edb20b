"""Conversions with partners on either side: no fault loses or doubles a point."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sqlalchemy import update

from connectors import signing
from hub.db import utcnow
from hub.exchange import saga
from hub.models import Conversion
from hub.runtime import Runtime
from tests.helpers import (
    Api,
    balances,
    convert,
    enroll,
    obligations,
    outbox,
    register,
    set_rate,
    verify_ledger,
)
from tests.partners import Partners, register_connected

START = {"SKYMILES": 50_000, "LOTUS": 0, "JADE": 10_000}


async def _world(hub: Api, partners: Partners) -> str:
    await register(hub, "haowu", "HUB", category="PLATFORM")
    await register_connected(hub, partners, "skyair", "SKYMILES", "AIRLINE", pointValue="0.08")
    await register_connected(hub, partners, "lotus", "LOTUS", "HOTEL", pointValue="0.05")
    await register(hub, "jade", "JADE", category="RESTAURANT", pointValue="0.125")
    await partners.member("skyair", "SK-1", START["SKYMILES"])
    await partners.member("lotus", "L-1", START["LOTUS"])
    member = await enroll(hub, "SKYMILES", "SK-1", "Chen Jie")
    await enroll(hub, "LOTUS", "L-1", member_id=member)
    await enroll(hub, "JADE", "J-1", member_id=member)
    from tests.helpers import accrue

    await accrue(hub, member, "JADE", str(START["JADE"]))
    await set_rate(hub, "SKYMILES", "LOTUS", "1.5")
    await set_rate(hub, "JADE", "LOTUS", "2")
    await set_rate(hub, "SKYMILES", "JADE", "0.5")
    return member


def _runtime(hub: Api) -> Runtime:
    runtime: Runtime = hub.app.state.runtime
    return runtime


async def _drive(hub: Api, rounds: int = 8) -> None:
    """Run the saga sweeper as `hub serve` would, without waiting out its backoff."""
    runtime = _runtime(hub)
    for _ in range(rounds):
        async with runtime.db.write() as session:
            await session.execute(
                update(Conversion)
                .where(Conversion.status == "PENDING")
                .values(next_attempt_at=None, updated_at=utcnow() - dt.timedelta(seconds=5))
            )
        await saga.resume_due(runtime.db, runtime.settings, runtime.connectors)


def _points(partners: Partners, hub_balances: dict[str, int]) -> dict[str, int]:
    return {
        "SKYMILES": partners.balance("skyair", "SK-1"),
        "LOTUS": partners.balance("lotus", "L-1"),
        "JADE": hub_balances["JADE"],
    }


async def _status(hub: Api, saga_id: str, of: str = "conversion") -> str:
    """The status of a conversion (or, with `of="redemption"`, a redemption)."""
    data = await hub.gql(f"query($id: ID!) {{ {of}(id: $id) {{ status }} }}", {"id": saga_id})
    return str(data[of]["status"])


async def test_connected_to_connected_conversion(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    member = await _world(hub, live_partners)
    payload = await convert(hub, member, "SKYMILES", "LOTUS", 1000)
    assert payload["userErrors"] == []
    assert payload["conversion"]["status"] == "COMPLETED"
    assert _points(live_partners, await balances(hub, member)) == {
        "SKYMILES": 49_000,
        "LOTUS": 1500,
        "JADE": 10_000,
    }
    owed = await obligations(db_url)
    assert [(o["debtor"], o["creditor"], o["points"]) for o in owed] == [("skyair", "lotus", 1500)]
    stats = live_partners.sandbox("skyair").stats
    assert stats["verified"] >= 1 and stats["bad_signatures"] == 0
    assert await verify_ledger(db_url) == []


async def test_balances_of_connected_programs_come_from_the_partner(
    hub: Api, live_partners: Partners
) -> None:
    member = await _world(hub, live_partners)
    assert await balances(hub, member) == {"JADE": 10_000, "LOTUS": 0, "SKYMILES": 50_000}


async def test_partner_refuses_unsigned_or_wrongly_signed_calls(live_partners: Partners) -> None:
    url = live_partners.url("skyair") + "/v1/members/SK-1/miles"
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 401
        forged = signing.headers("not-the-secret", b"")
        assert (await client.get(url, headers=forged)).status_code == 401
        good = signing.headers(live_partners.sandbox("skyair").secret, b"")
        assert (await client.get(url, headers=good)).status_code == 404  # no such member yet


SIDES = {"debit": ("skyair", "JADE"), "credit": ("lotus", "LOTUS")}
FAULTS = ["timeout_before_apply", "lose_response", "error_5xx", "refused"]


@pytest.mark.parametrize("side", ["debit", "credit"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_faults_never_lose_or_double_points(
    hub: Api, live_partners: Partners, db_url: str, side: str, fault: str
) -> None:
    member = await _world(hub, live_partners)
    # debit side: SKYMILES (airline) -> JADE (hosted); credit side: JADE (hosted) -> LOTUS (hotel)
    faulty, _ = SIDES[side]
    source, target = ("SKYMILES", "JADE") if side == "debit" else ("JADE", "LOTUS")
    points = 1000
    credited = 500 if side == "debit" else 2000
    before = _points(live_partners, await balances(hub, member))
    operation = side
    if fault == "refused":
        await live_partners.stop(faulty)
    elif fault == "error_5xx":
        await live_partners.faults(faulty, error_rate=1.0, operations=[operation])
    else:
        await live_partners.faults(
            faulty, **{fault: True}, hang_seconds=1.0, operations=[operation]
        )
    payload = await convert(hub, member, source, target, points, idempotency_key="conv-1")
    conversion = payload["conversion"]
    # The fault is repaired; the sweeper finishes what was left.
    if fault == "refused":
        await live_partners.restart(faulty)
    else:
        await live_partners.faults(faulty)
    await _drive(hub)
    status = await _status(hub, conversion["id"])
    after = _points(live_partners, await balances(hub, member))
    converted = {**before, source: before[source] - points, target: before[target] + credited}
    assert status in {"COMPLETED", "FAILED", "REVERSED"}
    assert after == (converted if status == "COMPLETED" else before), (status, before, after)
    # A retried request never moves points twice.
    again = await convert(hub, member, source, target, points, idempotency_key="conv-1")
    assert again["conversion"]["id"] == conversion["id"]
    await _drive(hub)
    assert _points(live_partners, await balances(hub, member)) == after
    owed = await obligations(db_url)
    assert len(owed) == (1 if status == "COMPLETED" else 0)
    assert await verify_ledger(db_url) == []


async def test_a_refused_credit_reverses_the_debit(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    member = await _world(hub, live_partners)
    # The hotel does not know this guest: it refuses the credit for good.
    del live_partners.sandbox("lotus").ledger.members["L-1"]
    payload = await convert(hub, member, "SKYMILES", "LOTUS", 1000)
    assert payload["conversion"]["status"] == "REVERSED"
    [error] = payload["userErrors"]
    # The hub took the request; the partner refused the move: not a NOT_FOUND of the input.
    assert (error["code"], error["field"]) == ("PARTNER_REJECTED", ["input", "to"])
    assert "lotus" in error["message"] and "were returned" in error["message"]
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"]
    assert await obligations(db_url) == []


async def test_a_reversal_still_under_way_is_not_said_to_be_done(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    member = await _world(hub, live_partners)
    del live_partners.sandbox("lotus").ledger.members["L-1"]
    # The airline takes the debit, then fails every reversal: the points must wait.
    await live_partners.faults("skyair", error_rate=1.0, operations=["reverse"])
    payload = await convert(hub, member, "SKYMILES", "LOTUS", 1000, idempotency_key="c-1")
    assert payload["conversion"]["status"] == "PENDING"
    [error] = payload["userErrors"]
    assert error["code"] == "PARTNER_REJECTED"
    assert "were returned" not in error["message"]
    assert "being returned" in error["message"]
    # On their way back: taken from the member, and nothing will be credited.
    assert (payload["conversion"]["pointsDebited"], payload["conversion"]["pointsCredited"]) == (
        1000,
        0,
    )
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"] - 1000
    again = await convert(hub, member, "SKYMILES", "LOTUS", 1000, idempotency_key="c-1")
    assert "were returned" not in again["userErrors"][0]["message"]
    # The airline recovers: the reversal lands, and only now are the points said returned.
    await live_partners.faults("skyair")
    await _drive(hub)
    assert await _status(hub, payload["conversion"]["id"]) == "REVERSED"
    done = await convert(hub, member, "SKYMILES", "LOTUS", 1000, idempotency_key="c-1")
    assert done["conversion"]["status"] == "REVERSED"
    assert "were returned" in done["userErrors"][0]["message"]
    # Reversed: nothing moved in the end, as a receipt or a reconciliation must read it.
    assert (done["conversion"]["pointsDebited"], done["conversion"]["pointsCredited"]) == (0, 0)
    # ... and so do the merchants' webhooks, once, when the reversal has landed.
    told = [data for kind, _, data in await outbox(db_url) if kind == "CONVERSION_FAILED"]
    assert [(d["status"], d["pointsDebited"], d["pointsCredited"]) for d in told] == [
        ("REVERSED", 0, 0)
    ] * 2
    # ... with why, as REDEMPTION_FAILED says it (outside attack helper-76: it said nothing),
    # without the partner's own words (they are for the member and ADMIN).
    said = done["userErrors"][0]["message"]
    assert {(d["failure"]["code"], d["failure"]["message"]) for d in told} == {
        (
            "PARTNER_REJECTED",
            said.replace("No member L-1.", "The partner's reason is shown to the member"),
        )
    }, (said, told)
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"]
    assert await obligations(db_url) == []
    assert await verify_ledger(db_url) == []


async def test_breaker_opens_then_answers_partner_unavailable_without_calling(
    hub: Api, live_partners: Partners
) -> None:
    member = await _world(hub, live_partners)
    await live_partners.stop("skyair")
    for _ in range(5):  # each refused connection counts as a failure
        failed = await convert(hub, member, "SKYMILES", "JADE", 100)
        # The source's partner could not be reached: `from` names it (outside attack
        # helper-75: it named `points`, as if the amount were wrong).
        [error] = failed["userErrors"]
        assert (error["code"], error["field"]) == ("PARTNER_UNAVAILABLE", ["input", "from"])
    # The conversion keeps why, for a caller that asks later.
    shown = await hub.gql(
        "query($id: ID!) { conversion(id: $id) { status failure { field code message } } }",
        {"id": failed["conversion"]["id"]},
    )
    assert shown["conversion"] == {"status": "FAILED", "failure": error}
    breaker = _runtime(hub).connectors.breakers["skyair"]  # type: ignore[attr-defined]
    assert breaker.state == "OPEN"
    await live_partners.restart("skyair")
    calls_before = sum(live_partners.sandbox("skyair").stats.values())
    started = utcnow()
    fast = await convert(hub, member, "SKYMILES", "JADE", 100)
    elapsed = (utcnow() - started).total_seconds()
    assert fast["userErrors"][0]["code"] == "PARTNER_UNAVAILABLE"
    assert "try again" in fast["userErrors"][0]["message"]
    assert sum(live_partners.sandbox("skyair").stats.values()) == calls_before  # nothing sent
    assert elapsed < 0.5  # below even one partner timeout: it did not wait for the partner
    # After the cooldown one probe goes through and closes the breaker again.
    breaker.opened_at -= breaker.cooldown_seconds
    ok = await convert(hub, member, "SKYMILES", "JADE", 100)
    assert ok["conversion"]["status"] == "COMPLETED"
    assert breaker.state == "CLOSED"


async def test_webhook_signature_freshness_and_replay(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    await _world(hub, live_partners)
    secret = live_partners.sandbox("skyair").secret
    body = json.dumps(
        {"eventId": "E1", "type": "flight.cancelled", "flight": "SA101", "bookings": []}
    ).encode()

    async def post(headers: dict[str, str]) -> httpx.Response:
        return await hub.client.post(
            "/webhooks/skyair",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )

    assert (await post(signing.headers("wrong", body, prefix="Partner"))).status_code == 401
    stale_ts = str(int(utcnow().timestamp()) - 301)
    stale = {
        "X-Partner-Timestamp": stale_ts,
        "X-Partner-Signature": signing.sign(secret, stale_ts, body),
    }
    assert (await post(stale)).status_code == 401
    assert await _events(db_url) == 0
    good = await post(signing.headers(secret, body, prefix="Partner"))
    assert good.status_code == 200, good.text
    replay = await post(signing.headers(secret, body, prefix="Partner"))
    assert replay.status_code == 409
    assert await _events(db_url) == 1
    unknown = await hub.client.post("/webhooks/jade", content=body)
    assert unknown.status_code == 404


async def _events(url: str) -> int:
    from sqlalchemy import func, select

    from hub.db import Database
    from hub.models import PartnerEvent

    db = Database(url)
    try:
        async with db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(PartnerEvent)) or 0)
    finally:
        await db.dispose()


async def test_a_partner_that_does_not_answer_shows_its_last_known_balance(
    hub: Api, live_partners: Partners
) -> None:
    member = await _world(hub, live_partners)
    query = (
        "query($id: ID!) { member(id: $id) { accounts { program { code } balance balanceAsOf } } }"
    )
    live = await hub.gql(query, {"id": member})
    accounts = {a["program"]["code"]: a for a in live["member"]["accounts"]}
    assert accounts["SKYMILES"]["balance"] == 50_000
    assert accounts["JADE"]["balanceAsOf"] is None  # hosted: always live
    await live_partners.stop("skyair")
    later = await hub.gql(query, {"id": member})
    cached = {a["program"]["code"]: a for a in later["member"]["accounts"]}
    assert cached["SKYMILES"]["balance"] == 50_000
    assert cached["SKYMILES"]["balanceAsOf"] == accounts["SKYMILES"]["balanceAsOf"]
    assert cached["JADE"]["balance"] == 10_000


async def test_concurrent_retries_call_the_partner_once_and_keep_its_backoff(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    """Ten identical requests at once (a storefront retrying in a loop) are one conversion,
    and its partner step is called by one of them: the others answer the conversion as it
    stands instead of calling the partner too, and the saga's attempts (its backoff) count
    calls, not requests (outside attack: ten credits went out, and the next attempt was
    put off by minutes)."""
    import asyncio

    member = await _world(hub, live_partners)
    lotus = live_partners.sandbox("lotus")
    await live_partners.faults("lotus", timeout_before_apply=True, hang_seconds=1.0)
    lotus.stats.clear()
    answers = await asyncio.gather(
        *(convert(hub, member, "JADE", "LOTUS", 1000, idempotency_key="storm") for _ in range(10))
    )
    assert len({a["conversion"]["id"] for a in answers}) == 1, answers
    assert lotus.stats["credit"] == 1, dict(lotus.stats)
    async with _runtime(hub).db.read() as session:
        row = await session.get(Conversion, answers[0]["conversion"]["id"])
        assert row is not None and row.status == "PENDING" and row.attempts == 1, row
    await live_partners.faults("lotus")
    await _drive(hub)
    assert await _status(hub, answers[0]["conversion"]["id"]) == "COMPLETED"
    assert live_partners.balance("lotus", "L-1") == START["LOTUS"] + 2000
    assert await verify_ledger(db_url) == []
