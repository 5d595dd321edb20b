"""The tenancy matrix: every role against every query and mutation of the contract,
allowed or FORBIDDEN as the contract's comments say; and no response carries another
merchant's members, statements or redemptions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hub.db import utcnow
from tests.helpers import (
    Api,
    accrue,
    convert,
    create_key,
    enroll,
    member_session,
    redeem,
    set_rate,
    upsert_reward,
)
from tests.world import World

ROLES = ["ADMIN", "MERCHANT", "FINANCE", "STOREFRONT"]
ALL = set(ROLES)

# operation -> (document, roles allowed). The contract's Mutation comments:
#   ADMIN | MERCHANT (own program) or ADMIN | the member (STOREFRONT + token) or ADMIN |
#   the member, the reward's merchant, or ADMIN | ADMIN or FINANCE | FINANCE (approve,
#   paid) | FINANCE or the statement's merchant (dispute).
MATRIX: dict[str, tuple[str, set[str]]] = {
    "viewer": ("{ viewer { role } }", ALL),
    "merchants": ("{ merchants { id } }", ALL),
    "merchant": ('{ merchant(id: "jade") { id } }', ALL),
    "programs": ("{ programs { code } }", ALL),
    "program": ('{ program(code: "JADE") { code } }', ALL),
    "exchangeRates": ("{ exchangeRates { id } }", ALL),
    "rewards": ("{ rewards { edges { cursor } } }", ALL),
    "reward": ('{ reward(id: "jade:MEAL") { id } }', ALL),
    "member": ('{ member(id: "$MEMBER") { id } }', {"ADMIN", "MERCHANT", "STOREFRONT"}),
    "memberByRef": (
        '{ memberByRef(program: "JADE", externalRef: "J-1") { id } }',
        {"ADMIN", "MERCHANT", "STOREFRONT"},
    ),
    "conversion": ('{ conversion(id: "cnv_x") { id } }', ALL),
    "_entities": (
        '{ _entities(representations: [{__typename: "Member", id: "$MEMBER"}])'
        " { ... on Member { id } } }",
        ALL,
    ),
    "redemption": ('{ redemption(id: "$REDEMPTION") { id } }', ALL),
    "settlementBatch": ('{ settlementBatch(businessDate: "$TODAY") { id } }', {"ADMIN", "FINANCE"}),
    "settlementBatches": ("{ settlementBatches { edges { cursor } } }", {"ADMIN", "FINANCE"}),
    "statement": ('{ statement(id: "$STATEMENT") { id } }', {"ADMIN", "FINANCE", "MERCHANT"}),
    "registerMerchant": (
        'mutation { registerMerchant(input: {id: "newco", name: "N", category: OTHER, '
        'programCode: "NEWCO", programName: "N", pointValue: "0.1"}) { userErrors { code } } }',
        {"ADMIN"},
    ),
    "createApiKey": (
        'mutation { createApiKey(input: {role: FINANCE, label: "x"}) { userErrors { code } } }',
        {"ADMIN"},
    ),
    "setExchangeRate": (
        'mutation { setExchangeRate(input: {from: "JADE", to: "HUB", rate: "1"})'
        " { userErrors { code } } }",
        {"ADMIN"},
    ),
    "enrollMember": (
        'mutation { enrollMember(input: {program: "JADE", externalRef: "J-9", '
        'displayName: "x"}) { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "accruePoints": (
        'mutation { accruePoints(input: {memberId: "$MEMBER", program: "JADE", '
        'orderRef: "o", amount: "1", idempotencyKey: "k"}) { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "upsertReward": (
        'mutation { upsertReward(input: {ref: "R", kind: MEAL, title: "t", '
        'price: 5, merchantId: "jade"}) { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "setPromotion": (
        'mutation { setPromotion(input: {program: "JADE", accrualMultiplier: "2", '
        'startsAt: "2030-01-01T00:00:00+00:00", endsAt: "2030-01-02T00:00:00+00:00",'
        ' label: "x"}) { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "createMemberSession": (
        'mutation { createMemberSession(memberId: "$MEMBER") { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "quoteConversion": (
        'mutation { quoteConversion(input: {memberId: "$MEMBER", from: "JADE", '
        'to: "HUB", points: 100}) { userErrors { code } } }',
        {"ADMIN", "STOREFRONT"},
    ),
    "convertPoints": (
        'mutation { convertPoints(input: {memberId: "$MEMBER", from: "JADE", '
        'to: "HUB", points: 100, idempotencyKey: "c"}) { userErrors { code } } }',
        {"ADMIN", "STOREFRONT"},
    ),
    "redeemReward": (
        'mutation { redeemReward(input: {memberId: "$MEMBER", rewardId: "jade:MEAL",'
        ' payWith: "JADE", idempotencyKey: "r"}) { userErrors { code } } }',
        {"ADMIN", "STOREFRONT"},
    ),
    "cancelRedemption": (
        'mutation { cancelRedemption(input: {redemptionId: "$REDEMPTION", '
        'reason: MEMBER_REQUEST, idempotencyKey: "x"}) { userErrors { code } } }',
        {"ADMIN", "STOREFRONT", "MERCHANT"},
    ),
    "runSettlement": (
        'mutation { runSettlement(businessDate: "2020-01-01") { userErrors { code } } }',
        {"ADMIN", "FINANCE"},
    ),
    "approveStatement": (
        'mutation { approveStatement(id: "$STATEMENT") { userErrors { code } } }',
        {"FINANCE"},
    ),
    "disputeStatement": (
        'mutation { disputeStatement(id: "$STATEMENT", reason: "r") { userErrors { code } } }',
        {"FINANCE", "MERCHANT"},
    ),
    "markStatementPaid": (
        'mutation { markStatementPaid(id: "$STATEMENT", paymentReference: "p")'
        " { userErrors { code } } }",
        {"FINANCE"},
    ),
    "statements": ("{ statements { edges { cursor } } }", {"ADMIN", "FINANCE", "MERCHANT"}),
    "apiKeys": ("{ apiKeys { id } }", {"ADMIN"}),
    "revokeApiKey": ('mutation { revokeApiKey(id: "key_x") { userErrors { code } } }', {"ADMIN"}),
    "reconciliation": (
        '{ reconciliation(merchant: "jade", businessDate: "$TODAY") { status } }',
        {"ADMIN", "FINANCE", "MERCHANT"},
    ),
    "reconciliations": (
        '{ reconciliations(businessDate: "$TODAY") { status } }',
        {"ADMIN", "FINANCE", "MERCHANT"},  # a merchant's own reports only
    ),
    "resolveDispute": (
        'mutation { resolveDispute(input: {statementId: "$STATEMENT", resolution: REJECTED, '
        'note: "n"}) { userErrors { code } } }',
        {"FINANCE"},
    ),
    "webhookSubscriptions": ("{ webhookSubscriptions { id } }", {"ADMIN", "MERCHANT"}),
    "subscribeWebhook": (
        'mutation { subscribeWebhook(input: {url: "https://a.example/h", '
        "events: [TIER_CHANGED]}) { userErrors { code } } }",
        {"ADMIN", "MERCHANT"},
    ),
    "unsubscribeWebhook": (
        'mutation { unsubscribeWebhook(id: "whs_x") { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "setTiers": (
        'mutation { setTiers(program: "JADE", tiers: []) { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "setMemberCredit": (
        'mutation { setMemberCredit(memberId: "$MEMBER", level: GOOD) { userErrors { code } } }',
        {"ADMIN"},
    ),
    "merchantInsights": (  # a MERCHANT for itself (the key's own, jade), or ADMIN
        '{ merchantInsights(merchant: "jade", from: "$TODAY", to: "$TODAY") { pointsIssued } }',
        {"ADMIN", "MERCHANT"},
    ),
    "registerProgram": (
        'mutation { registerProgram(input: {merchantId: "jade", code: "JADE_GREEN", '
        'name: "Jade green", kind: GREEN, pointValue: "0.01"}) { userErrors { code } } }',
        {"ADMIN"},
    ),
    "useVoucher": (
        'mutation { useVoucher(code: "AAAAA-AAAAA-AAAAA-AAAAA", orderRef: "o", '
        'orderAmount: "10") { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "voucher": ('{ voucher(code: "AAAAA-AAAAA-AAAAA-AAAAA") { code } }', {"ADMIN", "MERCHANT"}),
    "importAccruals": (
        'mutation { importAccruals(input: {program: "JADE", rows: [{memberId: "$MEMBER", '
        'orderRef: "imp-1", amount: "1"}]}) { userErrors { code } } }',
        {"ADMIN", "MERCHANT"},
    ),
    "importJob": ('{ importJob(id: "imp_x") { id } }', {"ADMIN", "MERCHANT"}),
}
# Root fields with a rule of their own, tested where that rule lives.
ELSEWHERE = {
    "_service": "ADMIN-only in production (tests/federation)",
    "_entities": "the member rule, below",
}


def test_the_matrix_names_every_root_field() -> None:
    from hub.config import Settings
    from schema import build_schema

    schema = build_schema(Settings())._schema
    fields = {*schema.query_type.fields, *schema.mutation_type.fields}  # type: ignore[union-attr]
    assert fields - set(MATRIX) - set(ELSEWHERE) == set()


@pytest.fixture
async def world(api: Api) -> dict[str, Any]:
    world = World(api)
    await world.programs("HUB", "JADE", "LOTUS")
    keys = {
        "ADMIN": "test-admin-secret",
        "MERCHANT": await world.key("MERCHANT", "jade"),
        "FINANCE": await world.key("FINANCE"),
        "STOREFRONT": await world.key("STOREFRONT"),
    }
    lotus_key = await world.key("MERCHANT", "lotus")
    await upsert_reward(api, keys["MERCHANT"], ref="MEAL", kind="MEAL", title="Meal", price=50)
    await upsert_reward(api, lotus_key, ref="NIGHT", kind="GOODS", title="Gift", price=50)
    member = await enroll(api, "JADE", "J-1", "Member One")
    await enroll(api, "HUB", "H-1", member_id=member)
    await accrue(api, member, "JADE", "1000")
    await set_rate(api, "JADE", "HUB", "1")
    stranger = await enroll(api, "LOTUS", "L-2", "Lotus Only")
    await accrue(api, stranger, "LOTUS", "500")
    token = await member_session(api, member)
    mine = await redeem(api, member, "jade:MEAL", "JADE")
    theirs = await redeem(api, stranger, "lotus:NIGHT", "LOTUS")
    await set_rate(api, "JADE", "LOTUS", "1")
    crossed = await redeem(api, member, "lotus:NIGHT", "JADE")  # jade owes lotus: statements
    assert crossed["userErrors"] == []
    today = utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    await api.gql(f'mutation {{ runSettlement(businessDate: "{today}") {{ batch {{ id }} }} }}')
    return {
        "keys": keys,
        "token": token,
        "member": member,
        "stranger": stranger,
        "redemption": mine["redemption"]["id"],
        "foreign_redemption": theirs["redemption"]["id"],
        "today": today,
        "lotus_key": lotus_key,
    }


def _fill(document: str, world: dict[str, Any]) -> str:
    return (
        document.replace("$MEMBER", world["member"])
        .replace("$REDEMPTION", world["redemption"])
        .replace("$TODAY", world["today"])
        .replace("$STATEMENT", "none")
    )


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_against_every_operation(
    api: Api, world: dict[str, Any], role: str
) -> None:
    key = world["keys"][role]
    token = world["token"] if role == "STOREFRONT" else None
    wrong = []
    for name, (document, allowed) in MATRIX.items():
        response = await api.post(_fill(document, world), key=key, member_token=token)
        assert response.status_code == 200, (name, response.text)
        codes = {e.get("extensions", {}).get("code") for e in response.json().get("errors", [])}
        refused = "FORBIDDEN" in codes
        if refused == (role in allowed):
            wrong.append(f"{name}: {'refused' if refused else 'allowed'} for {role}")
        assert not (codes - {"FORBIDDEN"}), (name, response.json())
    assert wrong == []


async def test_storefront_without_a_member_token_acts_for_no_one(
    api: Api, world: dict[str, Any]
) -> None:
    for name in ("member", "quoteConversion", "convertPoints", "redeemReward", "redemption"):
        errors = await api.errors(_fill(MATRIX[name][0], world), key=world["keys"]["STOREFRONT"])
        assert errors[0]["extensions"]["code"] == "FORBIDDEN", name


async def test_nothing_of_another_merchants_members_statements_or_redemptions(
    api: Api, world: dict[str, Any]
) -> None:
    jade = world["keys"]["MERCHANT"]
    stranger = world["stranger"]
    seen = await api.gql(
        "query($m: ID!, $r: ID!) { member(id: $m) { id } redemption(id: $r) { id } "
        'memberByRef(program: "LOTUS", externalRef: "L-2") { id } '
        'statement(id: "x") { id } statements { edges { node { merchant { id } } } } }',
        {"m": stranger, "r": world["foreign_redemption"]},
        key=jade,
    )
    assert seen["member"] is None and seen["redemption"] is None
    assert seen["memberByRef"] is None and seen["statement"] is None
    assert {e["node"]["merchant"]["id"] for e in seen["statements"]["edges"]} <= {"jade"}
    lotus_statement = await api.gql(
        f'{{ settlementBatch(businessDate: "{world["today"]}") {{ statements {{ id merchant '
        "{ id } } } }"
    )
    lotus_id = next(
        s["id"]
        for s in lotus_statement["settlementBatch"]["statements"]
        if s["merchant"]["id"] == "lotus"
    )
    assert (await api.gql(f'{{ statement(id: "{lotus_id}") {{ id }} }}', key=jade))[
        "statement"
    ] is None
    csv = await api.client.get(
        f"/statements/{lotus_id}.csv", headers={"Authorization": f"Bearer {jade}"}
    )
    assert csv.status_code == 404
    # The member's own storefront session sees the member, not the stranger.
    token = world["token"]
    storefront = world["keys"]["STOREFRONT"]
    other = await api.gql(
        "query($m: ID!, $r: ID!) { member(id: $m) { id } redemption(id: $r) { id } }",
        {"m": stranger, "r": world["foreign_redemption"]},
        key=storefront,
        member_token=token,
    )
    assert other == {"member": None, "redemption": None}


async def test_member_by_ref_reads_only_the_merchants_own_programs(
    api: Api, world: dict[str, Any]
) -> None:
    """Attack: jade's member also holds H-1 at the platform; asking memberByRef with another
    merchant's program and a guessed number told jade whom its member is there."""
    jade = world["keys"]["MERCHANT"]
    query = "query($p: ID!, $r: String!) { memberByRef(program: $p, externalRef: $r) { id } }"
    own = await api.gql(query, {"p": "JADE", "r": "J-1"}, key=jade)
    assert own["memberByRef"] == {"id": world["member"]}
    assert (await api.gql(query, {"p": "HUB", "r": "H-1"}, key=jade))["memberByRef"] is None
    admin = await api.gql(query, {"p": "HUB", "r": "H-1"})
    assert admin["memberByRef"] == {"id": world["member"]}


ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id } } }"


async def test_members_named_by_redemptions_conversions_and_entities_follow_member_rule(
    api: Api, world: dict[str, Any]
) -> None:
    """Redemption.member, Conversion.member and _entities apply member(id:)'s rule: a caller
    that may not see the member gets neither its id nor its object."""
    keys, member, stranger = world["keys"], world["member"], world["stranger"]
    jade, lotus = keys["MERCHANT"], world["lotus_key"]
    haowu = await create_key(api, "MERCHANT", "haowu")
    # The stranger (LOTUS only so far) joins HUB and buys jade's meal with HUB points.
    await enroll(api, "HUB", "H-2", member_id=stranger)
    await accrue(api, stranger, "HUB", "500")
    await set_rate(api, "HUB", "JADE", "1")
    meal = await redeem(api, stranger, "jade:MEAL", "HUB")
    assert meal["userErrors"] == []
    rid = meal["redemption"]["id"]
    ask = "query($r: ID!) { redemption(id: $r) { id member { id } } }"
    for key in (jade, keys["FINANCE"]):
        response = await api.post(ask, {"r": rid}, key=key)
        body = response.json()
        assert stranger not in response.text
        assert body["data"]["redemption"] is None
        assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
            (["redemption", "member"], "FORBIDDEN")
        ]
        seen = await api.gql("query($r: ID!) { redemption(id: $r) { id } }", {"r": rid}, key=key)
        assert seen["redemption"] == {"id": rid}  # the redemption itself stays theirs to see
    paid_with = await api.gql(ask, {"r": rid}, key=haowu)  # the payer's merchant knows them
    assert paid_with["redemption"]["member"] == {"id": stranger}

    # A member of LOTUS and JADE, not HUB, converts LOTUS -> JADE through the platform.
    loner = await enroll(api, "LOTUS", "L-3", "Lotus And Jade")
    await enroll(api, "JADE", "J-3", member_id=loner)
    await accrue(api, loner, "LOTUS", "300")
    await set_rate(api, "LOTUS", "HUB", "1")
    moved = await convert(api, loner, "LOTUS", "JADE", 100)
    assert [p["code"] for p in moved["conversion"]["route"]] == ["LOTUS", "HUB", "JADE"]
    cid = moved["conversion"]["id"]
    ask = "query($c: ID!) { conversion(id: $c) { id member { id } } }"
    for key in (haowu, keys["FINANCE"]):
        response = await api.post(ask, {"c": cid}, key=key)
        assert loner not in response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for key in (jade, lotus, keys["ADMIN"]):
        assert (await api.gql(ask, {"c": cid}, key=key))["conversion"]["member"] == {"id": loner}

    # _entities: the member, the stranger and an unknown id, for each caller.
    representations = [
        {"__typename": "Member", "id": member},
        {"__typename": "Member", "id": stranger},
        {"__typename": "Member", "id": "mbr_nobody"},
    ]
    expected = {
        keys["ADMIN"]: [member, stranger, None],
        jade: [member, None, None],
        lotus: [None, stranger, None],
        keys["FINANCE"]: [None, None, None],
        keys["STOREFRONT"]: [member, None, None],
    }
    for key, ids in expected.items():
        token = world["token"] if key == keys["STOREFRONT"] else None
        data = await api.gql(ENTITIES, {"r": representations}, key=key, member_token=token)
        assert [e["id"] if e else None for e in data["_entities"]] == ids, key
    # Through _entities a merchant reads the history of its own program only.
    history = await api.gql(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member "
        "{ history { edges { node { program { code } } } } } } }",
        {"r": representations[:1]},
        key=jade,
    )
    programs = {e["node"]["program"]["code"] for e in history["_entities"][0]["history"]["edges"]}
    assert programs == {"JADE"}


async def test_batch_through_a_statement_shows_a_merchant_only_its_own_part(
    api: Api, world: dict[str, Any]
) -> None:
    """settlementBatch refuses a MERCHANT; reaching the batch through its own statement
    gives it its own position, payments, statement and lines, and nothing of lotus's."""
    jade = world["keys"]["MERCHANT"]
    mine = await api.gql("{ statements { edges { node { id } } } }", key=jade)
    (edge,) = mine["statements"]["edges"]
    seen = await api.gql(
        "query($id: ID!) { statement(id: $id) { batch { obligationCount grossAmount "
        "positions { merchant { id } } payments { from { id } to { id } } "
        "statements { merchant { id } counterparties { counterparty { id } } "
        "lines { edges { node { counterparty { id } } } } } } } }",
        {"id": edge["node"]["id"]},
        key=jade,
    )
    batch = seen["statement"]["batch"]
    assert [p["merchant"]["id"] for p in batch["positions"]] == ["jade"]
    assert [s["merchant"]["id"] for s in batch["statements"]] == ["jade"]
    assert all("jade" in (p["from"]["id"], p["to"]["id"]) for p in batch["payments"])
    assert batch["payments"]  # jade pays what it owes lotus through the clearing account
    counterparties = {c["counterparty"]["id"] for c in batch["statements"][0]["counterparties"]}
    assert counterparties == {"lotus"}  # jade's own totals with lotus, nothing of lotus's own
    whole = await api.gql(
        f'{{ settlementBatch(businessDate: "{world["today"]}") {{ obligationCount '
        "positions { merchant { id } } } }"
    )
    assert {p["merchant"]["id"] for p in whole["settlementBatch"]["positions"]} == {
        "jade",
        "lotus",
    }


async def test_imports_through_http_and_graphql_for_their_merchant_and_admin_only(
    api: Api, world: dict[str, Any]
) -> None:
    """POST /imports/accruals follows importAccruals' rule; a job is seen by the merchant
    whose program it imports into and by ADMIN, never by another merchant."""
    body = f"memberId,orderRef,amount\n{world['member']},imp-http,1\n".encode()
    expected = {"ADMIN": 202, "MERCHANT": 202, "FINANCE": 403, "STOREFRONT": 403}
    jobs = []
    for role, status in expected.items():
        headers = {"Authorization": f"Bearer {world['keys'][role]}", "Content-Type": "text/csv"}
        if role == "STOREFRONT":
            headers["X-Member-Token"] = world["token"]
        response = await api.client.post(
            "/imports/accruals?program=JADE", content=body, headers=headers
        )
        assert response.status_code == status, (role, response.text)
        if status == 202:
            jobs.append(response.json()["id"])
    lotus = {"Authorization": f"Bearer {world['lotus_key']}", "Content-Type": "text/csv"}
    refused = await api.client.post("/imports/accruals?program=JADE", content=body, headers=lotus)
    assert refused.status_code == 403
    query = "query($id: ID!) { importJob(id: $id) { id program { code } } }"
    for job_id in jobs:
        for key, sees in ((world["keys"]["MERCHANT"], True), (world["lotus_key"], False)):
            seen = await api.gql(query, {"id": job_id}, key=key)
            assert (seen["importJob"] is not None) == sees, (job_id, sees)
    await runtime_drained(api)


async def runtime_drained(api: Api) -> None:
    """Let the jobs started above finish before the database is emptied."""
    worker = api.app.state.runtime.imports
    await worker.drain()
