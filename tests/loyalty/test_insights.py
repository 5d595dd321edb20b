"""merchantInsights through GraphQL over HTTP: each figure against a small world whose
answers are known (points issued, redeemed net of refunds, expired; active members;
members per tier; the most redeemed rewards; rising members, names masked), another
merchant's activity never counted, and who may ask."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hub.ledger import jobs as ledger_jobs
from hub.runtime import Runtime
from tests.helpers import (
    Api,
    cancel_redemption,
    create_key,
    enroll,
    member_session,
    redeem,
    register,
    set_rate,
    upsert_reward,
)
from tests.loyalty.ladders import accrue_at, set_tiers

NOW = dt.datetime.now(dt.UTC)

INSIGHTS = """
query I($merchant: ID!, $from: Date!, $to: Date!) {
  merchantInsights(merchant: $merchant, from: $from, to: $to) {
    merchant { id } from to
    pointsIssued pointsRedeemed pointsExpired greenPointsIssued activeMembers
    membersByTier { tier { code name } members }
    topRewards { reward { id title } redemptions points }
    risingMembers { id displayName }
    daily { date pointsIssued pointsRedeemed pointsExpired greenPointsIssued }
  }
}"""

SILVER = {"code": "SILVER", "name": "Silver", "minSpend": "1000", "minOrders": 2}
GOLD = {"code": "GOLD", "name": "Gold", "minSpend": "5000", "minOrders": 3}

# (name, purchases at JADE as (days ago, amount)); one point per unit spent.
PEOPLE: dict[str, list[tuple[int, str]]] = {
    "Wang Fang": [(120, "100"), (10, "300")],  # 300 now against 100 before: rising
    "Chen Jie": [(150, "1000"), (20, "1200")],  # 1,200 against 1,000: not rising; Silver
    "Liu Yang": [(25, "2000"), (5, "2500"), (3, "1000")],  # new, 5,500: rising; Gold
    "Zhao Min": [(200, "400")],  # the lot expired (6 months) unspent; nothing since
    "Sun Hua": [],  # enrolled, never bought
}


def _today() -> dt.date:
    return NOW.astimezone(dt.timezone(dt.timedelta(hours=8))).date()  # Asia/Shanghai


async def _insights(
    api: Api, merchant: str, first: dt.date, last: dt.date, key: str | None = None
) -> dict[str, Any]:
    variables = {"merchant": merchant, "from": first.isoformat(), "to": last.isoformat()}
    kw = {"key": key} if key else {}
    data = await api.gql(INSIGHTS, variables, **kw)
    found: dict[str, Any] = data["merchantInsights"]
    return found


@pytest.fixture
async def world(api: Api) -> dict[str, Any]:
    """Jade (a restaurant, points expire after 6 months, Silver and Gold) and Lotus (a
    hotel whose guest redeems a Jade meal with Lotus points)."""
    await register(api, "jade", "JADE", category="RESTAURANT", expiryMonths=6)
    await register(api, "lotus", "LOTUS", category="HOTEL")
    assert (await set_tiers(api, "JADE", [SILVER, GOLD]))["userErrors"] == []
    members: dict[str, str] = {}
    for n, (name, purchases) in enumerate(PEOPLE.items()):
        members[name] = await enroll(api, "JADE", f"J-{n}", name)
        for days, amount in purchases:
            await accrue_at(api, members[name], "JADE", amount, NOW - dt.timedelta(days=days))
    guest = await enroll(api, "LOTUS", "L-1", "Guest Zhou")
    await accrue_at(api, guest, "LOTUS", "900", NOW - dt.timedelta(days=2))
    # Zhao Min's lot is past its expiry: the job moves it to `expired` today.
    runtime: Runtime = api.app.state.runtime
    await ledger_jobs.run_expiry(runtime.db, runtime.settings)

    for ref, title, price in (
        ("MEAL", "Set meal", 100),
        ("TEA", "Tea", 50),
        ("FEAST", "Feast", 500),
    ):
        await upsert_reward(api, ref=ref, kind="MEAL", title=title, price=price, merchantId="jade")
    await upsert_reward(api, ref="CAKE", kind="GOODS", title="Cake", price=80, merchantId="jade")
    await upsert_reward(api, ref="NIGHT", kind="GOODS", title="Night", price=60, merchantId="lotus")
    await set_rate(api, "LOTUS", "JADE", "1")
    paid = [
        ("Chen Jie", "jade:MEAL", "JADE"),
        ("Liu Yang", "jade:MEAL", "JADE"),
        ("Wang Fang", "jade:TEA", "JADE"),
        ("Liu Yang", "jade:FEAST", "JADE"),
    ]
    for name, reward, pay_with in paid:
        done = await redeem(api, members[name], reward, pay_with)
        assert done["userErrors"] == [], done
        assert done["redemption"]["status"] == "CONFIRMED"
    crossed = await redeem(api, guest, "jade:MEAL", "LOTUS")  # worth 100 Jade points
    assert crossed["userErrors"] == [], crossed
    assert (await redeem(api, guest, "lotus:NIGHT", "LOTUS"))["userErrors"] == []
    cake = await redeem(api, members["Chen Jie"], "jade:CAKE", "JADE")
    cancelled = await cancel_redemption(api, cake["redemption"]["id"])
    assert cancelled["userErrors"] == [], cancelled
    return {
        "members": members,
        "guest": guest,
        "jade": await create_key(api, "MERCHANT", "jade"),
        "lotus": await create_key(api, "MERCHANT", "lotus"),
    }


async def test_the_last_thirty_days_of_a_merchant_each_figure_known(
    api: Api, world: dict[str, Any]
) -> None:
    today = _today()
    first = today - dt.timedelta(days=29)
    found = await _insights(api, "jade", first, today, key=world["jade"])
    assert found["merchant"] == {"id": "jade"}
    assert (found["from"], found["to"]) == (first.isoformat(), today.isoformat())
    # Wang Fang 300, Chen Jie 1,200, Liu Yang 2,000 + 2,500 + 1,000; nothing older.
    assert found["pointsIssued"] == 7000
    # Meals 100 + 100, tea 50, feast 500, and the cake's 80 refunded: net 750. The guest's
    # meal was paid in Lotus points: Lotus's redemption, not Jade's.
    assert found["pointsRedeemed"] == 750
    assert found["pointsExpired"] == 400
    assert found["greenPointsIssued"] == 0  # no GREEN programs yet
    # Wang Fang, Chen Jie, Liu Yang, and the Lotus guest who redeemed a Jade meal; not
    # Zhao Min, whose only movement was the expiry, nor Sun Hua.
    assert found["activeMembers"] == 4


async def test_the_daily_series_adds_up_to_the_figures(api: Api, world: dict[str, Any]) -> None:
    today = _today()
    first = today - dt.timedelta(days=29)
    found = await _insights(api, "jade", first, today)
    days = found["daily"]
    assert [d["date"] for d in days] == [
        (first + dt.timedelta(days=n)).isoformat() for n in range(30)
    ]
    for name in ("pointsIssued", "pointsRedeemed", "pointsExpired", "greenPointsIssued"):
        assert sum(d[name] for d in days) == found[name], name
    by_date = {d["date"]: d for d in days}
    ten_days_ago = (NOW - dt.timedelta(days=10)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert by_date[ten_days_ago.date().isoformat()]["pointsIssued"] == 300
    assert by_date[today.isoformat()]["pointsExpired"] == 400
    assert by_date[today.isoformat()]["pointsRedeemed"] == 750


async def test_a_longer_period_counts_older_accruals_and_an_empty_one_nothing(
    api: Api, world: dict[str, Any]
) -> None:
    today = _today()
    year = await _insights(api, "jade", today - dt.timedelta(days=364), today)
    assert year["pointsIssued"] == 7000 + 100 + 1000 + 400
    assert (year["pointsRedeemed"], year["pointsExpired"]) == (750, 400)
    # Zhao Min earned within the year: active then, as every Jade member but Sun Hua.
    assert year["activeMembers"] == 5
    quiet = await _insights(
        api, "jade", today - dt.timedelta(days=400), today - dt.timedelta(days=380)
    )
    assert [quiet[k] for k in ("pointsIssued", "pointsRedeemed", "pointsExpired")] == [0, 0, 0]
    assert (quiet["activeMembers"], quiet["topRewards"]) == (0, [])
    assert quiet["risingMembers"] == []


async def test_members_per_tier_count_every_member_of_the_program_now(
    api: Api, world: dict[str, Any]
) -> None:
    today = _today()
    found = await _insights(api, "jade", today, today, key=world["jade"])
    # Below Silver: Wang Fang (400 spent), Zhao Min and Sun Hua; the guest is Lotus's.
    assert [(t["tier"] and t["tier"]["code"], t["members"]) for t in found["membersByTier"]] == [
        (None, 3),
        ("SILVER", 1),
        ("GOLD", 1),
    ]
    lotus = await _insights(api, "lotus", today, today, key=world["lotus"])
    assert lotus["membersByTier"] == [{"tier": None, "members": 1}]


async def test_top_rewards_most_redeemed_first_cancelled_ones_left_out(
    api: Api, world: dict[str, Any]
) -> None:
    today = _today()
    found = await _insights(api, "jade", today - dt.timedelta(days=6), today, key=world["jade"])
    assert [(r["reward"]["id"], r["redemptions"], r["points"]) for r in found["topRewards"]] == [
        # Two meals paid in Jade points and the guest's, worth its list price in Jade's.
        ("jade:MEAL", 3, 300),
        ("jade:FEAST", 1, 500),  # one each: the more points first
        ("jade:TEA", 1, 50),
    ]
    lotus = await _insights(api, "lotus", today - dt.timedelta(days=6), today, key=world["lotus"])
    assert [r["reward"]["id"] for r in lotus["topRewards"]] == ["lotus:NIGHT"]
    assert (lotus["pointsIssued"], lotus["pointsRedeemed"]) == (900, 160)  # night and meal
    assert lotus["activeMembers"] == 1


async def test_rising_members_spend_twice_what_they_did_the_ninety_days_before(
    api: Api, world: dict[str, Any]
) -> None:
    today = _today()
    people = world["members"]
    as_merchant = await _insights(api, "jade", today, today, key=world["jade"])
    # Liu Yang (5,500 from nothing), then Wang Fang (300 against 100); names masked.
    assert as_merchant["risingMembers"] == [
        {"id": people["Liu Yang"], "displayName": "L*******"},
        {"id": people["Wang Fang"], "displayName": "W********"},
    ]
    as_admin = await _insights(api, "jade", today, today)
    assert [m["displayName"] for m in as_admin["risingMembers"]] == ["Liu Yang", "Wang Fang"]
    # Eleven days ago Wang Fang's 300 had not been spent: only Liu Yang's 2,000 rises.
    earlier = await _insights(
        api, "jade", today - dt.timedelta(days=11), today - dt.timedelta(days=11)
    )
    assert [m["id"] for m in earlier["risingMembers"]] == [people["Liu Yang"]]


async def test_a_merchant_reads_its_own_insights_and_no_one_elses(
    api: Api, world: dict[str, Any]
) -> None:
    today = _today()
    variables = {"merchant": "lotus", "from": today.isoformat(), "to": today.isoformat()}
    errors = await api.errors(INSIGHTS, variables, key=world["jade"])
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    finance = await create_key(api, "FINANCE")
    storefront = await create_key(api, "STOREFRONT")
    token = await member_session(api, world["members"]["Liu Yang"])
    for key, member_token in ((finance, None), (storefront, token)):
        variables["merchant"] = "jade"
        response = await api.post(INSIGHTS, variables, key=key, member_token=member_token)
        body = response.json()
        assert body["data"] == {"merchantInsights": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    unknown = {"merchant": "nobody", "from": today.isoformat(), "to": today.isoformat()}
    assert (await api.gql(INSIGHTS, unknown))["merchantInsights"] is None


@pytest.mark.parametrize(
    ("first", "last"),
    [(1, 0), (-731, 0), (-2000, -1269)],
    ids=["from-after-to", "732-days", "732-days-long-ago"],
)
async def test_a_period_backwards_or_over_two_years_is_invalid_input(
    api: Api, first: int, last: int
) -> None:
    await register(api, "jade", "JADE")
    today = _today()
    variables = {
        "merchant": "jade",
        "from": (today + dt.timedelta(days=first)).isoformat(),
        "to": (today + dt.timedelta(days=last)).isoformat(),
    }
    errors = await api.errors(INSIGHTS, variables)
    assert [e["extensions"]["code"] for e in errors] == ["INVALID_INPUT"]
    two_years = {**variables, "from": (today - dt.timedelta(days=730)).isoformat()}
    two_years["to"] = today.isoformat()
    assert (await api.gql(INSIGHTS, two_years))["merchantInsights"]["pointsIssued"] == 0


async def test_each_figure_is_one_query_and_only_what_is_asked_is_read(
    api: Api, world: dict[str, Any]
) -> None:
    from tests.hardening.test_costly_requests import counted_statements

    today = _today()
    variables = {"merchant": "jade", "from": str(today - dt.timedelta(days=29)), "to": str(today)}

    def reads(statements: list[str]) -> list[str]:
        return [
            s
            for s in statements
            if s.lstrip().upper().startswith("SELECT")
            and not any(word in s for word in ("api_keys", "set_config", "cache_versions"))
        ]

    with counted_statements(api) as statements:
        await api.gql(INSIGHTS, variables, key=world["jade"])
    found = reads(statements)
    # The merchant's programs and accounts; the points per day (issued, redeemed, expired,
    # green and daily from one); active members; tier counts and the ladder; the top
    # rewards; the rising members. The merchant itself is kept in memory (hub.caches).
    assert len(found) == 7, found
    assert sum("postings" in s for s in found) == 1
    with counted_statements(api) as statements:
        data = await api.gql(
            "query($merchant: ID!, $from: Date!, $to: Date!) { merchantInsights("
            "merchant: $merchant, from: $from, to: $to) { pointsIssued pointsExpired } }",
            variables,
            key=world["jade"],
        )
    assert data["merchantInsights"] == {"pointsIssued": 7000, "pointsExpired": 400}
    assert len(reads(statements)) == 2, reads(statements)


async def test_green_points_are_counted_apart_from_the_primary_programs(api: Api) -> None:
    from tests.loyalty.green_world import accrue_lines, green_world, lines

    world = await green_world(api)  # 5,000 HUB points earned by the member
    done = await accrue_lines(
        api,
        world["member"],
        "300",
        lines(("LED-LAMP", "100", ["green"]), ("RICE", "200", [])),
    )
    assert (done["points"], done["greenPoints"]) == (300, 200), done  # 2 per yuan on green
    today = _today()
    found = await _insights(api, "haowu", today, today, key=world["keys"]["haowu"])
    assert (found["pointsIssued"], found["greenPointsIssued"]) == (5300, 200)
    assert found["daily"][-1]["greenPointsIssued"] == 200
    # One member, counted once: the GREEN account is not a second membership.
    assert found["membersByTier"] == [{"tier": None, "members": 1}]
    assert found["activeMembers"] == 1
