"""Members and accrual through the API: enrollment, visibility, idempotency, bad input."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from hub.config import Settings
from tests.helpers import (
    ACCRUE,
    BALANCES,
    ENROLL,
    Api,
    accrue,
    balances,
    create_key,
    enroll,
    member_session,
    register,
    running_app,
    verify_ledger,
)


@pytest.fixture
async def two_merchants(api: Api) -> dict[str, str]:
    await register(api, "jade", "JADE", category="RESTAURANT", accrualRate="1", expiryMonths=12)
    await register(api, "lotus", "LOTUS", category="HOTEL", accrualRate="10")
    return {
        "jade": await create_key(api, "MERCHANT", "jade"),
        "lotus": await create_key(api, "MERCHANT", "lotus"),
    }


async def test_enroll_new_member_then_link_to_another_program(
    api: Api, two_merchants: dict[str, str]
) -> None:
    member = await enroll(api, "JADE", "J-001", "李小龙", key=two_merchants["jade"])
    # The member consents in the universal mall (a session ADMIN or the platform minted);
    # lotus links with it. A session jade minted would be jade's word, not hers.
    consent = await member_session(api, member)
    same = await enroll(
        api,
        "LOTUS",
        "L-9",
        "ignored",
        member_id=member,
        key=two_merchants["lotus"],
        member_token=consent,
    )
    assert same == member
    data = await api.gql(BALANCES, {"id": member})
    accounts = {a["program"]["code"]: a["externalRef"] for a in data["member"]["accounts"]}
    assert accounts == {"JADE": "J-001", "LOTUS": "L-9"}
    assert data["member"]["displayName"] == "李小龙"
    found = await api.gql('query { memberByRef(program: "LOTUS", externalRef: "L-9") { id } }')
    assert found["memberByRef"] == {"id": member}


async def test_enroll_duplicate_membership_number_is_already_exists(
    api: Api, two_merchants: dict[str, str]
) -> None:
    member = await enroll(api, "JADE", "J-001")
    for variables, field in [
        ({"program": "JADE", "externalRef": "J-001", "displayName": "x"}, "externalRef"),
        (
            {"program": "JADE", "externalRef": "J-002", "displayName": "x", "memberId": member},
            "memberId",
        ),
    ]:
        payload = (await api.gql(ENROLL, {"input": variables}))["enrollMember"]
        assert payload["member"] is None
        assert payload["userErrors"][0]["code"] == "ALREADY_EXISTS"
        assert payload["userErrors"][0]["field"] == ["input", field]


async def test_merchant_cannot_enroll_in_another_program(
    api: Api, two_merchants: dict[str, str]
) -> None:
    payload = (
        await api.gql(
            ENROLL,
            {"input": {"program": "LOTUS", "externalRef": "x", "displayName": "x"}},
            key=two_merchants["jade"],
        )
    )["enrollMember"]
    assert payload["userErrors"][0]["code"] == "FORBIDDEN"


async def test_accrual_is_floor_of_amount_times_rate_with_lot_expiry(
    api: Api, two_merchants: dict[str, str], db_url: str
) -> None:
    member = await enroll(api, "JADE", "J-001")
    payload = await accrue(api, member, "JADE", "25.90", order="bill-1", key=two_merchants["jade"])
    assert payload["userErrors"] == []
    assert payload["points"] == 25
    entry = payload["entry"]
    assert entry["kind"] == "ACCRUAL"
    assert entry["points"] == 25
    assert entry["balanceAfter"] == 25
    assert entry["reference"] == "bill-1"
    assert entry["program"] == {"code": "JADE"}
    data = await api.gql(BALANCES, {"id": member})
    account = data["member"]["accounts"][0]
    assert account["balance"] == 25
    assert account["held"] == 0
    expires = dt.datetime.fromisoformat(account["expiring"][0]["expiresAt"])
    assert account["expiring"][0]["points"] == 25
    assert 360 <= (expires - dt.datetime.now(dt.UTC)).days <= 366
    assert await verify_ledger(db_url) == []


async def test_promotions_multiply_accrual_within_their_period(
    api: Api, two_merchants: dict[str, str]
) -> None:
    member = await enroll(api, "JADE", "J-001")
    now = dt.datetime.now(dt.UTC)
    promotion = """mutation P($input: PromotionInput!) {
      setPromotion(input: $input) { ok userErrors { code field } } }"""
    for label, starts, ends in [
        ("anniversary", now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)),
        ("last year", now - dt.timedelta(days=400), now - dt.timedelta(days=300)),
    ]:
        data = await api.gql(
            promotion,
            {
                "input": {
                    "program": "JADE",
                    "accrualMultiplier": "2",
                    "startsAt": starts.isoformat(),
                    "endsAt": ends.isoformat(),
                    "label": label,
                }
            },
            key=two_merchants["jade"],
        )
        assert data["setPromotion"] == {"ok": True, "userErrors": []}
    payload = await accrue(api, member, "JADE", "100.00", key=two_merchants["jade"])
    assert payload["points"] == 200
    assert "anniversary" in payload["entry"]["memo"]
    refused = await api.gql(
        promotion,
        {
            "input": {
                "program": "JADE",
                "accrualMultiplier": "2",
                "startsAt": now.isoformat(),
                "endsAt": now.isoformat(),
                "label": "empty",
            }
        },
    )
    assert refused["setPromotion"]["ok"] is False
    assert refused["setPromotion"]["userErrors"][0]["field"] == ["input", "endsAt"]


async def test_same_idempotency_key_moves_points_once(
    api: Api, two_merchants: dict[str, str], db_url: str
) -> None:
    member = await enroll(api, "JADE", "J-001")
    first = await accrue(api, member, "JADE", "10", order="o-1", idempotency_key="k-1")
    again = await accrue(api, member, "JADE", "10", order="o-1", idempotency_key="k-1")
    assert again == first
    assert await balances(api, member) == {"JADE": 10}
    conflict = await accrue(api, member, "JADE", "11", order="o-1", idempotency_key="k-1")
    assert conflict["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    assert await balances(api, member) == {"JADE": 10}
    assert await verify_ledger(db_url) == []


async def test_a_replay_answers_what_the_first_call_answered(
    api: Api, two_merchants: dict[str, str]
) -> None:
    """The first call answers from the entry it made, a replay from the database: every
    field of the answer is the same, moments included."""
    member = await enroll(api, "JADE", "J-001")
    query = """mutation A($input: AccruePointsInput!) { accruePoints(input: $input) {
      points greenPoints entry { id kind points balanceAfter occurredAt businessDate
      reference memo program { code } } userErrors { code } } }"""
    variables = {
        "input": {
            "memberId": member,
            "program": "JADE",
            "orderRef": "o-9",
            "amount": "10.50",
            "occurredAt": (dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
            .astimezone(dt.timezone(dt.timedelta(hours=8)))
            .isoformat(),  # microseconds and an offset: the replay must give them back alike
            "idempotencyKey": "replay-1",
        }
    }
    first = await api.gql(query, variables)
    again = await api.gql(query, variables)
    assert first["accruePoints"]["userErrors"] == []
    assert again == first


async def test_concurrent_duplicates_move_points_once(
    api: Api, two_merchants: dict[str, str], db_url: str
) -> None:
    member = await enroll(api, "JADE", "J-001")
    results = await asyncio.gather(
        *[accrue(api, member, "JADE", "7", order="o-1", idempotency_key="same") for _ in range(12)]
    )
    assert all(r["userErrors"] == [] for r in results)
    assert len({r["entry"]["id"] for r in results}) == 1
    assert await balances(api, member) == {"JADE": 7}
    assert await verify_ledger(db_url) == []


async def test_an_order_earns_once_whatever_the_key(
    api: Api, two_merchants: dict[str, str]
) -> None:
    member = await enroll(api, "JADE", "J-001")
    await accrue(api, member, "JADE", "10", order="o-1", idempotency_key="a")
    again = await accrue(api, member, "JADE", "10", order="o-1", idempotency_key="b")
    assert again["userErrors"][0]["code"] == "ALREADY_EXISTS"
    assert again["userErrors"][0]["field"] == ["input", "orderRef"]
    assert await balances(api, member) == {"JADE": 10}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"amount": "0"}, "INVALID_INPUT", "amount"),
        ({"amount": "-5"}, "INVALID_INPUT", "amount"),
        ({"amount": "1e12"}, "INVALID_INPUT", "amount"),
        ({"amount": "NaN"}, "INVALID_INPUT", "amount"),
        ({"amount": "0.5"}, "INVALID_INPUT", "amount"),
        ({"amount": "10.001"}, "INVALID_INPUT", "amount"),
        ({"orderRef": ""}, "INVALID_INPUT", "orderRef"),
        ({"orderRef": "   "}, "INVALID_INPUT", "orderRef"),
        ({"memberId": "mbr_unknown"}, "NOT_FOUND", "memberId"),
        ({"program": "NOPE"}, "NOT_FOUND", "program"),
        ({"program": "LOTUS"}, "FORBIDDEN", "program"),
        ({"occurredAt": "2999-01-01T00:00:00+00:00"}, "INVALID_INPUT", "occurredAt"),
    ],
)
async def test_bad_accrual_moves_nothing(
    api: Api,
    two_merchants: dict[str, str],
    db_url: str,
    change: dict[str, str],
    code: str,
    field: str,
) -> None:
    member = await enroll(api, "JADE", "J-001", key=two_merchants["jade"])
    await enroll(api, "LOTUS", "L-1", member_id=member)
    variables = {
        "memberId": member,
        "program": "JADE",
        "orderRef": "o-1",
        "amount": "10",
        "idempotencyKey": "k",
        **change,
    }
    data = await api.gql(ACCRUE, {"input": variables}, key=two_merchants["jade"])
    payload = data["accruePoints"]
    assert payload["points"] is None and payload["entry"] is None
    assert payload["userErrors"][0]["code"] == code
    assert payload["userErrors"][0]["field"] == ["input", field]
    assert await balances(api, member) == {"JADE": 0, "LOTUS": 0}
    assert await verify_ledger(db_url) == []


async def test_merchant_sees_only_its_own_members_and_accounts(
    api: Api, two_merchants: dict[str, str]
) -> None:
    both = await enroll(api, "JADE", "J-1", "Wang Fang")
    await enroll(api, "LOTUS", "L-1", member_id=both)
    jade_only = await enroll(api, "JADE", "J-2")
    await accrue(api, both, "JADE", "10")
    await accrue(api, both, "LOTUS", "10")
    lotus = two_merchants["lotus"]
    assert (await api.gql(BALANCES, {"id": jade_only}, key=lotus))["member"] is None
    data = await api.gql(BALANCES, {"id": both}, key=lotus)
    assert data["member"]["displayName"] == "W********"
    assert [a["program"]["code"] for a in data["member"]["accounts"]] == ["LOTUS"]
    history = await api.gql(
        f'{{ member(id: "{both}") {{ history {{ edges {{ node {{ program {{ code }} }} }} }} '
        f'jade: account(program: "JADE") {{ balance }} }} }}',
        key=lotus,
    )
    codes = [e["node"]["program"]["code"] for e in history["member"]["history"]["edges"]]
    assert codes == ["LOTUS"]
    assert history["member"]["jade"] is None
    by_ref = await api.gql(
        'query { memberByRef(program: "JADE", externalRef: "J-2") { id } }', key=lotus
    )
    assert by_ref["memberByRef"] is None


async def test_storefront_with_member_token_sees_that_member_only(
    api: Api, two_merchants: dict[str, str]
) -> None:
    alice = await enroll(api, "JADE", "J-1", "Alice")
    bob = await enroll(api, "JADE", "J-2", "Bob")
    storefront = await create_key(api, "STOREFRONT")
    session = await api.gql(
        f'mutation {{ createMemberSession(memberId: "{alice}") '
        "{ token expiresAt userErrors { code } } }",
        key=two_merchants["jade"],
    )
    token = session["createMemberSession"]["token"]
    me = await api.gql(
        "{ viewer { role member { id displayName } } }", key=storefront, member_token=token
    )
    # jade minted the session (no member need be present): it reads her as jade does.
    assert me["viewer"] == {"role": "STOREFRONT", "member": {"id": alice, "displayName": "A****"}}
    assert (await api.gql(BALANCES, {"id": bob}, key=storefront, member_token=token))[
        "member"
    ] is None
    errors = await api.errors(BALANCES, {"id": alice}, key=storefront)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    # A merchant cannot mint a session for a member it does not know.
    other = await api.gql(
        "mutation S($id: ID!) { createMemberSession(memberId: $id) { token userErrors { code } } }",
        {"id": alice},
        key=two_merchants["lotus"],
    )
    assert other["createMemberSession"] == {"token": None, "userErrors": [{"code": "FORBIDDEN"}]}


async def test_history_pages_never_repeat_or_skip(api: Api, two_merchants: dict[str, str]) -> None:
    member = await enroll(api, "JADE", "J-1")
    for i in range(7):
        await accrue(api, member, "JADE", str(10 + i), order=f"o-{i}")
    seen: list[str] = []
    after = None
    while True:
        data = await api.gql(
            "query H($id: ID!, $after: String) { member(id: $id) { history(first: 3, after: $after)"
            " { edges { cursor node { id reference points balanceAfter } } "
            "pageInfo { hasNextPage endCursor } } } }",
            {"id": member, "after": after},
        )
        page = data["member"]["history"]
        seen += [e["node"]["reference"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"o-{i}" for i in reversed(range(7))]
    errors = await api.errors(
        f'query {{ member(id: "{member}") {{ history(first: 101) {{ edges {{ cursor }} }} }} }}'
    )
    assert "first must be between 0 and 100" in errors[0]["message"]


async def test_a_purchase_whose_points_have_expired_earns_them_and_they_expire_at_once(
    settings: Settings,
) -> None:
    """A purchase dated so far back that its points have expired since (the program's
    expiry passed) earns them, and they expire in the same transaction: the member's
    history shows the accrual and its expiry, and the balance is what the history adds up
    to at once, not only once the expiry job has run (outside attack helper-89: the
    balance said 1,500 while the history added up to 3,000). One within its expiry earns
    as before."""
    async with running_app(settings) as api:
        await register(api, "haowu", "HUB", category="PLATFORM")
        await register(api, "brief", "BRIEF", expiryMonths=1)
        member = await enroll(api, "BRIEF", "B-1")
        now = dt.datetime.now(dt.UTC)
        for days in (40, 20):
            data = await api.gql(
                ACCRUE,
                {
                    "input": {
                        "memberId": member,
                        "program": "BRIEF",
                        "orderRef": f"o-{days}",
                        "amount": "100",
                        "occurredAt": (now - dt.timedelta(days=days)).isoformat(),
                        "idempotencyKey": f"k-{days}",
                    }
                },
            )
            assert data["accruePoints"]["userErrors"] == [], data
            assert data["accruePoints"]["points"] == 100
        history = await api.gql(
            "query H($id: ID!) { member(id: $id) { history(first: 10) { edges { node { "
            "kind points balanceAfter } } } } }",
            {"id": member},
        )
        moves = [e["node"] for e in history["member"]["history"]["edges"]]
        assert sorted((m["kind"], m["points"]) for m in moves) == [
            ("ACCRUAL", 100),
            ("ACCRUAL", 100),
            ("EXPIRY", -100),
        ], moves
        assert sum(m["points"] for m in moves) == 100
        assert (await balances(api, member))["BRIEF"] == 100
        assert await verify_ledger(settings.database_url) == []
