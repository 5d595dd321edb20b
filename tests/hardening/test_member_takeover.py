"""Issue 14, member consent: the take-over a MERCHANT key could do, step by step, against a
demo-like world (the platform's HUB, a connected airline, the jade restaurant). Every step
is refused and no point moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub.config import Settings
from tests.helpers import (
    Api,
    accrue,
    balances,
    convert,
    create_key,
    enroll,
    member_session,
    redeem,
    register,
    running_app,
    set_rate,
    upsert_reward,
)
from tests.partners import Partners, partners, register_connected

STRANGER_MILES = 40_000


@pytest.fixture
async def live() -> AsyncIterator[Partners]:
    async with partners() as found:
        await found.start("skyair", "AIRLINE")
        yield found


@pytest.fixture
async def hub(settings: Settings, live: Partners) -> AsyncIterator[Api]:
    configured = settings.model_copy(
        update={"partner_secrets": live.secrets(), "allow_private_partners": True}
    )
    async with running_app(configured) as api:
        yield api


async def demo_like(api: Api, live: Partners) -> dict[str, Any]:
    """haowu (PLATFORM, HUB), skyair (connected SKYMILES), jade (hosted JADE); a stranger
    who holds HUB and SKYMILES and redeemed a jade meal with HUB points."""
    await register(api, "haowu", "HUB", category="PLATFORM")
    await register_connected(api, live, "skyair", "SKYMILES", "AIRLINE", pointValue="0.08")
    await register(api, "jade", "JADE", category="RESTAURANT")
    for source in ("HUB", "SKYMILES"):
        await set_rate(api, source, "JADE", "1")
    await set_rate(api, "SKYMILES", "HUB", "1")
    jade = await create_key(api, "MERCHANT", "jade")
    haowu = await create_key(api, "MERCHANT", "haowu")
    storefront = await create_key(api, "STOREFRONT")
    await upsert_reward(api, jade, ref="MEAL", kind="MEAL", title="Dim sum for two", price=50)
    stranger = await enroll(api, "HUB", "H-9", "Wang Fang")
    await accrue(api, stranger, "HUB", "5000")
    await live.member("skyair", "SK-9", STRANGER_MILES, name="Wang Fang")
    await enroll(api, "SKYMILES", "SK-9", "Wang Fang", member_id=stranger)
    # The stranger shops in the platform's mall: a session the platform's backend minted.
    mall = await member_session(api, stranger, key=haowu)
    meal = await redeem(api, stranger, "jade:MEAL", "HUB", key=storefront, member_token=mall)
    assert meal["userErrors"] == [], meal
    # ... and converts miles into HUB, through the platform program only.
    moved = await convert(api, stranger, "SKYMILES", "HUB", 1000, key=storefront, member_token=mall)
    assert moved["userErrors"] == [], moved
    return {
        "jade": jade,
        "haowu": haowu,
        "storefront": storefront,
        "stranger": stranger,
        "redemption": meal["redemption"]["id"],
        "conversion": moved["conversion"]["id"],
    }


async def test_a_merchant_key_cannot_take_over_a_stranger(hub: Api, live: Partners) -> None:
    world = await demo_like(hub, live)
    jade, stranger = world["jade"], world["stranger"]
    before = await balances(hub, stranger)
    miles_before = live.balance("skyair", "SK-9")

    # Each step's refusal is asserted at the end, so that on a hub without the defence the
    # chain runs on to the theft it allowed.
    # 1. Learn the stranger's id through the redemption of jade's own reward.
    response = await hub.post(
        "query($r: ID!, $c: ID!) { redemption(id: $r) { id member { id } } "
        "conversion(id: $c) { id member { id } } }",
        {"r": world["redemption"], "c": world["conversion"]},
        key=jade,
    )
    learned = response.json()

    # 2. Link the stranger into JADE without the stranger's consent.
    linked = await hub.gql(
        'mutation($m: ID!) { enrollMember(input: {program: "JADE", externalRef: "J-666", '
        'displayName: "Wang Fang", memberId: $m}) { member { id } '
        "userErrors { field message code } } }",
        {"m": stranger},
        key=jade,
    )

    # 3. Mint a session for the stranger.
    minted = await hub.gql(
        "mutation($m: ID!) { createMemberSession(memberId: $m) { token "
        "userErrors { field message code } } }",
        {"m": stranger},
        key=jade,
    )

    # 4. Convert the stranger's HUB and SKYMILES into JADE: with no session, with a session
    #    jade minted for one of its own members, with that token on jade's own key, and with
    #    whatever token step 3 gave.
    own = await enroll(hub, "JADE", "J-1", "Jade Regular", key=jade)
    own_token = await member_session(hub, own, key=jade)
    attempts: list[tuple[str, str | None]] = [
        (world["storefront"], None),
        (world["storefront"], own_token),
        (jade, own_token),
    ]
    stolen = minted["createMemberSession"]["token"]
    if stolen:
        attempts += [(world["storefront"], stolen), (jade, stolen)]
    for source in ("HUB", "SKYMILES"):
        for number, (key, token) in enumerate(attempts):
            response = await hub.post(
                "mutation($i: ConvertPointsInput!) { convertPoints(input: $i) "
                "{ conversion { id } userErrors { code } } }",
                {
                    "i": {
                        "memberId": stranger,
                        "from": source,
                        "to": "JADE",
                        "points": 100,
                        "idempotencyKey": f"steal-{source}-{number}",
                    }
                },
                key=key,
                member_token=token,
            )
            body = response.json()
            data = body.get("data") or {}
            payload = data.get("convertPoints") if data else None
            refused = (payload is None and body.get("errors")) or (
                payload is not None
                and payload["conversion"] is None
                and [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
            )
            assert refused, body  # asserted at once: a theft would change what follows

    # 5. The stranger's member object is not reachable through the gateway's _entities.
    entities = await hub.gql(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }",
        {"r": [{"__typename": "Member", "id": stranger}]},
        key=jade,
    )
    assert entities["_entities"] == [None]

    assert stranger not in str(learned), learned
    assert learned["data"]["redemption"] is None and learned["data"]["conversion"] is None
    assert {e["extensions"]["code"] for e in learned.get("errors", [])} <= {"FORBIDDEN"}
    # The redemption itself stays readable to jade without the member.
    mine = await hub.gql(
        "query($r: ID!) { redemption(id: $r) { id status } }", {"r": world["redemption"]}, key=jade
    )
    assert mine["redemption"] == {"id": world["redemption"], "status": "CONFIRMED"}
    assert minted["createMemberSession"]["token"] is None
    assert [e["code"] for e in minted["createMemberSession"]["userErrors"]] == ["FORBIDDEN"]
    assert linked["enrollMember"]["member"] is None
    assert [e["code"] for e in linked["enrollMember"]["userErrors"]] == ["CONSENT_REQUIRED"]
    # Nothing moved, nothing was linked.
    after = await balances(hub, stranger)
    assert after == before and "JADE" not in after
    assert live.balance("skyair", "SK-9") == miles_before
