"""The mall with partner merchants: merged catalog under a time budget, bookings at
partners, failures that cost no point, and cancellations the partner reports."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.config import Settings
from tests.helpers import (
    Api,
    accrue,
    balances,
    cancel_redemption,
    enroll,
    live_app,
    obligations,
    outbox,
    redeem,
    register,
    set_rate,
    upsert_reward,
    verify_ledger,
)
from tests.mall.test_mall_compensating_steps import _drive
from tests.partners import Partners, partners, register_connected

CST = dt.timezone(dt.timedelta(hours=8))
PAGE = """
query Page($filter: RewardFilter) {
  rewards(filter: $filter, first: 100) {
    edges { node { id kind title price priceIn(program: "HUB") merchant { id } } }
    unavailableMerchants { id }
  }
}"""


@pytest.fixture
async def live() -> AsyncIterator[Partners]:
    async with partners() as found:
        yield found


async def _world(api: Api, live: Partners) -> str:
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register_connected(
        api, live, "skyair", "SKYMILES", "AIRLINE", pointValue="0.08", compensationPercent="20"
    )
    await register_connected(api, live, "lotus", "LOTUS", "HOTEL", pointValue="0.05")
    await register_connected(api, live, "westlake", "WESTLAKE", "SCENIC", pointValue="0.10")
    for code in ("SKYMILES", "LOTUS", "WESTLAKE"):
        await set_rate(api, "HUB", code, "1")
    member = await enroll(api, "HUB", "H-1", "Zhao Lei")
    await accrue(api, member, "HUB", "100000")
    await live.member("skyair", "SK-1", 0)
    await enroll(api, "SKYMILES", "SK-1", member_id=member)
    return member


@pytest.fixture
async def hub(settings: Settings, live: Partners) -> AsyncIterator[tuple[str, Api]]:
    await live.start("skyair", "AIRLINE")
    await live.start("lotus", "HOTEL")
    await live.start("westlake", "SCENIC")
    configured = settings.model_copy(
        update={"partner_secrets": live.secrets(), "allow_private_partners": True}
    )
    async with live_app(configured) as served:
        for running in live.running.values():
            running.sandbox.hub_url = served[0]
        yield served


async def test_catalog_merges_partner_rewards_with_prices(
    hub: tuple[str, Api], live: Partners
) -> None:
    _, api = hub
    await _world(api, live)
    data = await api.gql(PAGE)
    kinds = {e["node"]["kind"] for e in data["rewards"]["edges"]}
    assert {
        "AWARD_FLIGHT",
        "LOUNGE_ACCESS",
        "HOTEL_NIGHT",
        "ROOM_UPGRADE",
        "HOTEL_SERVICE",
        "ATTRACTION_TICKET",
    } <= kinds
    assert data["rewards"]["unavailableMerchants"] == []
    by_id = {e["node"]["id"]: e["node"] for e in data["rewards"]["edges"]}
    assert by_id["lotus:LATE-CHECKOUT"]["price"] == 800
    assert by_id["lotus:LATE-CHECKOUT"]["priceIn"] == 800


async def test_scenic_points_tickets_offer_the_windows_of_paid_tickets(
    hub: tuple[str, Api], live: Partners
) -> None:
    _, api = hub
    await _world(api, live)
    await api.gql(PAGE)
    day = (dt.datetime.now(CST) + dt.timedelta(days=1)).date()
    data = await api.gql(
        'query($d: Date) { reward(id: "westlake:WL-BOAT") { slots(date: $d) '
        "{ id startsAt endsAt remaining } } }",
        {"d": day.isoformat()},
    )
    windows = [(s["startsAt"], s["endsAt"]) for s in data["reward"]["slots"]]
    import httpx

    from connectors import signing

    secret = live.sandbox("westlake").secret
    async with httpx.AsyncClient() as client:
        paid = await client.get(
            f"{live.url('westlake')}/tickets/WL-BOAT/timeslots",
            params={"date": day.isoformat(), "channel": "cash"},
            headers=signing.headers(secret, b""),
        )
    cash = [
        (dt.datetime.fromisoformat(s["enter_from"]), dt.datetime.fromisoformat(s["enter_until"]))
        for s in paid.json()["timeslots"]
    ]
    ours = [(dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in windows]
    assert len(ours) == 4 and ours == cash


async def test_redeem_a_ticket_at_the_partner_then_cancel(
    hub: tuple[str, Api], live: Partners, db_url: str
) -> None:
    _, api = hub
    member = await _world(api, live)
    await api.gql(PAGE)
    day = (dt.datetime.now(CST) + dt.timedelta(days=1)).date()
    slots = await api.gql(
        'query($d: Date) { reward(id: "westlake:LEIFENG") { slots(date: $d) { id } } }',
        {"d": day.isoformat()},
    )
    slot = slots["reward"]["slots"][1]["id"]
    done = await redeem(api, member, "westlake:LEIFENG", "HUB", slot_id=slot, quantity=2)
    assert done["userErrors"] == []
    assert done["redemption"]["status"] == "CONFIRMED"
    assert done["redemption"]["points"] == 800
    assert done["redemption"]["fulfillmentRef"].startswith("WL")
    assert (await balances(api, member))["HUB"] == 99_200
    booking = live.sandbox("westlake").bookings[done["redemption"]["fulfillmentRef"]]
    assert booking["quantity"] == 2 and booking["status"] == "CONFIRMED"
    cancelled = await cancel_redemption(api, done["redemption"]["id"])
    assert cancelled["redemption"]["status"] == "CANCELLED"
    assert booking["status"] == "CANCELLED"
    assert (await balances(api, member))["HUB"] == 100_000
    assert await verify_ledger(db_url) == []


async def test_a_booking_the_partner_refuses_leaves_the_balance_unchanged(
    hub: tuple[str, Api], live: Partners, db_url: str
) -> None:
    _, api = hub
    member = await _world(api, live)
    await api.gql(PAGE)
    day = (dt.datetime.now(CST) + dt.timedelta(days=2)).date()
    slots = await api.gql(
        'query($d: Date) { reward(id: "lotus:DLX-NIGHT") { slots(date: $d) { id remaining } } }',
        {"d": day.isoformat()},
    )
    slot = slots["reward"]["slots"][0]
    # Someone else books the last rooms at the hotel directly: the hub's cache is stale.
    live.sandbox("lotus").capacity[slot["id"].split("@", 1)[1]] = 0
    failed = await redeem(api, member, "lotus:DLX-NIGHT", "HUB", slot_id=slot["id"])
    assert failed["redemption"]["status"] == "FAILED"
    assert failed["userErrors"][0]["code"] == "SLOT_UNAVAILABLE"
    assert (await balances(api, member))["HUB"] == 100_000
    assert await obligations(db_url) == []
    await live.faults("lotus", error_rate=1.0, operations=["book"])
    day2 = await api.gql('query { reward(id: "lotus:LATE-CHECKOUT") { slots { id } } }')
    pending = await redeem(
        api, member, "lotus:LATE-CHECKOUT", "HUB", slot_id=day2["reward"]["slots"][0]["id"]
    )
    assert pending["redemption"]["status"] == "PENDING"  # the hotel answered 503: retried later
    assert (await balances(api, member))["HUB"] == 100_000 - 800  # held, not lost
    held = await api.gql(
        'query($id: ID!) { member(id: $id) { account(program: "HUB") { held } } }', {"id": member}
    )
    assert held["member"]["account"]["held"] == 800
    assert await verify_ledger(db_url) == []


async def test_flight_cancellation_webhook_refunds_and_compensates(
    hub: tuple[str, Api], live: Partners, db_url: str
) -> None:
    _, api = hub
    member = await _world(api, live)
    await api.gql(PAGE)
    day = (dt.datetime.now(CST) + dt.timedelta(days=3)).date()
    seats = await api.gql(
        'query($d: Date) { reward(id: "skyair:AW-PVG-PEK-Y") { slots(date: $d) { id } } }',
        {"d": day.isoformat()},
    )
    done = await redeem(
        api, member, "skyair:AW-PVG-PEK-Y", "HUB", slot_id=seats["reward"]["slots"][0]["id"]
    )
    assert done["redemption"]["status"] == "CONFIRMED"
    assert (await balances(api, member))["HUB"] == 88_000
    outcome = await live.control("skyair", "flights/SA101/cancel", {"date": day.isoformat()})
    assert outcome["hubStatus"] == 200
    after = await api.gql(
        "query($id: ID!) { redemption(id: $id) { status refundedPoints compensationPoints } }",
        {"id": done["redemption"]["id"]},
    )
    assert after["redemption"] == {
        "status": "CANCELLED",
        "refundedPoints": 12_000,
        "compensationPoints": 2_400,
    }
    assert (await balances(api, member))["HUB"] == 100_000 + 2_400
    owed = await obligations(db_url)
    assert [(o["kind"], o["debtor"], o["creditor"], o["amount"]) for o in owed] == [
        ("REDEMPTION", "haowu", "skyair", Decimal("960.00")),
        ("REFUND", "skyair", "haowu", Decimal("960.00")),
        ("COMPENSATION", "skyair", "haowu", Decimal("240.00")),
    ]
    assert await verify_ledger(db_url) == []


async def test_twenty_partners_one_hangs_the_page_keeps_its_budget(
    settings: Settings, live: Partners
) -> None:
    # The budget leaves a loaded CI machine time to hear 19 partners asked for the first
    # time (0.4 s did not, with every test file's servers on 2 cores); the hang is far
    # beyond it.
    budget = 1.5
    configured_partners = []
    for i in range(20):
        running = await live.start(
            f"shop{i:02d}",
            "HTTP",
            rewards=[{"ref": f"ITEM-{i}", "kind": "GOODS", "title": f"Item {i}", "price": 100 + i}],
        )
        configured_partners.append(running)
    hang = 8.0
    await live.faults("shop07", latency_ms=int(hang * 1000), operations=["rewards"])
    configured = _budgeted(settings, live, budget)
    async with live_app(configured) as (_, api):
        await register(api, "haowu", "HUB", category="PLATFORM")
        for i in range(20):
            # shop07's calls may take longer than the page's budget (as the demo's may).
            patience = {"timeoutSeconds": hang + 2} if i == 7 else {}
            await register_connected(api, live, f"shop{i:02d}", f"SHOP{i:02d}", "HTTP", **patience)
        started = time.perf_counter()
        data = await api.gql(PAGE)
        elapsed = time.perf_counter() - started
        assert [m["id"] for m in data["rewards"]["unavailableMerchants"]] == ["shop07"]
        assert len(data["rewards"]["edges"]) == 19
        # Answered without the hanging partner (listed unavailable, not waited for). How
        # close to the budget it answers is bench/'s to measure (`python -m bench mall`),
        # not a timed assertion here: a loaded CI machine took 2.2 s for a 0.4 s budget.
        assert elapsed < hang
        # A partner already past the budget is not waited for again while that answer is
        # still awaited: the next page names it at once (it waited the whole budget again,
        # page after page, for as long as the partner hung).
        started = time.perf_counter()
        again = await api.gql(PAGE)
        assert [m["id"] for m in again["rewards"]["unavailableMerchants"]] == ["shop07"]
        assert time.perf_counter() - started < budget * 2 / 3
        # The answer arrives later and refreshes the cache in the background.
        await live.faults("shop07")


async def westlake_listed(api: Api, live: Partners, **config: Any) -> None:
    """The platform's HUB and westlake's connected WESTLAKE at 1:1 (`config`: its
    connector's), the catalog listed once with every partner answering."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register_connected(api, live, "westlake", "WESTLAKE", "SCENIC", **config)
    await set_rate(api, "HUB", "WESTLAKE", "1")
    assert (await api.gql(PAGE))["rewards"]["unavailableMerchants"] == []


def _budgeted(settings: Settings, live: Partners, budget: float) -> Settings:
    """The hub's settings for these partners, with this catalog budget."""
    return settings.model_copy(
        update={
            "partner_secrets": live.secrets(),
            "catalog_budget_seconds": budget,
            "allow_private_partners": True,
        }
    )


async def _ids(data: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in data["rewards"]["edges"]]


async def test_a_partner_listing_the_same_again_is_not_written_again(
    settings: Settings, live: Partners
) -> None:
    """A cold page asks every partner (the cache has run out) but rewrites only the
    listings that changed: the same answer renews its freshness and nothing else."""
    from sqlalchemy import event

    rewards = [{"ref": "TEA", "kind": "GOODS", "title": "Tea", "price": 100}]
    await live.start("shop", "HTTP", rewards=rewards)
    configured = settings.model_copy(
        update={
            "partner_secrets": live.secrets(),
            "allow_private_partners": True,
            "catalog_cache_seconds": 0.001,
        }
    )
    async with live_app(configured) as (_, api):
        await register(api, "haowu", "HUB", category="PLATFORM")
        await register_connected(api, live, "shop", "SHOP", "HTTP")
        assert len((await api.gql(PAGE))["rewards"]["edges"]) == 1  # stored once
        shop = live.sandbox("shop")
        asked = shop.stats["rewards"]
        engine = api.app.state.runtime.db.engine.sync_engine
        sent: list[str] = []

        def count(*args: Any) -> None:
            sent.append(str(args[2]).split()[0])

        event.listen(engine, "before_cursor_execute", count)
        try:
            again = await api.gql(PAGE)
            assert again == await api.gql(PAGE)
            assert shop.stats["rewards"] >= asked + 2  # the partner was asked each time
            assert {"INSERT", "UPDATE", "DELETE"}.isdisjoint(sent), sent
            # A listing that changed is written.
            shop.catalog[0]["price"] = 120
            prices = [e["node"]["price"] for e in (await api.gql(PAGE))["rewards"]["edges"]]
            assert prices == [120]
            assert "UPDATE" in sent
        finally:
            event.remove(engine, "before_cursor_execute", count)


async def test_available_on_lists_rewards_with_an_open_slot_that_day(
    hub: tuple[str, Api], live: Partners
) -> None:
    """availableOn keeps the rewards without slots and the slotted ones with an open slot
    that day (in the settlement time zone): the partners are asked for that day's slots
    (within the catalog's budget), not only those a slots query happened to list before.
    A slot that has started is never listed, nor makes its reward available: it cannot be
    booked. A partner that does not answer is named in unavailableMerchants."""
    _, api = hub
    await _world(api, live)
    everything = (await api.gql(PAGE))["rewards"]["edges"]
    slotted = {"HOTEL_NIGHT", "ROOM_UPGRADE", "HOTEL_SERVICE", "AWARD_FLIGHT", "ATTRACTION_TICKET"}
    unslotted = sorted(e["node"]["id"] for e in everything if e["node"]["kind"] not in slotted)
    with_slots = sorted(e["node"]["id"] for e in everything if e["node"]["kind"] in slotted)
    assert unslotted and "westlake:WL-BOAT" in with_slots
    today = dt.datetime.now(CST).date()
    day = today + dt.timedelta(days=1)

    async def available(on: dt.date) -> tuple[list[str], list[str]]:
        data = (await api.gql(PAGE, {"filter": {"availableOn": on.isoformat()}}))["rewards"]
        ids = sorted(e["node"]["id"] for e in data["edges"])
        return ids, [m["id"] for m in data["unavailableMerchants"]]

    async def slots(reward: str, on: dt.date) -> list[str]:
        query = "query($r: ID!, $d: Date) { reward(id: $r) { slots(date: $d) { id } } }"
        data = await api.gql(query, {"r": reward, "d": on.isoformat()})
        return [s["id"] for s in data["reward"]["slots"]]

    listed, unavailable = await available(day)  # no slots query before it
    assert unavailable == []
    open_that_day = sorted([r for r in with_slots if await slots(r, day)])
    assert "westlake:WL-BOAT" in open_that_day
    assert listed == sorted([*unslotted, *open_that_day])
    # The day before: the partners list that day's slots, but every one has started.
    yesterday = today - dt.timedelta(days=1)
    assert await available(yesterday) == (unslotted, [])
    assert await slots("westlake:WL-BOAT", yesterday) == []
    # A partner down: its slots of a day not yet asked are unknown, and it is named.
    await live.stop("westlake")
    later = day + dt.timedelta(days=2)
    listed, unavailable = await available(later)
    assert unavailable == ["westlake"] and "westlake:WL-BOAT" not in listed


async def test_pages_for_many_days_at_once_store_the_slots_together(
    hub: tuple[str, Api], live: Partners
) -> None:
    """availableOn pages for many days at once ask each slotted partner reward for each
    day, and store what the partners answered a few transactions at a time, not one per
    reward and day: SQLite takes write transactions in turn, and 60 days at once took the
    demo past the catalog's budget, naming every partner unavailable on every page."""
    _, api = hub
    await _world(api, live)
    assert (await api.gql(PAGE))["rewards"]["unavailableMerchants"] == []  # catalogs kept
    db = api.app.state.runtime.db
    writes: list[str] = []
    transaction = db.transaction

    async def counted(work: Any, *args: Any, **kwargs: Any) -> Any:
        writes.append(getattr(work, "__qualname__", ""))
        return await transaction(work, *args, **kwargs)

    db.transaction = counted
    today = dt.datetime.now(CST).date()
    days = [(today + dt.timedelta(days=n)).isoformat() for n in range(1, 21)]
    try:
        pages = await asyncio.gather(
            *(api.gql(PAGE, {"filter": {"availableOn": day}}) for day in days)
        )
    finally:
        del db.transaction
    # One a slotted reward and day before (nine rewards, twenty days); a few now.
    assert 1 <= len(writes) <= len(days) // 2, len(writes)
    for day, page in zip(days, pages, strict=True):
        if page["rewards"]["unavailableMerchants"] == []:  # then its listing is that day's
            assert page == await api.gql(PAGE, {"filter": {"availableOn": day}}), day


async def test_available_on_waits_for_a_silent_partner_once(
    hub: tuple[str, Api], live: Partners
) -> None:
    """availableOn asks the partners for the day's slots within the catalog's budget; a
    partner still silent after a whole budget is named at once by the pages that follow,
    not waited for again by each."""
    _, api = hub
    # Its calls may take longer than the budget (1.5 s), as the demo's may.
    await westlake_listed(api, live, timeoutSeconds=10)
    await live.faults("westlake", latency_ms=8000, operations=["slots"])
    day = (dt.datetime.now(CST) + dt.timedelta(days=1)).date().isoformat()
    try:
        pages = []
        for _ in range(3):
            started = time.perf_counter()
            data = await api.gql(PAGE, {"filter": {"availableOn": day}})
            pages.append(time.perf_counter() - started)
            assert [m["id"] for m in data["rewards"]["unavailableMerchants"]] == ["westlake"]
        budget = 1.5
        assert pages[0] >= budget  # the first page gave it the budget ...
        assert max(pages[1:]) < budget * 2 / 3, pages  # ... the next ones did not wait
    finally:
        await live.faults("westlake")


async def test_a_hold_confirmed_before_migration_0027_is_still_captured(
    hub: tuple[str, Api], live: Partners, db_url: str
) -> None:
    """Before migration 0027 a partner hold's confirmation was kept under the hub's key of
    it, the reference its capture names. A redemption held then and captured now is not
    taken for a reused reference (Saga.names_earlier: a capture names its hold)."""
    _, api = hub
    member = await _world(api, live)
    await live.member("lotus", "L-1", 5_000)
    await enroll(api, "LOTUS", "L-1", member_id=member)
    await api.gql(PAGE)
    slots = await api.gql('query { reward(id: "lotus:LATE-CHECKOUT") { slots { id } } }')
    await live.faults("lotus", error_rate=1.0, operations=["book"])
    pending = await redeem(
        api, member, "lotus:LATE-CHECKOUT", "LOTUS", slot_id=slots["reward"]["slots"][0]["id"]
    )
    assert pending["redemption"]["status"] == "PENDING", pending
    rid = pending["redemption"]["id"]
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            held = await conn.execute(
                text(
                    "UPDATE partner_outcomes SET partner_ref = :key, ref_key = :key "
                    "WHERE saga_id = :rid AND step = 'HOLD'"
                ),
                {"key": f"{rid}:hold", "rid": rid},
            )
        assert held.rowcount == 1
    finally:
        await engine.dispose()
    await live.faults("lotus")
    await _drive(api)
    done = await api.gql("query($id: ID!) { redemption(id: $id) { status } }", {"id": rid})
    assert done["redemption"]["status"] == "CONFIRMED"
    assert await verify_ledger(db_url) == []


async def test_a_paying_partner_that_is_down_is_named_by_pay_with(
    hub: tuple[str, Api], live: Partners, db_url: str
) -> None:
    """The points of a redemption are taken in `payWith`'s program: a partner there that
    cannot be reached fails the redemption with PARTNER_UNAVAILABLE on `payWith` (as a
    hosted program's refusal is named), not on the member, and takes no mile."""
    _, api = hub
    member = await _world(api, live)
    await live.member("skyair", "SK-1", 5_000)
    await set_rate(api, "SKYMILES", "HUB", "1")
    reward = await upsert_reward(
        api, ref="MUG", kind="GOODS", title="Hub mug", price=300, stock=5, merchantId="haowu"
    )
    await live.stop("skyair")
    failed = await redeem(api, member, reward["id"], "SKYMILES")
    assert failed["redemption"]["status"] == "FAILED", failed
    (error,) = failed["userErrors"]
    assert (error["code"], error["field"]) == ("PARTNER_UNAVAILABLE", ["input", "payWith"]), error
    await live.restart("skyair")
    assert live.balance("skyair", "SK-1") == 5_000
    # The merchants concerned hear of it, as of a failed conversion, with why.
    rid = failed["redemption"]["id"]
    told = [
        (k, to, data) for k, to, data in await outbox(db_url) if data.get("redemptionId") == rid
    ]
    assert sorted((k, to) for k, to, _ in told) == [
        ("REDEMPTION_FAILED", "haowu"),
        ("REDEMPTION_FAILED", "skyair"),
    ], told
    assert {data["failure"]["code"] for _, _, data in told} == {"PARTNER_UNAVAILABLE"}
    shown = await api.gql(
        "query($id: ID!) { redemption(id: $id) { status failure { field code } } }", {"id": rid}
    )
    assert shown["redemption"] == {
        "status": "FAILED",
        "failure": {"field": ["input", "payWith"], "code": "PARTNER_UNAVAILABLE"},
    }
    assert await obligations(db_url) == []
    assert await verify_ledger(db_url) == []
