"""A merchant sees its own statement and its own counterparty totals, nothing else, by
every path: a statement's batch (its positions, payments, statements and their lines),
the statement workflow's payloads, the statements list and the CSV download."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hub.db import utcnow
from tests.helpers import Api, accrue, convert, create_key, enroll, register, set_rate

BATCH = """
fragment B on SettlementBatch {
  obligationCount grossAmount
  positions { merchant { id } net }
  payments { from { id } to { id } amount }
  statements { id merchant { id } net counterparties { counterparty { id } receivable payable }
               lines(first: 100) { edges { node { counterparty { id } amount } } } }
}"""

THROUGH_STATEMENT = BATCH + "query($id: ID!) { statement(id: $id) { id batch { ...B } } }"
THROUGH_LIST = BATCH + "{ statements { edges { node { id batch { ...B } } } } }"
THROUGH_DISPUTE = (
    BATCH + 'mutation($id: ID!) { disputeStatement(id: $id, reason: "wrong") '
    "{ statement { batch { ...B } } userErrors { code } } }"
)


async def _settled(api: Api) -> dict[str, Any]:
    """skyair owes lotus 75.00 and haowu 40.00; lotus and haowu owe each other nothing."""
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register(api, "skyair", "SKYMILES", category="AIRLINE", pointValue="0.08")
    await register(api, "lotus", "LOTUS", category="HOTEL", pointValue="0.05")
    member = await enroll(api, "SKYMILES", "S-1")
    await enroll(api, "LOTUS", "L-1", member_id=member)
    await enroll(api, "HUB", "H-1", member_id=member)
    await accrue(api, member, "SKYMILES", "10000")
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    await set_rate(api, "SKYMILES", "HUB", "0.8")
    await convert(api, member, "SKYMILES", "LOTUS", 1000)
    await convert(api, member, "SKYMILES", "HUB", 500)
    today = utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    run = await api.gql(
        f'mutation {{ runSettlement(businessDate: "{today}") {{ batch '
        "{ statements { id merchant { id } } } } }"
    )
    ids = {s["merchant"]["id"]: s["id"] for s in run["runSettlement"]["batch"]["statements"]}
    keys = {m: await create_key(api, "MERCHANT", m) for m in ("haowu", "skyair", "lotus")}
    return {"statements": ids, "keys": keys, "finance": await create_key(api, "FINANCE")}


def _only_own(batch: dict[str, Any], merchant: str) -> None:
    assert {p["merchant"]["id"] for p in batch["positions"]} == {merchant}
    assert [s["merchant"]["id"] for s in batch["statements"]] == [merchant]
    for payment in batch["payments"]:
        assert merchant in (payment["from"]["id"], payment["to"]["id"]), payment


async def test_a_statements_batch_shows_a_merchant_only_its_own_part(api: Api) -> None:
    world = await _settled(api)
    lotus = world["keys"]["lotus"]
    seen = await api.gql(THROUGH_STATEMENT, {"id": world["statements"]["lotus"]}, key=lotus)
    batch = seen["statement"]["batch"]
    _only_own(batch, "lotus")
    assert batch["payments"] == [
        {"from": {"id": "haowu"}, "to": {"id": "lotus"}, "amount": "75.00"}
    ]
    # The batch's totals are lotus's own: one obligation of 75.00, not the market's 115.00.
    assert (batch["obligationCount"], batch["grossAmount"]) == (1, "75.00")
    (statement,) = batch["statements"]
    assert [c["counterparty"]["id"] for c in statement["counterparties"]] == ["skyair"]
    assert [e["node"]["amount"] for e in statement["lines"]["edges"]] == ["75.00"]
    sky = await api.gql(
        THROUGH_STATEMENT, {"id": world["statements"]["skyair"]}, key=world["keys"]["skyair"]
    )
    _only_own(sky["statement"]["batch"], "skyair")
    assert sky["statement"]["batch"]["payments"] == [
        {"from": {"id": "skyair"}, "to": {"id": "haowu"}, "amount": "115.00"}
    ]
    assert sky["statement"]["batch"]["grossAmount"] == "115.00"
    # The platform's clearing account is a party to every transfer: they are its own.
    platform = await api.gql(
        THROUGH_STATEMENT, {"id": world["statements"]["haowu"]}, key=world["keys"]["haowu"]
    )
    _only_own(platform["statement"]["batch"], "haowu")
    assert len(platform["statement"]["batch"]["payments"]) == 2
    # Another merchant's statement is not there at all.
    other = await api.gql(THROUGH_STATEMENT, {"id": world["statements"]["skyair"]}, key=lotus)
    assert other["statement"] is None


async def test_every_other_path_to_a_batch_is_filtered_the_same(api: Api) -> None:
    world = await _settled(api)
    lotus = world["keys"]["lotus"]
    listed = await api.gql(THROUGH_LIST, key=lotus)
    assert len(listed["statements"]["edges"]) == 1
    _only_own(listed["statements"]["edges"][0]["node"]["batch"], "lotus")
    disputed = await api.gql(THROUGH_DISPUTE, {"id": world["statements"]["lotus"]}, key=lotus)
    assert disputed["disputeStatement"]["userErrors"] == []
    _only_own(disputed["disputeStatement"]["statement"]["batch"], "lotus")
    # Someone else's statement cannot be disputed to read its batch either.
    stolen = await api.gql(THROUGH_DISPUTE, {"id": world["statements"]["skyair"]}, key=lotus)
    assert stolen["disputeStatement"]["statement"] is None
    assert stolen["disputeStatement"]["userErrors"][0]["code"] == "NOT_FOUND"
    csv = await api.client.get(
        f"/statements/{world['statements']['skyair']}.csv",
        headers={"Authorization": f"Bearer {lotus}"},
    )
    assert csv.status_code == 404


async def test_finance_and_admin_see_the_whole_batch(api: Api) -> None:
    world = await _settled(api)
    for key in (world["finance"], "test-admin-secret"):
        seen = await api.gql(THROUGH_STATEMENT, {"id": world["statements"]["lotus"]}, key=key)
        batch = seen["statement"]["batch"]
        assert {p["merchant"]["id"] for p in batch["positions"]} == {"haowu", "skyair", "lotus"}
        assert sum(Decimal(p["net"]) for p in batch["positions"]) == 0
        assert len(batch["statements"]) == 3 and len(batch["payments"]) == 2
        assert (batch["obligationCount"], batch["grossAmount"]) == (2, "115.00")
