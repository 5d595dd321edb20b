"""A member's accounts while a connected partner answers badly (outside attack, helper-68):
nonsense, a number that is no balance, a rate limit or a refusal from one partner never
costs the member the rest of their accounts, never shows a made-up balance, and never
leaks the hub's own error text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.connectors.test_partner_sagas import START, _world
from tests.helpers import Api, convert
from tests.partners import Partners

ACCOUNTS = """
query($id: ID!) {
  member(id: $id) { accounts { program { code } balance balanceAsOf } }
}"""

NONSENSE = [
    pytest.param({"status": 200, "text": "<html><body>Maintenance</body></html>"}, id="html"),
    pytest.param({"status": 200, "json": {"miles": "12abc"}}, id="not-a-number"),
    pytest.param({"status": 200, "json": {"miles": -5}}, id="negative"),
    pytest.param({"status": 200, "json": {"miles": 10**15}}, id="beyond-int"),
    pytest.param({"status": 200, "json": {"miles": 12.7}}, id="fraction"),
    pytest.param({"status": 200, "json": {"miles": True}}, id="boolean"),
    pytest.param({"status": 200, "json": {}}, id="no-balance"),
    pytest.param({"status": 200, "json": [1, 2]}, id="a-list"),
    pytest.param({"status": 429, "json": {"error": {"message": "slow down"}}}, id="rate-limited"),
    pytest.param(
        {"status": 404, "json": {"error": {"code": "NOT_FOUND", "message": "no such member"}}},
        id="refused",
    ),
]


async def _read(hub: Api, member: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    response = await hub.post(ACCOUNTS, {"id": member})
    body = response.json()
    assert response.status_code == 200, body
    return body["data"], body.get("errors") or []


def _by_code(data: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    assert data is not None and data["member"] is not None, data
    return {a["program"]["code"]: a for a in data["member"]["accounts"]}


@pytest.mark.parametrize("answer", NONSENSE)
async def test_a_partner_answering_badly_shows_its_last_known_balance_and_the_rest(
    hub: Api, live_partners: Partners, answer: dict[str, Any]
) -> None:
    member = await _world(hub, live_partners)
    data, errors = await _read(hub, member)
    assert errors == []
    known = _by_code(data)
    assert known["SKYMILES"]["balance"] == START["SKYMILES"]
    await live_partners.faults("skyair", answer_with=answer, operations=["balance"])
    data, errors = await _read(hub, member)
    assert errors == [], errors
    shown = _by_code(data)
    # The last balance the partner gave, with when it gave it; the others as they are.
    assert shown["SKYMILES"]["balance"] == START["SKYMILES"]
    assert shown["SKYMILES"]["balanceAsOf"] == known["SKYMILES"]["balanceAsOf"]
    assert shown["LOTUS"]["balance"] == START["LOTUS"]
    assert shown["JADE"]["balance"] == START["JADE"]


# One of each kind: a page, a number that is no balance, a rate limit (the list above has
# them all; the suite keeps within its time).
@pytest.mark.parametrize("answer", [NONSENSE[0], NONSENSE[2], NONSENSE[8]])
async def test_a_partner_answering_nonsense_before_any_balance_is_known_fails_that_account(
    hub: Api, live_partners: Partners, answer: dict[str, Any]
) -> None:
    """No balance known yet: the account's balance is an error (the contract's balance is
    non-null), PARTNER_UNAVAILABLE with words a member may read, on that account alone."""
    member = await _world(hub, live_partners)
    await live_partners.faults("skyair", answer_with=answer, operations=["balance"])
    _, errors = await _read(hub, member)
    assert errors, "no balance was ever known: nothing to show"
    assert {e["extensions"]["code"] for e in errors} == {"PARTNER_UNAVAILABLE"}, errors
    for error in errors:
        assert "skyair" in error["message"], error
        for leaked in ("NoneType", "invalid literal", "subscriptable", "Traceback", "int()"):
            assert leaked not in error["message"], error
    await live_partners.faults("skyair")
    data, fine = await _read(hub, member)
    assert fine == [] and _by_code(data)["SKYMILES"]["balance"] == START["SKYMILES"]
    assert data is not None
    codes = [a["program"]["code"] for a in data["member"]["accounts"]]
    # On the one account at the failing partner (LOTUS's partner answered all along).
    assert {e["path"][2] for e in errors} == {codes.index("SKYMILES")}, errors


async def test_a_rate_limited_debit_is_not_sent_and_says_try_again(
    hub: Api, live_partners: Partners
) -> None:
    """A 429 is the partner's "not now", not its refusal: the conversion moved nothing and
    says PARTNER_UNAVAILABLE (try again), not PARTNER_REJECTED."""
    member = await _world(hub, live_partners)
    await live_partners.faults("skyair", answer_with={"status": 429}, operations=["debit"])
    refused = await convert(hub, member, "SKYMILES", "JADE", 100)
    assert [e["code"] for e in refused["userErrors"]] == ["PARTNER_UNAVAILABLE"], refused
    assert live_partners.balance("skyair", "SK-1") == START["SKYMILES"]


async def test_a_partners_words_in_a_refused_read_reach_only_whoever_may_see_the_member(
    hub: Api, live_partners: Partners
) -> None:
    """Outside attack helper-80 (medium): a partner's 404 for a balance or for a number being
    linked put its own words ("... Wang Fang closed account") in the error every caller
    read, its merchant's key and the sessions it minted included, where a failure's words
    reach only ADMIN and the member. Now the same: a merchant reads them withheld."""
    from tests.helpers import ENROLL, create_key, enroll, member_session

    member = await _world(hub, live_partners)
    words = "Guest Chen Jie, 139 0000 1111, closed account"
    closed = {"status": 404, "json": {"error": {"code": "NOT_FOUND", "message": words}}}
    await live_partners.faults("skyair", answer_with=closed, operations=["balance"])
    asked = """query($id: ID!) { member(id: $id) { account(program: "SKYMILES") { balance } } }"""
    skyair = await create_key(hub, "MERCHANT", "skyair")
    storefront = await create_key(hub, "STOREFRONT")
    own = await member_session(hub, member)  # minted by ADMIN: the member itself
    minted = await member_session(hub, member, key=skyair)

    async def told(key: str | None = None, token: str | None = None) -> str:
        caller: dict[str, Any] = {"member_token": token} if token else {}
        response = await hub.post(asked, {"id": member}, **({"key": key} if key else {}), **caller)
        [error] = response.json()["errors"]
        return str(error["message"])

    assert words in await told()  # ADMIN
    assert words in await told(storefront, own)  # the member
    for key, token in ((skyair, None), (skyair, own), (storefront, minted)):
        message = await told(key, token)
        assert words not in message and "Chen" not in message, (key, token, message)
        assert "The partner's reason is shown to the member" in message
    # Linking a number the partner refuses with the same words: a member of JADE joins
    # SKYMILES with her own session, through skyair's key.
    newcomer = await enroll(hub, "JADE", "J-9", "Chen Jie")
    theirs = await member_session(hub, newcomer)
    link = {"program": "SKYMILES", "externalRef": "SK-9", "displayName": "Chen Jie"}
    linked = await hub.gql(
        ENROLL, {"input": {**link, "memberId": newcomer}}, key=skyair, member_token=theirs
    )
    [error] = linked["enrollMember"]["userErrors"]
    assert error["code"] == "NOT_FOUND" and words not in error["message"], error
    assert "The partner's reason is shown to the member" in error["message"]
    by_admin = await hub.gql(ENROLL, {"input": {**link, "memberId": newcomer}})
    assert words in by_admin["enrollMember"]["userErrors"][0]["message"]
