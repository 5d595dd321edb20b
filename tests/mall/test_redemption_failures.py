"""A redemption that fails, or whose cancellation waits or is refused, as the member, the
merchants and their webhooks are told of it (outside attacks helper-72 to -78): what was
applied and what is still owed, why, and a partner's own words only to whoever may see
the member."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.config import Settings
from hub.migrate import upgrade
from tests.helpers import (
    Api,
    balances,
    cancel_redemption,
    create_key,
    member_session,
    outbox,
    redeem,
    running_app,
    verify_ledger,
)
from tests.mall.test_mall_compensating_steps import _cool_down, _drive, _world, hub, live
from tests.partners import Partners

__all__ = ["hub", "live"]  # the fixtures these tests share with the saga's


async def test_a_waiting_cancellation_says_so_and_shows_only_what_was_applied(
    hub: Api, live: Partners, db_url: str
) -> None:
    """Outside attack (low): a cancellation waiting for the partner answered PENDING with
    the compensation already counted and nothing to tell it from a booking not yet made.
    While it waits, the redemption is PENDING with the cancellation's reason, and shows as
    refunded and compensated only what was: none of it until the shop confirms."""
    member = await _world(hub, live)
    done = await redeem(hub, member, "shop:CAR-WASH", "HUB")
    rid = done["redemption"]["id"]
    assert done["redemption"]["status"] == "CONFIRMED", done
    await live.faults("shop", error_rate=1.0, operations=["cancel"])
    waiting = await cancel_redemption(hub, rid, "MERCHANT_CANCELLED")
    shown = """query($id: ID!) { redemption(id: $id) {
      status refundedPoints compensationPoints cancellationReason cancelledAt } }"""
    expected = {
        "status": "PENDING",
        "refundedPoints": 0,
        "compensationPoints": 0,
        "cancellationReason": "MERCHANT_CANCELLED",
        "cancelledAt": None,
    }
    assert waiting["userErrors"] == [], waiting
    assert (await hub.gql(shown, {"id": rid}))["redemption"] == expected
    assert (await balances(hub, member))["HUB"] == 9_700
    await live.faults("shop")
    _cool_down(hub, "shop")
    await _drive(hub)
    after = (await hub.gql(shown, {"id": rid}))["redemption"]
    assert after == {
        **after,
        "status": "CANCELLED",
        "refundedPoints": 300,
        "compensationPoints": 60,
        "cancellationReason": "MERCHANT_CANCELLED",
    }
    assert after["cancelledAt"] is not None
    assert (await balances(hub, member))["HUB"] == 10_060
    assert await verify_ledger(db_url) == []


async def test_a_cancellation_refused_after_it_was_answered_pending_says_why(
    hub: Api, live: Partners, db_url: str
) -> None:
    """Outside attack helper-75 (medium): the merchant's cancellation was answered PENDING
    (the shop down), then the shop refused it; the redemption went back to CONFIRMED and
    nothing told the merchant that asked. The redemption keeps why (`failure`, the
    userError the request would have answered with), and the merchants concerned get
    REDEMPTION_CANCELLATION_REFUSED; a later cancellation that succeeds clears it."""
    member = await _world(hub, live)
    done = await redeem(hub, member, "shop:CAR-WASH", "HUB")
    rid = done["redemption"]["id"]
    await live.faults("shop", error_rate=1.0, operations=["cancel"])
    waiting = await cancel_redemption(hub, rid, "MERCHANT_CANCELLED")
    assert waiting["redemption"]["status"] == "PENDING" and waiting["userErrors"] == []
    shown = """query($id: ID!) { redemption(id: $id) {
      status cancellationReason compensationPoints failure { field message code } } }"""
    assert (await hub.gql(shown, {"id": rid}))["redemption"]["failure"] is None
    gone = {"error": {"code": "GONE", "message": "the car was already washed"}}
    await live.faults("shop", answer_with={"status": 409, "json": gone}, operations=["cancel"])
    _cool_down(hub, "shop")
    await _drive(hub)
    refused = (await hub.gql(shown, {"id": rid}))["redemption"]
    assert refused == {
        **refused,
        "status": "CONFIRMED",
        "cancellationReason": None,
        "compensationPoints": 0,
    }
    failure = refused["failure"]
    assert (failure["code"], failure["field"]) == ("PARTNER_REJECTED", ["input", "redemptionId"])
    assert "already washed" in failure["message"], failure
    told = [
        (k, to, data) for k, to, data in await outbox(db_url) if data.get("redemptionId") == rid
    ]
    refusals = [(to, data) for k, to, data in told if k == "REDEMPTION_CANCELLATION_REFUSED"]
    assert sorted(to for to, _ in refusals) == ["haowu", "shop"], told
    assert {data["failure"]["code"] for _, data in refusals} == {"PARTNER_REJECTED"}
    assert (await balances(hub, member))["HUB"] == 9_700
    # The shop finds the booking cancellable again: the member's own cancellation succeeds.
    await live.faults("shop")
    _cool_down(hub, "shop")
    cancelled = await cancel_redemption(hub, rid, "MEMBER_REQUEST")
    assert cancelled["userErrors"] == [] and cancelled["redemption"]["status"] == "CANCELLED"
    assert (await hub.gql(shown, {"id": rid}))["redemption"]["failure"] is None
    assert await verify_ledger(db_url) == []


async def test_a_refund_the_partner_refuses_says_why_until_it_lands(
    hub: Api, live: Partners, db_url: str
) -> None:
    """A cancellation whose refund the paying program's partner refused (the account
    frozen) stayed PENDING with no failure: nothing told the member, the merchants or
    finance why the points did not come back. The refusal is the redemption's failure
    (the partner's words only to whoever may see the member) while the refund is tried
    again; once the partner applies it, the redemption is CANCELLED and the failure gone."""
    member = await _world(hub, live)
    done = await redeem(hub, member, "jade:MEAL", "WASH")
    rid = done["redemption"]["id"]
    assert done["redemption"]["status"] == "CONFIRMED", done
    assert live.balance("carwash", "W-1") == 800
    frozen = {"error": {"code": "FROZEN", "message": "Account W-1 is frozen"}}
    await live.faults(
        "carwash", answer_with={"status": 422, "json": frozen}, operations=["reverse", "credit"]
    )
    cancelled = await cancel_redemption(hub, rid, "MERCHANT_CANCELLED")
    shown = """query($id: ID!) { redemption(id: $id) {
      status refundedPoints failure { field message code } } }"""
    refused = {
        "field": ["input", "redemptionId"],  # the cancellation's, as a merchant's refusal is
        "message": "Account W-1 is frozen. The points are being returned.",
        "code": "PARTNER_REJECTED",
    }
    assert cancelled["redemption"]["status"] == "PENDING", cancelled
    # The cancellation went ahead: why its refund waits is the redemption's, not an error
    # of the request (outside attack helper-79: "nothing changed" is what userErrors say).
    assert cancelled["userErrors"] == [], cancelled
    expected = {"status": "PENDING", "refundedPoints": 0, "failure": refused}
    assert (await hub.gql(shown, {"id": rid}))["redemption"] == expected
    await _drive(hub)  # refused again: still owed, still saying why
    assert (await hub.gql(shown, {"id": rid}))["redemption"] == expected
    jade = await create_key(hub, "MERCHANT", "jade")
    withheld = "The partner's reason is shown to the member. The points are being returned."
    found = (await hub.gql(shown, {"id": rid}, key=jade))["redemption"]
    assert found["failure"]["message"] == withheld, found
    assert live.balance("carwash", "W-1") == 800
    await live.faults("carwash")
    _cool_down(hub, "carwash")
    await _drive(hub)
    after = (await hub.gql(shown, {"id": rid}))["redemption"]
    assert after == {"status": "CANCELLED", "refundedPoints": 200, "failure": None}
    assert live.balance("carwash", "W-1") >= 1000  # the refund, and the compensation
    assert await verify_ledger(db_url) == []


async def test_a_partners_words_reach_only_whoever_may_see_the_member(
    hub: Api, live: Partners, db_url: str
) -> None:
    """Outside attacks helper-76 and -77 (medium, then high): a partner's refusal that named
    the member went word for word into the userError, the redemption's failure (which the
    paying program's merchant reads) and both merchants' webhooks; masking the name and
    phone numbers in free text missed their other spellings, emails and ID numbers. A
    partner's own words now reach only ADMIN and the member's own session; a merchant, a
    session a merchant minted and the webhooks read the failure without them."""
    member = await _world(hub, live)
    words = "Guest Fang WANG (wang.fang@example.com, 138.1234.5678, 330106199001011234)"
    full = {"error": {"code": "FULL", "message": words}}
    await live.faults("shop", answer_with={"status": 409, "json": full}, operations=["book"])
    shop = await create_key(hub, "MERCHANT", "shop")
    carwash = await create_key(hub, "MERCHANT", "carwash")
    storefront = await create_key(hub, "STOREFRONT")
    own = await member_session(hub, member)  # minted by ADMIN: the member itself
    minted = await member_session(hub, member, key=carwash)  # minted by a merchant alone
    failed = await redeem(hub, member, "shop:CAR-WASH", "WASH", key=storefront, member_token=own)
    rid = failed["redemption"]["id"]
    assert failed["redemption"]["status"] == "FAILED", failed
    told = f"{words}. The points were returned."
    withheld = "The partner's reason is shown to the member. The points were returned."
    assert failed["userErrors"][0]["message"] == told  # the member's own answer
    shown = "query($id: ID!) { redemption(id: $id) { failure { code message } } }"

    async def read(**caller: Any) -> str:
        found = (await hub.gql(shown, {"id": rid}, **caller))["redemption"]
        assert found["failure"]["code"] == "PARTNER_REJECTED", found
        return str(found["failure"]["message"])

    assert await read() == told  # ADMIN
    assert await read(key=storefront, member_token=own) == told
    assert await read(key=shop) == withheld  # the reward's merchant
    assert await read(key=carwash) == withheld  # the paying program's
    assert await read(key=storefront, member_token=minted) == withheld
    events = [d for _, _, d in await outbox(db_url) if d.get("redemptionId") == rid]
    assert [d["failure"]["message"] for d in events] == [withheld, withheld], events
    assert live.balance("carwash", "W-1") == 1000


async def test_a_failure_whose_points_are_on_their_way_back_says_so(
    hub: Api, live: Partners, db_url: str
) -> None:
    """Outside attack helper-76 (medium): a redemption whose booking the merchant refused
    read as a finished failure ("No rooms") while its held points had not come back yet.
    It says the points are being returned until the release lands, then that they were,
    as a conversion's does."""
    member = await _world(hub, live)
    full = {"error": {"code": "FULL", "message": "No car wash today"}}
    await live.faults("shop", answer_with={"status": 409, "json": full}, operations=["book"])
    await live.faults("carwash", error_rate=1.0, operations=["reverse"])
    started = await redeem(hub, member, "shop:CAR-WASH", "WASH")
    rid = started["redemption"]["id"]
    assert started["redemption"]["status"] == "PENDING", started
    assert live.balance("carwash", "W-1") == 700  # held, not yet given back
    shown = "query($id: ID!) { redemption(id: $id) { status failure { message code } } }"
    failure = (await hub.gql(shown, {"id": rid}))["redemption"]["failure"]
    assert failure["message"] == "No car wash today. The points are being returned.", failure
    assert started["userErrors"][0]["message"] == failure["message"], started
    await live.faults("shop")
    await live.faults("carwash")
    _cool_down(hub, "carwash")
    await _drive(hub)
    done = (await hub.gql(shown, {"id": rid}))["redemption"]
    assert done == {
        "status": "FAILED",
        "failure": {
            "message": "No car wash today. The points were returned.",
            "code": "PARTNER_REJECTED",
        },
    }
    assert live.balance("carwash", "W-1") == 1000
    assert await verify_ledger(db_url) == []


async def test_a_failed_redemption_stays_in_the_members_list_with_why(
    hub: Api, live: Partners
) -> None:
    """Outside attack helper-76 (low-medium): a redemption the member saw PENDING in its list
    vanished from it once it FAILED (the list left failures out), and its `failure` was
    reachable only by id. ADMIN and the member see all their redemptions, failed ones with
    why."""
    member = await _world(hub, live)
    full = {"error": {"code": "FULL", "message": "No car wash today"}}
    await live.faults("shop", answer_with={"status": 409, "json": full}, operations=["book"])
    failed = await redeem(hub, member, "shop:CAR-WASH", "HUB")
    rid = failed["redemption"]["id"]
    listed = """query($id: ID!) { member(id: $id) { redemptions(first: 10) {
      edges { node { id status failure { code message } } } } } }"""
    nodes = [
        e["node"] for e in (await hub.gql(listed, {"id": member}))["member"]["redemptions"]["edges"]
    ]
    assert nodes == [
        {
            "id": rid,
            "status": "FAILED",
            "failure": {
                "code": "PARTNER_REJECTED",
                "message": "No car wash today. The points were returned.",
            },
        }
    ]


BALANCE_OF_WASH = """query($id: ID!) {
  member(id: $id) { account(program: "WASH") { balance } } }"""


async def test_a_partners_words_stay_out_of_the_log(
    settings: Settings,
    live: Partners,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Outside attack helper-78 (medium): each refusal's words were logged as `reason=`
    ("Guest Wang Fang ... wang@x.com"), where the logs carry no names: only the phone was
    masked. The log says a partner refused, and how, without its words."""
    caplog.set_level(logging.INFO)
    loud = settings.model_copy(
        update={
            "partner_secrets": live.secrets(),
            "allow_private_partners": True,
            "log_level": "INFO",
        }
    )
    words = {"error": {"code": "X", "message": "Guest Li Na li.na@example.com"}}
    async with running_app(loud) as api:
        member = await _world(api, live)
        await live.faults("shop", answer_with={"status": 409, "json": words}, operations=["book"])
        failed = await redeem(api, member, "shop:CAR-WASH", "WASH")
        assert failed["redemption"]["status"] == "FAILED", failed
        # A compensating step refused with words is logged too (and tried again later).
        done = await redeem(api, member, "jade:MEAL", "WASH")
        await live.faults(
            "carwash", answer_with={"status": 422, "json": words}, operations=["reverse"]
        )
        waiting = await cancel_redemption(api, done["redemption"]["id"])
        assert waiting["redemption"]["status"] == "PENDING", waiting
        # A balance the partner gave before, then refused with words (outside attack
        # helper-81: the warning carried the refusal word for word).
        await api.gql(BALANCE_OF_WASH, {"id": member})
        await live.faults(
            "carwash", answer_with={"status": 404, "json": words}, operations=["balance"]
        )
        await api.post(BALANCE_OF_WASH, {"id": member})
    out = capsys.readouterr()
    logged = "\n".join(
        [out.out, out.err, *(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)]
    )
    assert "partner call not applied" in logged and "compensating step" in logged
    assert "a partner refused a balance it gave before" in logged
    assert "Li Na" not in logged and "li.na@" not in logged


async def test_failures_recorded_before_their_telling_get_one(
    hub: Api, live: Partners, db_url: str
) -> None:
    """A failure recorded before the fix of helper-77 kept the partner's words alone, and
    merchants read them. Migration 0029 gives each such failure its telling: the words
    left out whole, what the hub said of the points kept."""
    member = await _world(hub, live)
    words = {"error": {"code": "FULL", "message": "Guest Wang Fang, 138 1234 5678"}}
    await live.faults("shop", answer_with={"status": 409, "json": words}, operations=["book"])
    failed = await redeem(hub, member, "shop:CAR-WASH", "WASH")
    rid = failed["redemption"]["id"]
    assert failed["redemption"]["status"] == "FAILED", failed
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:  # as a hub before the fix recorded it
            (stored,) = (
                await conn.execute(
                    text("SELECT failure FROM redemptions WHERE id = :id"), {"id": rid}
                )
            ).one()
            old = {k: v for k, v in json.loads(stored).items() if k != "withheld"}
            await conn.execute(
                text("UPDATE redemptions SET failure = :f WHERE id = :id"),
                {"f": json.dumps(old), "id": rid},
            )
            await conn.execute(text("UPDATE alembic_version SET version_num = '0028'"))
    finally:
        await engine.dispose()
    shop = await create_key(hub, "MERCHANT", "shop")
    shown = "query($id: ID!) { redemption(id: $id) { failure { message } } }"
    said = "Guest Wang Fang, 138 1234 5678. The points were returned."
    assert (await hub.gql(shown, {"id": rid}, key=shop))["redemption"]["failure"]["message"] == said
    await upgrade(db_url)
    withheld = "The partner's reason is shown to the member. The points were returned."
    found = (await hub.gql(shown, {"id": rid}, key=shop))["redemption"]["failure"]
    assert found["message"] == withheld
    assert (await hub.gql(shown, {"id": rid}))["redemption"]["failure"]["message"] == said
