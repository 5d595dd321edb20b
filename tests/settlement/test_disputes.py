"""Disputes that end in money: finance resolves a DISPUTED statement; accepted adjustments
settle in the next batch, never in a closed one, and `hub verify` holds them to it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import update

from hub.config import Settings
from hub.db import Database, utcnow
from hub.models import Obligation
from settlement import runs
from tests.helpers import (
    Api,
    accrue,
    convert,
    create_key,
    enroll,
    register,
    set_rate,
    verify_ledger,
)

STATEMENT = """
fragment S on Statement {
  id status resolution disputeReason merchant { id } net
  adjustments { id amount reason counterparty { id } carriedTo { businessDate } }
  lines(first: 100) { edges { node { kind amount counterparty { id } } } }
}"""
RESOLVE = (
    STATEMENT
    + """
mutation Resolve($input: ResolveDisputeInput!) {
  resolveDispute(input: $input) { statement { ...S } userErrors { field message code } }
}"""
)
DISPUTE = """
mutation D($id: ID!, $reason: String!) {
  disputeStatement(id: $id, reason: $reason) { statement { id status } userErrors { code } }
}"""
RUN = """
mutation Run($d: Date!) {
  runSettlement(businessDate: $d) { batch { id statements { id merchant { id } } }
                                    userErrors { code message } }
}"""
READ = STATEMENT + "query Q($id: ID!) { statement(id: $id) { ...S } }"
NEXT = """
query N($d: Date!) {
  settlementBatch(businessDate: $d) {
    positions { merchant { id } net }
    statements { merchant { id } lines { edges { node { kind amount } } } }
  }
}"""
PAY = """
mutation P($id: ID!) {
  markStatementPaid(id: $id, paymentReference: "WIRE-1") { statement { status }
                                                           userErrors { code } }
}"""


def _today(settings: Settings) -> dt.date:
    return utcnow().astimezone(settings.tz).date()


async def _disputed(api: Api, settings: Settings) -> tuple[str, str, str]:
    """skyair owes lotus 75.00 today; lotus disputes its statement. (statement, finance, lotus)"""
    await register(api, "haowu", "HUB", category="PLATFORM", pointValue="0.10")
    await register(api, "skyair", "SKYMILES", category="AIRLINE", pointValue="0.08")
    await register(api, "lotus", "LOTUS", category="HOTEL", pointValue="0.05")
    member = await enroll(api, "SKYMILES", "S-1")
    await enroll(api, "LOTUS", "L-1", member_id=member)
    await accrue(api, member, "SKYMILES", "10000")
    await set_rate(api, "SKYMILES", "LOTUS", "1.5")
    await convert(api, member, "SKYMILES", "LOTUS", 1000)
    finance = await create_key(api, "FINANCE")
    lotus = await create_key(api, "MERCHANT", "lotus")
    run = await api.gql(RUN, {"d": _today(settings).isoformat()}, key=finance)
    statements = {s["merchant"]["id"]: s["id"] for s in run["runSettlement"]["batch"]["statements"]}
    disputed = await api.gql(
        DISPUTE, {"id": statements["lotus"], "reason": "Two stays missing"}, key=lotus
    )
    assert disputed["disputeStatement"]["statement"]["status"] == "DISPUTED"
    return statements["lotus"], finance, lotus


async def _resolve(api: Api, key: str, **input: Any) -> dict[str, Any]:
    data = await api.gql(RESOLVE, {"input": input}, key=key)
    payload: dict[str, Any] = data["resolveDispute"]
    return payload


async def test_an_accepted_dispute_settles_its_adjustment_in_the_next_batch(
    api: Api, settings: Settings, db_url: str
) -> None:
    statement, finance, lotus = await _disputed(api, settings)
    payload = await _resolve(
        api,
        finance,
        statementId=statement,
        resolution="ACCEPTED",
        note="Two stays confirmed with the hotel",
        adjustments=[{"counterparty": "skyair", "amount": "12.50", "reason": "Stays 881, 882"}],
    )
    assert payload["userErrors"] == []
    resolved = payload["statement"]
    assert resolved["status"] == "APPROVED"
    assert resolved["resolution"] == "ACCEPTED: Two stays confirmed with the hotel"
    assert resolved["net"] == "75.00"  # the closed batch is never edited
    [adjustment] = resolved["adjustments"]
    assert adjustment["amount"] == "12.50" and adjustment["counterparty"]["id"] == "skyair"
    assert adjustment["carriedTo"] is None
    assert await verify_ledger(db_url) == []

    # The next batch carries it: both merchants' next statements show it.
    tomorrow = _today(settings) + dt.timedelta(days=1)
    db = Database(db_url)
    try:
        assert await runs.run_date(db, settings, tomorrow, actor="test") is not None
    finally:
        await db.dispose()
    next_batch = (await api.gql(NEXT, {"d": tomorrow.isoformat()}, key=finance))["settlementBatch"]
    nets = {p["merchant"]["id"]: Decimal(p["net"]) for p in next_batch["positions"]}
    assert nets == {"lotus": Decimal("12.50"), "skyair": Decimal("-12.50")}
    lines = {
        s["merchant"]["id"]: [(e["node"]["kind"], e["node"]["amount"]) for e in s["lines"]["edges"]]
        for s in next_batch["statements"]
    }
    assert lines == {"lotus": [("ADJUSTMENT", "12.50")], "skyair": [("ADJUSTMENT", "-12.50")]}
    after = (await api.gql(READ, {"id": statement}, key=lotus))["statement"]
    carried = after["adjustments"][0]["carriedTo"]
    assert carried["businessDate"] == (_today(settings) + dt.timedelta(days=1)).isoformat()
    paid = await api.gql(PAY, {"id": statement}, key=finance)
    assert paid["markStatementPaid"]["statement"]["status"] == "PAID"
    assert await verify_ledger(db_url) == []


async def test_a_rejected_dispute_keeps_the_amounts_and_can_be_paid(
    api: Api, settings: Settings
) -> None:
    statement, finance, _ = await _disputed(api, settings)
    payload = await _resolve(
        api, finance, statementId=statement, resolution="REJECTED", note="Stays were cancelled"
    )
    assert payload["userErrors"] == []
    assert payload["statement"]["resolution"] == "REJECTED: Stays were cancelled"
    assert payload["statement"]["adjustments"] == []
    paid = await api.gql(PAY, {"id": statement}, key=finance)
    assert paid["markStatementPaid"]["statement"]["status"] == "PAID"


async def test_bad_resolutions_are_refused_and_change_nothing(
    api: Api, settings: Settings, db_url: str
) -> None:
    statement, finance, lotus = await _disputed(api, settings)
    cases = [
        (
            {"resolution": "REJECTED", "adjustments": [{"counterparty": "skyair", "amount": "1"}]},
            "INVALID_INPUT",
        ),
        ({"adjustments": [{"counterparty": "haowu", "amount": "5"}]}, "INVALID_INPUT"),
        ({"adjustments": [{"counterparty": "skyair", "amount": "0"}]}, "INVALID_INPUT"),
        ({"adjustments": [{"counterparty": "skyair", "amount": "1.005"}]}, "INVALID_INPUT"),
        (
            {"adjustments": [{"counterparty": "skyair", "amount": "5", "reason": " "}]},
            "INVALID_INPUT",
        ),
        ({"note": "  "}, "INVALID_INPUT"),
        ({"statementId": "nope"}, "NOT_FOUND"),
    ]
    for change, code in cases:
        adjustments = [
            {"reason": "why", **a}
            for a in change.pop("adjustments", [])  # type: ignore[attr-defined]
        ]
        input = {
            "statementId": statement,
            "resolution": "ACCEPTED",
            "note": "checked",
            "adjustments": adjustments,
            **change,
        }
        payload = await _resolve(api, finance, **input)
        assert payload["statement"] is None, (change, payload)
        assert payload["userErrors"][0]["code"] == code, (change, payload)
    unchanged = (await api.gql(READ, {"id": statement}, key=finance))["statement"]
    assert unchanged["status"] == "DISPUTED" and unchanged["adjustments"] == []
    # Only FINANCE resolves; the merchant that disputed cannot answer its own dispute.
    refused = await api.errors(
        RESOLVE,
        {"input": {"statementId": statement, "resolution": "ACCEPTED", "note": "mine"}},
        key=lotus,
    )
    assert refused[0]["extensions"]["code"] == "FORBIDDEN"
    ok = await _resolve(api, finance, statementId=statement, resolution="REJECTED", note="no")
    assert ok["userErrors"] == []
    again = await _resolve(api, finance, statementId=statement, resolution="REJECTED", note="no")
    assert again["userErrors"][0]["code"] == "INVALID_STATE"
    assert await verify_ledger(db_url) == []


async def test_verify_finds_an_adjustment_carried_by_its_own_closed_batch(
    api: Api, settings: Settings, db_url: str
) -> None:
    statement, finance, _ = await _disputed(api, settings)
    payload = await _resolve(
        api,
        finance,
        statementId=statement,
        resolution="ACCEPTED",
        note="ok",
        adjustments=[{"counterparty": "skyair", "amount": "-3.00", "reason": "double count"}],
    )
    assert payload["userErrors"] == []
    batch = statement.split(":")[0]
    db = Database(db_url)
    try:
        async with db.write() as session:  # an adjustment smuggled into the closed batch
            await session.execute(
                update(Obligation).where(Obligation.kind == "ADJUSTMENT").values(batch_id=batch)
            )
    finally:
        await db.dispose()
    found = await verify_ledger(db_url)
    assert any(v.startswith("adjustment settles once, later") for v in found), found
