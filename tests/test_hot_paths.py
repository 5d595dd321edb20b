"""Statements sent by the hot reads, counted (never timed), and the in-memory caches behind
them: API keys, programs and rates read once per process, dropped within
HUB_CACHE_CHECK_SECONDS when another process changes them."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import fields
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.config import Settings
from hub.models import Reward
from hub.models.mall import LISTED_COLUMNS, UNLISTED, ListedReward
from hub.runtime import Runtime
from tests.helpers import (
    BALANCES,
    Api,
    accrue,
    balances,
    cancel_redemption,
    convert,
    create_key,
    enroll,
    member_session,
    redeem,
    register,
    running_app,
    set_rate,
    upsert_reward,
    verify_ledger,
)

RATES = "query R($from: ID, $to: ID) { exchangeRates(from: $from, to: $to) { rate } }"


@contextmanager
def statements(api: Api, *, whole: bool = False) -> Iterator[list[str]]:
    """Every statement the app's engine sends meanwhile (SQLite's BEGIN included): its
    first word, or with `whole` its text on one line."""
    runtime: Runtime = api.app.state.runtime
    sent: list[str] = []

    def count(*args: Any) -> None:
        words = str(args[2]).split()
        sent.append(" ".join(words) if whole else words[0])

    for engine in runtime.db.sync_engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        for engine in runtime.db.sync_engines:
            event.remove(engine, "before_cursor_execute", count)


async def _world(api: Api) -> str:
    """A member in three hosted programs, with expiring lots in two."""
    await register(api, "haowu", "HUB", category="PLATFORM", expiryMonths=12)
    await register(api, "teahouse", "TEA", expiryMonths=24)
    await register(api, "bookshop", "BOOK")
    member = await enroll(api, "HUB", "H-1")
    await enroll(api, "TEA", "T-1", member_id=member)
    await enroll(api, "BOOK", "B-1", member_id=member)
    for code, amount in (("HUB", "120"), ("HUB", "30"), ("TEA", "55"), ("BOOK", "7")):
        assert (await accrue(api, member, code, amount))["userErrors"] == []
    return member


@asynccontextmanager
async def two_processes(settings: Settings, interval: float) -> AsyncIterator[tuple[Api, Api]]:
    """Two hub processes over one database, each reading the cache counters at most once
    per `interval`."""
    quick = settings.model_copy(update={"cache_check_seconds": interval})
    async with running_app(quick) as first, running_app(quick) as second:
        yield first, second


def _quiet(settings: Settings) -> Settings:
    """The cache counters not due during the count (their one read is counted apart)."""
    return settings.model_copy(update={"cache_check_seconds": 3600})


async def test_member_balances_are_one_statement_for_every_role(settings: Settings) -> None:
    async with running_app(_quiet(settings)) as api:
        member = await _world(api)
        storefront = await create_key(api, "STOREFRONT")
        merchant = await create_key(api, "MERCHANT", "teahouse")
        token = await member_session(api, member)
        callers: list[dict[str, Any]] = [
            {},  # ADMIN
            {"key": storefront, "member_token": token},
            {"key": merchant},
        ]
        for caller in callers:
            await api.gql(BALANCES, {"id": member}, **caller)  # keys and programs now kept
            with statements(api) as sent:
                data = await api.gql(BALANCES, {"id": member}, **caller)
            assert len(sent) == 1, (caller, sent)
            accounts = {a["program"]["code"]: a for a in data["member"]["accounts"]}
            if caller.get("key") == merchant:
                assert list(accounts) == ["TEA"]
            else:
                assert {c: a["balance"] for c, a in accounts.items()} == {
                    "BOOK": 7,
                    "HUB": 150,
                    "TEA": 55,
                }
                assert [lot["points"] for lot in accounts["HUB"]["expiring"]] == [120, 30]
                assert accounts["BOOK"]["expiring"] == []
            assert all(a["held"] == 0 for a in accounts.values())


async def test_a_member_not_visible_costs_no_statement(settings: Settings) -> None:
    async with running_app(_quiet(settings)) as api:
        member = await _world(api)
        other = await enroll(api, "HUB", "H-2", "Zhang San")
        storefront = await create_key(api, "STOREFRONT")
        token = await member_session(api, member)
        await api.gql(BALANCES, {"id": member}, key=storefront, member_token=token)
        with statements(api) as sent:
            data = await api.gql(BALANCES, {"id": other}, key=storefront, member_token=token)
        assert data["member"] is None
        assert sent == []


async def test_an_accrual_is_one_write_of_each_row_and_few_reads(settings: Settings) -> None:
    """accruePoints: the key claimed in one INSERT, the program, promotions and tiers from
    memory, the member's account (which names the member) and the order's earlier accrual in
    one read (the issued account is kept too); then one write per row (entry, balance, both
    postings at once, lot, purchase amount, the key's result, and the event appended as the
    transaction commits; on PostgreSQL the balance, the entry, its postings and its lot are
    one statement); the answer needs no read back."""
    async with running_app(_quiet(settings)) as api:
        member = await _world(api)
        merchant = await create_key(api, "MERCHANT", "teahouse")
        assert (await accrue(api, member, "TEA", "5", key=merchant))["userErrors"] == []
        with statements(api) as sent:
            made = await accrue(api, member, "TEA", "12.50", key=merchant)
        assert made["userErrors"] == [] and made["points"] == 12
        writes = [s for s in sent if s in {"INSERT", "UPDATE", "WITH"}]
        if settings.database_url.startswith("sqlite"):
            # BEGIN, the read, the key; the entry, the balance, the postings; the lot, the
            # purchase amount, the key's result; the event.
            key, entry, tail = ["INSERT"], ["INSERT", "UPDATE", "INSERT"], ["INSERT"] * 2
            assert writes == [*key, *entry, *tail, "UPDATE", "INSERT"], sent
            assert len(sent) == 1 + 9, sent
        else:
            # The balance, the entry, its postings and its lot in one statement (CTEs).
            assert writes == ["INSERT", "WITH", "INSERT", "UPDATE", "INSERT"], sent
            assert len(sent) == 6, sent


async def test_a_conversion_reads_programs_and_rates_from_memory(settings: Settings) -> None:
    """Programs never change once registered: a conversion's steps (and a redemption's)
    take them from the process's cache instead of reading them in each step; the rate
    versions are kept too (a new one is seen within HUB_CACHE_CHECK_SECONDS)."""
    async with running_app(_quiet(settings)) as api:
        member = await _world(api)
        await set_rate(api, "TEA", "HUB", "1")
        assert (await convert(api, member, "TEA", "HUB", 10))["userErrors"] == []
        with statements(api, whole=True) as sent:
            done = await convert(api, member, "TEA", "HUB", 10)
        assert done["userErrors"] == [] and done["conversion"]["status"] == "COMPLETED"
        assert not [s for s in sent if s.startswith("SELECT programs.")], sent
        # The rate in effect is the kept versions' (the rate set above made this process
        # read them again on its next request, not each conversion).
        assert not [s for s in sent if s.startswith("SELECT exchange_rates.")], sent
        # The member is read once, and locked by that read; both accounts in one read; the
        # key's claim carries the result (the conversion's id is chosen first); the
        # conversion made is not read back; a debit reads the account's lots once (on
        # PostgreSQL with the lock, as arrays of each account's open lots).
        # The answer's member is that row (the caller acted for the member, so may see it).
        assert len([s for s in sent if "FROM members JOIN accounts" in s]) == 1, sent
        lots_read = len([s for s in sent if s.startswith("SELECT lots.")])
        assert lots_read == (1 if settings.database_url.startswith("sqlite") else 0), sent
        assert not [s for s in sent if s.startswith("UPDATE idempotency_keys")], sent
        assert not [s for s in sent if s.startswith("SELECT conversions.")], sent
        # Both accounts are that read's too (a join), so the debit does not read them again;
        # the conversion and its legs are written once, as they stand after the local steps.
        member_read = next(s for s in sent if "FROM members JOIN accounts" in s)
        assert member_read.count("IN (") == 1, member_read
        if not settings.database_url.startswith("sqlite"):
            # Sent with the key's claim, after it (a LATERAL read of the claim's row).
            assert member_read.startswith("WITH claim AS (INSERT INTO idempotency_keys ")
            assert "FOR NO KEY UPDATE OF members, accounts) AS first ON true" in member_read
            assert "array_agg(lots.id ORDER BY lots.expires_at ASC NULLS LAST" in member_read
            # Only the debited account's lots (the destination's may be many, and no debit
            # needs them): the source program's code is the lots' condition.
            lots = member_read.split("FROM lots WHERE ", 1)[1].split(") AS open_lots", 1)[0]
            assert lots.endswith("AND accounts.program_code = $8::VARCHAR"), lots
            assert "accounts.program_code IN ($8::VARCHAR, $10::VARCHAR)" in member_read
        else:
            assert member_read.startswith("SELECT members.")
        assert not [s for s in sent if s.startswith("SELECT accounts.")], sent
        assert not [s for s in sent if s.startswith("UPDATE conversions")], sent
        # The obligation, the conversion and its legs (one row each) and the event (a row
        # for each of the two merchants) are appended at commit.
        appended = ["obligations", "conversions", "conversion_legs", "outbox_events"]
        if settings.database_url.startswith("sqlite"):
            assert [s.split()[2] for s in sent[-4:]] == appended, sent
            assert len(sent) == 17, sent  # BEGIN IMMEDIATE included
        else:
            # Both entries (each with its balance, postings and lot or lot uses) and the
            # appended rows (every table's rows an INSERT of it) are one statement, CTEs
            # sent as the transaction commits (hub.db.defer): the claim with the member's
            # read (and the lots'), and that.
            at_once = sent[-1]
            assert at_once.startswith("WITH p0_moved_0 AS (UPDATE accounts "), sent
            assert "p1_moved_0 AS (UPDATE accounts " in at_once, sent
            assert at_once.count("INSERT INTO entries ") == 2, at_once
            assert "INSERT INTO lot_uses " in at_once and "INSERT INTO lots " in at_once
            assert all(f"INSERT INTO {table} " in at_once for table in appended), sent
            assert len(sent) == 2, sent


async def test_a_caller_who_may_not_act_for_the_member_locks_nothing_of_theirs(
    settings: Settings,
) -> None:
    """The member's rows are locked with the key's claim (one statement) only for a caller
    who may act for the member: a storefront whose session is another member's is refused
    before any read of that member, so it cannot hold their rows (nor their conversions
    and redemptions behind them) by sending requests it may not make."""
    async with running_app(_quiet(settings)) as api:
        member = await _world(api)
        other = await enroll(api, "HUB", "H-2")
        await set_rate(api, "HUB", "TEA", "1")
        storefront = await create_key(api, "STOREFRONT")
        token = await member_session(api, other)
        for attempt in ("convert", "redeem"):
            with statements(api, whole=True) as sent:
                if attempt == "convert":
                    done = await convert(
                        api, member, "HUB", "TEA", 10, key=storefront, member_token=token
                    )
                else:
                    done = await redeem(
                        api, member, "tea:GIFT", "HUB", key=storefront, member_token=token
                    )
            assert [e["code"] for e in done["userErrors"]] == ["FORBIDDEN"], done
            assert not [s for s in sent if "FROM members" in s or "FOR UPDATE" in s], sent
        assert (await balances(api, member))["HUB"] == 150


async def test_the_cache_counters_are_read_once_per_interval(settings: Settings) -> None:
    async with running_app(_quiet(settings)) as api:
        member = await _world(api)
        await api.gql(BALANCES, {"id": member})
        runtime: Runtime = api.app.state.runtime
        runtime.caches.recheck()  # as if the interval had passed
        with statements(api) as sent:
            await api.gql(BALANCES, {"id": member})
            await api.gql(BALANCES, {"id": member})
        # The first request reads the counters and the member, the second the member only.
        assert len(sent) == 3, sent


async def test_exchange_rates_are_read_from_memory(settings: Settings) -> None:
    async with running_app(_quiet(settings)) as api:
        await _world(api)
        await set_rate(api, "HUB", "TEA", "2")
        await api.gql(RATES)
        with statements(api) as sent:
            data = await api.gql(RATES, {"from": "HUB"})
        assert data["exchangeRates"] == [{"rate": "2"}]
        assert sent == []


async def test_a_changed_rate_is_seen_by_another_process_within_the_interval(
    settings: Settings,
) -> None:
    interval = 0.3
    async with two_processes(settings, interval) as (first, second):
        member = await _world(first)
        await set_rate(first, "HUB", "TEA", "2")
        assert (await second.gql(RATES, {"from": "HUB"}))["exchangeRates"] == [{"rate": "2"}]
        assert (await convert(second, member, "HUB", "TEA", 10))["conversion"][
            "pointsCredited"
        ] == 20
        await set_rate(first, "HUB", "TEA", "2.5")
        assert (await first.gql(RATES, {"from": "HUB"}))["exchangeRates"] == [{"rate": "2.5"}]
        # The first request after the interval reads the counters again; a conversion
        # prices with the new version from then on.
        await asyncio.sleep(interval)
        assert (await second.gql(RATES, {"from": "HUB"}))["exchangeRates"] == [{"rate": "2.5"}]
        assert (await convert(second, member, "HUB", "TEA", 10))["conversion"][
            "pointsCredited"
        ] == 25


async def test_a_promotion_set_through_another_process_earns_within_the_interval(
    settings: Settings,
) -> None:
    """Promotions and tier ladders are kept in memory for accruePoints: the process that
    set one uses it from its next request, another within the interval."""
    interval = 0.3
    async with two_processes(settings, interval) as (first, second):
        member = await _world(first)
        assert (await accrue(second, member, "TEA", "10"))["points"] == 10  # loyalty now kept
        now = dt.datetime.now(dt.UTC)
        promotion = await first.gql(
            "mutation P($input: PromotionInput!) { setPromotion(input: $input) { ok } }",
            {
                "input": {
                    "program": "TEA",
                    "accrualMultiplier": "3",
                    "startsAt": (now - dt.timedelta(minutes=1)).isoformat(),
                    "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
                    "label": "triple",
                }
            },
        )
        assert promotion["setPromotion"]["ok"]
        assert (await accrue(first, member, "TEA", "10"))["points"] == 30
        await asyncio.sleep(interval)
        assert (await accrue(second, member, "TEA", "10"))["points"] == 30


async def test_a_rate_that_takes_effect_later_is_used_from_then_without_a_write(
    settings: Settings,
) -> None:
    async with running_app(_quiet(settings)) as api:
        await _world(api)
        await set_rate(api, "HUB", "TEA", "2")
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
        await set_rate(api, "HUB", "TEA", "3", effectiveFrom=soon.isoformat())
        assert (await api.gql(RATES, {"from": "HUB"}))["exchangeRates"] == [{"rate": "2"}]
        await asyncio.sleep(max(0.0, (soon - dt.datetime.now(dt.UTC)).total_seconds()) + 0.05)
        with statements(api) as sent:
            data = await api.gql(RATES, {"from": "HUB"})
        assert data["exchangeRates"] == [{"rate": "3"}]
        assert sent == []


async def test_a_program_registered_through_another_process_is_known_at_once(
    settings: Settings,
) -> None:
    async with running_app(_quiet(settings)) as first, running_app(_quiet(settings)) as second:
        member = await _world(first)
        await second.gql(BALANCES, {"id": member})  # the second keeps the three programs
        await register(first, "carwash", "WASH")
        await enroll(second, "WASH", "W-1", member_id=member)
        data = await second.gql(BALANCES, {"id": member})
        assert [a["program"]["code"] for a in data["member"]["accounts"]] == [
            "BOOK",
            "HUB",
            "TEA",
            "WASH",
        ]


async def test_an_account_in_a_program_this_process_does_not_keep_yet_shows_its_balance(
    settings: Settings,
) -> None:
    """An account's program and balance answer at once from the kept programs; one in a
    program registered a moment ago through another process, which this one does not keep
    yet, is loaded, and its balance is still the ledger's."""
    async with running_app(_quiet(settings)) as first, running_app(_quiet(settings)) as second:
        member = await _world(first)
        await second.gql(BALANCES, {"id": member})  # the second keeps the three programs
        await register(first, "carwash", "WASH")
        await enroll(first, "WASH", "W-1", member_id=member)
        assert (await accrue(first, member, "WASH", "37"))["userErrors"] == []
        data = await second.gql(BALANCES, {"id": member})
        accounts = {a["program"]["code"]: a["balance"] for a in data["member"]["accounts"]}
        assert accounts["WASH"] == 37, accounts
        seen_first = (await first.gql(BALANCES, {"id": member}))["member"]["accounts"]
        assert accounts == {a["program"]["code"]: a["balance"] for a in seen_first}


async def test_a_shop_registered_through_another_process_sells_at_once(
    settings: Settings,
) -> None:
    """A redemption prices with the kept programs: one the process does not know yet (a
    shop registered a moment ago through another) is read, not refused."""
    async with running_app(_quiet(settings)) as first, running_app(_quiet(settings)) as second:
        await _shops(first)
        member = await enroll(second, "HUB", "H-1")
        assert (await accrue(second, member, "HUB", "1000"))["userErrors"] == []
        await second.gql(REWARDS)  # the second keeps the programs it knows now
        await register(first, "carwash", "WASH")
        await set_rate(first, "HUB", "WASH", "2")
        key = await create_key(first, "MERCHANT", "carwash")
        wash = await upsert_reward(first, key, ref="WASH", kind="GOODS", title="wash", price=10)
        made = await redeem(second, member, wash["id"], "HUB")
        assert made["userErrors"] == [] and made["redemption"]["points"] == 5, made


async def test_a_redemption_no_rate_pays_for_reads_the_counters_not_the_rates(
    settings: Settings,
) -> None:
    """Paying with a program no rate leads from: before refusing, the counters are read
    once (a rate set through another process a moment ago would be seen), and the rates
    are not loaded again when none changed: a refused request cannot make the process
    reload them."""
    async with running_app(_quiet(settings)) as api:
        await _shops(api)
        await register(api, "island", "ISLE")  # no rate leads from ISLE
        member = await enroll(api, "ISLE", "I-1")
        assert (await accrue(api, member, "ISLE", "1000"))["userErrors"] == []
        await api.gql(REWARDS)
        with statements(api, whole=True) as sent:
            refused = await redeem(api, member, "tea:GIFT", "ISLE")
        assert [e["code"] for e in refused["userErrors"]] == ["RATE_NOT_CONFIGURED"], refused
        assert len([s for s in sent if s.startswith("SELECT cache_versions.")]) == 1, sent
        assert not [s for s in sent if s.startswith("SELECT exchange_rates.")], sent


async def test_a_reward_of_a_shop_registered_through_another_process_shows_at_once(
    settings: Settings,
) -> None:
    """A reward is priced by the kept programs: one of a shop the process does not know yet
    (registered a moment ago through another) is priced after the programs are read again,
    not an internal error."""
    async with running_app(_quiet(settings)) as first, running_app(_quiet(settings)) as second:
        await _shops(first)
        await second.gql(REWARDS)  # the second keeps the programs it knows now
        await register(first, "carwash", "WASH")
        await set_rate(first, "HUB", "WASH", "2")
        key = await create_key(first, "MERCHANT", "carwash")
        wash = await upsert_reward(first, key, ref="WASH", kind="GOODS", title="wash", price=10)
        found = await second.gql(
            "query($id: ID!) { reward(id: $id) { title price merchant { id } } }",
            {"id": wash["id"]},
        )
        # (Its price in HUB shows once the second reads the rates again, within the interval.)
        assert found["reward"] == {"title": "wash", "price": 10, "merchant": {"id": "carwash"}}


REWARDS = """{ rewards(first: 100) {
  edges { node { id title price priceIn(program: "HUB") merchant { id name } } }
} }"""

PROMOTION = "mutation P($input: PromotionInput!) { setPromotion(input: $input) { ok } }"


async def _shops(api: Api) -> None:
    """The platform and three hosted shops, a reward each, payable with HUB at 1:2."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    for shop in ("tea", "book", "lens"):
        await register(api, shop, shop.upper())
        await set_rate(api, "HUB", shop.upper(), "2")
        key = await create_key(api, "MERCHANT", shop)
        await upsert_reward(api, key, ref="GIFT", kind="GOODS", title=f"{shop} gift", price=100)


async def _shopper(api: Api) -> tuple[str, str]:
    """The shops, a member with 1,000 HUB, and the first reward listed."""
    await _shops(api)
    member = await enroll(api, "HUB", "H-1")
    assert (await accrue(api, member, "HUB", "1000"))["userErrors"] == []
    page = await api.gql("{ rewards(first: 10) { edges { node { id } } } }")
    return member, page["rewards"]["edges"][0]["node"]["id"]


async def test_a_redemption_reads_what_the_process_keeps_from_memory(settings: Settings) -> None:
    """redeemReward prices with the kept programs, rates, promotions and tier ladders (as a
    conversion and the rewards page price); the member is read once, locked,
    the paying account once, locked, for the debit; the redemption's row is written once,
    with what its local steps made of it, however many ran; its legs, the obligation and the
    event are appended at commit. The answer's reward is the one the transaction read."""
    async with running_app(_quiet(settings)) as api:
        member, reward = await _shopper(api)
        assert (await redeem(api, member, reward, "HUB"))["redemption"]["status"] == "CONFIRMED"
        with statements(api, whole=True) as sent:
            made = await redeem(api, member, reward, "HUB")
        assert made["redemption"]["status"] == "CONFIRMED", made

        def count(prefix: str) -> int:
            return len([s for s in sent if s.startswith(prefix)])

        for kept in ("programs", "exchange_rates", "promotions", "tiers"):
            assert count(f"SELECT {kept}.") == 0, sent
        assert count("SELECT accounts.program_code") == 0, sent  # no ladders: no need
        # The reward and its merchant in one read.
        (reward_read,) = [s for s in sent if s.startswith("SELECT rewards.")]
        assert "FROM rewards JOIN merchants" in reward_read, reward_read
        assert count("SELECT merchants.") == 0, sent
        # The member and the paying account alone, locked in one read (as a conversion
        # locks them): a hosted shop's booking is a voucher code the hub issues, for no
        # account, so the member's account at the shop is not looked up. (SQLite has no
        # FOR UPDATE: its writer holds the whole database.)
        (member_read,) = [s for s in sent if "FROM members JOIN accounts" in s]
        assert member_read.count("IN (") == 1, member_read
        assert count("SELECT accounts.") == 0, sent
        if not settings.database_url.startswith("sqlite"):
            assert member_read.startswith("WITH claim AS (INSERT INTO idempotency_keys ")
            assert "FOR NO KEY UPDATE OF members, accounts) AS first ON true" in member_read
            assert count("SELECT lots.") == 0, sent  # read with the lock
        # Written once, after its local steps ran: no UPDATE of the row it just inserted.
        assert len([s for s in sent if "INSERT INTO redemptions " in s]) == 1, sent
        assert count("UPDATE redemptions ") == 0, sent
        if settings.database_url.startswith("sqlite"):
            appended = ["redemptions", "redemption_legs", "obligations", "outbox_events"]
            assert [s.split()[2] for s in sent if s.startswith("INSERT INTO")][-4:] == appended
        else:
            # The debit's entry, then the row itself, ahead of its legs, the obligation and
            # the events (a row each for two merchants) that refer to it, all in one
            # statement as the transaction commits (hub.db.defer).
            at_once = sent[-1]
            assert at_once.startswith("WITH p0_moved_0 AS (UPDATE accounts "), at_once
            assert "appended_0 AS (INSERT INTO redemptions " in at_once, at_once
            for table in ("entries", "lot_uses", "redemption_legs", "obligations", "outbox_events"):
                assert f"INSERT INTO {table} " in at_once, at_once
            assert count("INSERT INTO") == 0, sent  # the key's claim is the member's read
            assert len(sent) == 3, sent


ANSWERED = """
mutation Redeem($input: RedeemRewardInput!) {
  redeemReward(input: $input) { redemption { status reward { %s } } userErrors { code } }
}
fragment Prices on Reward { priceIn(program: "HUB") }"""


@pytest.mark.parametrize(
    ("selection", "shown", "profile_reads"),
    [
        ("id title", {"title": "tea gift"}, 0),
        ('id price priceIn(program: "HUB")', {"price": 100, "priceIn": 50}, 1),
        ("id ... on Reward { price }", {"price": 100}, 1),
        ("id ...Prices", {"priceIn": 50}, 1),
    ],
)
async def test_a_redemption_answer_prices_its_reward_only_when_asked(
    settings: Settings, selection: str, shown: dict[str, Any], profile_reads: int
) -> None:
    """The storefront's answer to a member's redemption shows the reward as the member would
    see it: priced by the member's book (their profile read after the commit) when a price
    is asked, directly or in a fragment; a reward asked only for what needs no price costs
    no such read."""
    async with running_app(_quiet(settings)) as api:
        member, _ = await _shopper(api)
        storefront = await create_key(api, "STOREFRONT")
        token = await member_session(api, member)
        tea = "tea:GIFT"
        query = ANSWERED % selection
        if "...Prices" not in selection:
            query = query.rsplit("fragment", 1)[0]
        variables = {
            "input": {"memberId": member, "rewardId": tea, "payWith": "HUB", "quantity": 1}
        }
        with statements(api, whole=True) as sent:
            data = await api.gql(
                query,
                {"input": variables["input"] | {"idempotencyKey": f"answer-{len(selection)}"}},
                key=storefront,
                member_token=token,
            )
        payload = data["redeemReward"]
        assert payload["userErrors"] == [] and payload["redemption"]["status"] == "CONFIRMED"
        assert payload["redemption"]["reward"] == {"id": tea} | shown
        profiles = [s for s in sent if s.startswith("SELECT members.credit_level")]
        assert len(profiles) == profile_reads, sent


async def test_a_cancellation_locks_the_account_once_and_gives_lots_back_with_the_entry(
    settings: Settings,
) -> None:
    """cancelRedemption of a hosted redemption: the paying account is read once, locked,
    before anything changes; the points go back into their lots with the refund's entry
    (no lot read or written on its own); the redemption's row is updated once."""
    async with running_app(_quiet(settings)) as api:
        member, reward = await _shopper(api)
        first = await redeem(api, member, reward, "HUB")
        assert (await cancel_redemption(api, first["redemption"]["id"]))["userErrors"] == []
        made = await redeem(api, member, reward, "HUB")
        with statements(api, whole=True) as sent:
            done = await cancel_redemption(api, made["redemption"]["id"])
        assert done["redemption"]["status"] == "CANCELLED", done
        assert done["redemption"]["refundedPoints"] == 50

        def count(prefix: str) -> int:
            return len([s for s in sent if s.startswith(prefix)])

        assert count("SELECT accounts.") == 1, sent
        assert len([s for s in sent if "UPDATE redemptions " in s]) == 1, sent
        assert count("SELECT lots.id, lots.account_id") == 0, sent  # no ORM lot
        if not settings.database_url.startswith("sqlite"):
            assert "FOR NO KEY UPDATE" in next(s for s in sent if s.startswith("SELECT accounts."))
            assert count("UPDATE lots") == 0 and count("INSERT INTO lot_uses") == 0, sent
            # The refund's entry with its lots' points, the redemption's UPDATE, the event
            # and the stock given back: one statement as the transaction commits.
            at_once = sent[-1]
            for write in ("UPDATE accounts ", "UPDATE lots ", "UPDATE redemptions "):
                assert write in at_once, at_once
            assert "INSERT INTO outbox_events " in at_once, at_once
            assert count("SELECT members.") == 0, sent  # its name is for a partner's booking
            # The debit it undoes is read with what it took from each lot, in one read; no
            # lot it gives points back to has expired, so no expired lot is looked for.
            (undone,) = [s for s in sent if s.startswith("SELECT entries.")]
            assert "LEFT OUTER JOIN lot_uses" in undone, undone
            assert count("SELECT lot_uses.") == 0 and count("SELECT lots.") == 0, sent
            # The redemption is locked and read with its reward, in one read.
            (locked,) = [s for s in sent if "FROM redemptions JOIN rewards" in s]
            assert locked.startswith("WITH claim AS (INSERT INTO idempotency_keys "), locked
            assert "FOR NO KEY UPDATE OF redemptions) AS first ON true" in locked, locked
            assert count("SELECT rewards.") == 0, sent
            assert len(sent) == 5, sent
        assert (await balances(api, member))["HUB"] == 1000
        assert await verify_ledger(settings.database_url) == []


async def test_a_rewards_stock_is_locked_by_the_last_statement_before_the_commit(
    settings: Settings,
) -> None:
    """Every redemption of a reward and every cancellation of one updates its stock, which
    locks its row to the end of the transaction: the update is the transaction's last
    statement, so that the next redemption of the reward waits for a commit alone, not for
    the writes that could come first (at 60 clients, redemptions of three rewards queued
    on their rows: 17 backends waiting on a lock per sample). On PostgreSQL that last
    statement carries the transaction's other last writes with it, as CTEs (hub.db.defer)."""
    async with running_app(_quiet(settings)) as api:
        await _shops(api)
        member = await enroll(api, "HUB", "H-1")
        assert (await accrue(api, member, "HUB", "1000"))["userErrors"] == []
        shop = await create_key(api, "MERCHANT", "tea")
        await upsert_reward(
            api, shop, ref="SCARCE", kind="GOODS", title="scarce", price=10, stock=5
        )
        reward = "tea:SCARCE"
        await redeem(api, member, reward, "HUB")  # what the process keeps, kept
        with statements(api, whole=True) as sent:
            made = await redeem(api, member, reward, "HUB")
        assert made["redemption"]["status"] == "CONFIRMED", made
        # (On PostgreSQL the last statement is the transaction's last writes, as CTEs.)
        assert "UPDATE rewards SET stock=" in sent[-1], sent
        assert len([s for s in sent if "UPDATE rewards" in s]) == 1, sent
        with statements(api, whole=True) as sent:
            done = await cancel_redemption(api, made["redemption"]["id"])
        assert done["redemption"]["status"] == "CANCELLED", done
        # (On PostgreSQL the last statement is the transaction's last writes, as CTEs.)
        assert "UPDATE rewards SET stock=" in sent[-1], sent
        assert len([s for s in sent if "UPDATE rewards" in s]) == 1, sent
        stock = await api.gql('{ reward(id: "tea:SCARCE") { stock } }')
        assert stock["reward"]["stock"] == 4  # two taken, one given back
        assert await verify_ledger(settings.database_url) == []


async def test_a_warm_rewards_page_is_one_read(settings: Settings) -> None:
    """Rates, programs, promotions and merchants come from memory: the page reads the
    rewards and nothing else, one statement outside any transaction (no BEGIN on SQLite,
    none on PostgreSQL)."""
    async with running_app(_quiet(settings)) as api:
        await _shops(api)
        await api.gql(REWARDS)  # keys, programs, rates and promotions now kept
        with statements(api) as sent:
            data = await api.gql(REWARDS)
        assert sent == ["SELECT"]
        assert [
            (r["node"]["merchant"]["id"], r["node"]["price"], r["node"]["priceIn"])
            for r in data["rewards"]["edges"]
        ] == [("book", 100, 50), ("lens", 100, 50), ("tea", 100, 50)]


async def test_hot_reads_survive_the_database_dropping_every_connection(
    settings: Settings,
) -> None:
    """A database that restarts (or a proxy that drops idle connections) leaves the pool's
    connections dead. The pool pings each connection before lending it (hub.db's
    _ping_on_checkout: one round trip, where SQLAlchemy's asyncpg ping sends three), so
    the rewards page, member balances and an accrual all work at once afterwards."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to drop connections")
    async with running_app(_quiet(settings)) as api:
        await _shops(api)
        member = await enroll(api, "HUB", "H-1", "Liu Yang")
        await accrue(api, member, "HUB", "100")
        for round_ in range(2):
            before = await api.gql(REWARDS)
            await _drop_connections(settings.database_url)
            assert await api.gql(REWARDS) == before
            await _drop_connections(settings.database_url)
            data = await api.gql(BALANCES, {"id": member})
            assert [a["balance"] for a in data["member"]["accounts"]] == [100 + round_]
            await _drop_connections(settings.database_url)
            await accrue(api, member, "HUB", "1")


async def _drop_connections(url: str) -> None:
    """Every other connection to this database, ended by the server."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await engine.dispose()


async def test_a_promotion_set_through_another_process_prices_the_mall_within_the_interval(
    settings: Settings,
) -> None:
    """Mall prices take promotions from the same memory as accruals: the process that set a
    discount prices with it from its next request, another within the interval."""
    interval = 0.3
    async with two_processes(settings, interval) as (first, second):
        await _shops(first)
        page = await second.gql(REWARDS)
        assert {r["node"]["price"] for r in page["rewards"]["edges"]} == {100}
        now = dt.datetime.now(dt.UTC)
        promotion = {
            "program": "TEA",
            "redemptionDiscountPercent": "20",
            "startsAt": (now - dt.timedelta(minutes=1)).isoformat(),
            "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
            "label": "tea week",
        }
        assert (await first.gql(PROMOTION, {"input": promotion}))["setPromotion"]["ok"]

        def tea(data: dict[str, Any]) -> tuple[int, int]:
            (node,) = [e["node"] for e in data["rewards"]["edges"] if e["node"]["id"] == "tea:GIFT"]
            return node["price"], node["priceIn"]

        assert tea(await first.gql(REWARDS)) == (80, 40)
        await asyncio.sleep(interval)
        assert tea(await second.gql(REWARDS)) == (80, 40)


async def test_a_document_is_validated_once_per_process(
    settings: Settings, monkeypatch: Any
) -> None:
    """Validation (the limits and graphql-core's rules) runs once per document text; its
    outcome, errors included, is kept for the next request with the same text."""
    import schema.limits

    validated: list[int] = []
    real = schema.limits.validate_document

    def counted(*args: Any) -> Any:
        validated.append(1)
        return real(*args)

    monkeypatch.setattr(schema.limits, "validate_document", counted)
    # Texts this process has not validated yet (the schema, and with it what it validated,
    # is shared by the apps the process makes: by this test's run on the other backend).
    fresh = secrets.token_hex(4)
    async with running_app(_quiet(settings)) as api:
        for _ in range(3):
            found = await api.gql(f"query Role{fresh} {{ viewer {{ role }} }}")
            assert found["viewer"]["role"] == "ADMIN"
        assert len(validated) == 1
        for _ in range(2):
            errors = await api.errors(f"query Bad{fresh} {{ viewer {{ nosuchfield }} }}")
            assert ["nosuchfield" in e["message"] for e in errors] == [True]
        assert len(validated) == 2


def test_a_listed_reward_is_the_rewards_table() -> None:
    """The catalog page's rows (ListedReward) carry every column of the rewards table but
    those only a listing's WHERE uses, each read from its own column: a column added to
    Reward is listed too."""
    assert {"search_text"} == UNLISTED
    listed = [c.key for c in Reward.__table__.c if c.key not in UNLISTED]
    assert [f.name for f in fields(ListedReward)] == listed
    assert [c.key for c in LISTED_COLUMNS] == [f.name for f in fields(ListedReward)]


async def test_single_reads_that_wait_inside_do_not_block_the_loop(settings: Settings) -> None:
    """A SQLite file's single reads run on the loop's thread, from a pool whose checkout
    would block that thread once it is empty, with no way for the holders to give theirs
    back. So while one such read is open (its holder awaiting something), the others go
    through aiosqlite: forty reads holding their connection across an await all finish."""
    async with running_app(_quiet(settings)) as api:
        db = api.app.state.runtime.db

        async def read_and_wait() -> int:
            async with db.single_read() as conn:
                await asyncio.sleep(0.05)
                return len((await conn.execute(text("SELECT 1"))).all())

        found = await asyncio.wait_for(asyncio.gather(*(read_and_wait() for _ in range(40))), 20)
        assert found == [1] * 40


async def test_balances_not_asking_lots_read_a_row_per_account(settings: Settings) -> None:
    """member(id:) { accounts { balance } } reads a row per account, not per open lot (a
    member may hold thousands), and the balance still leaves out a lot past expiry that the
    expiry job has not swept; a read asking `expiring` reads the lots."""
    async with running_app(_quiet(settings)) as api:
        member = await _world(api)  # HUB: lots of 120 and 30, expiring; TEA: 55
        for amount in ("5", "6", "7"):
            assert (await accrue(api, member, "HUB", amount))["userErrors"] == []
        # One HUB lot past its expiry, not swept yet (as if time had passed).
        engine = create_async_engine(settings.database_url)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE lots SET expires_at = :past WHERE id = (SELECT min(lots.id) FROM lots "
                    "JOIN accounts ON accounts.id = lots.account_id WHERE accounts.program_code "
                    "= 'HUB' AND accounts.member_id = :member)"
                ),
                {"past": dt.datetime.now(dt.UTC) - dt.timedelta(days=1), "member": member},
            )
        await engine.dispose()
        query = "query B($id: ID!) { member(id: $id) { accounts { program { code } balance } } }"
        await api.gql(query, {"id": member})
        with statements(api, whole=True) as sent:
            data = await api.gql(query, {"id": member})
        (read,) = sent
        assert "JOIN lots" not in read and "sum(lots.remaining)" in read, read
        found = {a["program"]["code"]: a["balance"] for a in data["member"]["accounts"]}
        assert found == {"BOOK": 7, "HUB": 150 + 18 - 120, "TEA": 55}
        with statements(api, whole=True) as sent:
            full = await api.gql(BALANCES, {"id": member})
        (read,) = sent
        assert "JOIN lots" in read, read
        accounts = {a["program"]["code"]: a for a in full["member"]["accounts"]}
        assert accounts["HUB"]["balance"] == 48
        assert [lot["points"] for lot in accounts["HUB"]["expiring"]] == [30, 5, 6, 7]
