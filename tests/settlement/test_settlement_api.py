"""Settlement through the API and HTTP: runs, reruns, late obligations, the statement
workflow per role, CSV export, fees, the scheduler's lease and catch-up."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from hub.config import Settings
from hub.db import Database, utcnow
from hub.models import Obligation, SettlementBatch
from hub.obligation_rules import batch_of, unsettled
from settlement import netting, runs
from tests.helpers import (
    Api,
    convert,
    create_key,
    register,
    running_app,
)
from tests.world import World

BATCH = """
fragment B on SettlementBatch {
  id businessDate status currency obligationCount grossAmount
  positions { merchant { id } receivable payable fees net }
  payments { from { id } to { id } amount }
  statements { id status merchant { id } receivable payable fees net csvUrl
               counterparties { counterparty { id } receivable payable }
               lines(first: 100) { edges { node { kind amount points reference
                                                  counterparty { id } program { code } } } } }
}"""
RUN = (
    BATCH + "mutation Run($d: Date!) { runSettlement(businessDate: $d) { batch { ...B } "
    "userErrors { field message code } } }"
)


def _today(settings: Settings) -> dt.date:
    return utcnow().astimezone(settings.tz).date()


async def _activity(api: Api) -> str:
    world = World(api)
    await world.programs(
        "HUB",
        "SKYMILES",
        "LOTUS",
        HUB={"pointValue": "0.10"},
        SKYMILES={"pointValue": "0.08"},
        LOTUS={"pointValue": "0.05"},
    )
    accounts = {"SKYMILES": "S-1", "LOTUS": "L-1", "HUB": "H-1"}
    member = await world.member("Li Wei", accounts, points={"SKYMILES": "10000"})
    await world.rates(("SKYMILES", "LOTUS", "1.5"), ("SKYMILES", "HUB", "0.8"))
    await convert(api, member, "SKYMILES", "LOTUS", 1000)  # skyair owes lotus 1500 x 0.05 = 75
    await convert(api, member, "SKYMILES", "HUB", 500)  # skyair owes haowu 400 x 0.10 = 40
    return member


async def test_run_settlement_nets_to_zero_and_reruns_change_nothing(
    api: Api, settings: Settings
) -> None:
    await _activity(api)
    finance = await create_key(api, "FINANCE")
    today = _today(settings).isoformat()
    data = await api.gql(RUN, {"d": today}, key=finance)
    payload = data["runSettlement"]
    assert payload["userErrors"] == []
    batch = payload["batch"]
    assert (batch["status"], batch["currency"], batch["obligationCount"]) == ("CLOSED", "CNY", 2)
    assert batch["grossAmount"] == "115.00"
    positions = {p["merchant"]["id"]: p for p in batch["positions"]}
    assert positions["skyair"]["net"] == "-115.00"
    assert positions["lotus"]["net"] == "75.00"
    assert positions["haowu"]["net"] == "40.00"
    assert sum(Decimal(p["net"]) for p in batch["positions"]) == 0
    assert {(p["from"]["id"], p["to"]["id"], p["amount"]) for p in batch["payments"]} == {
        ("skyair", "haowu", "115.00"),
        ("haowu", "lotus", "75.00"),
    }
    for statement in batch["statements"]:
        amounts = [Decimal(e["node"]["amount"]) for e in statement["lines"]["edges"]]
        assert sum(amounts) == Decimal(statement["net"])
        assert sum(Decimal(c["receivable"]) for c in statement["counterparties"]) == Decimal(
            statement["receivable"]
        )
        assert statement["status"] == "DRAFT"
    again = await api.gql(RUN, {"d": today}, key=finance)
    assert again["runSettlement"]["batch"] == batch
    future = await api.gql(
        RUN, {"d": (_today(settings) + dt.timedelta(days=2)).isoformat()}, key=finance
    )
    assert future["runSettlement"]["userErrors"][0]["code"] == "INVALID_INPUT"


async def test_a_late_obligation_lands_in_the_next_batch(db_url: str, settings: Settings) -> None:
    async with running_app(settings) as api:
        await register(api, "aa", "AA")
        await register(api, "bb", "BB")
    db = Database(db_url)
    day = dt.date(2026, 10, 1)

    async def owe(business_date: dt.date, amount: str) -> None:
        async with db.write() as session:
            await session.execute(_owed(business_date, amount))

    try:
        await owe(day, "10.00")
        first = await runs.run_date(db, settings, day, "test")
        await owe(day, "2.50")  # arrives after the day's batch closed
        again = await runs.run_date(db, settings, day, "test")
        assert first is not None and again is not None
        assert again.batch.id == first.batch.id and not again.created
        assert again.batch.obligation_count == 1
        following = await runs.run_date(db, settings, day + dt.timedelta(days=1), "test")
        assert following is not None
        assert following.batch.obligation_count == 1
        assert following.batch.gross_amount == Decimal("2.50")
        async with db.read() as session:
            assert (
                await session.scalar(
                    select(func.count())
                    .select_from(Obligation)
                    .where(unsettled(session.get_bind().dialect.name))
                )
                == 0
            )
    finally:
        await db.dispose()


def _owed(business_date: dt.date, amount: str) -> Any:
    return insert(Obligation).values(
        kind="CONVERSION",
        debtor_id="aa",
        creditor_id="bb",
        program_code="BB",
        points=1,
        amount=Decimal(amount),
        reference="x",
        occurred_at=utcnow(),
        business_date=business_date,
    )


async def test_a_writer_open_across_a_run_lands_in_exactly_one_later_batch(
    db_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serializes writers: a run waits for the open writer to finish")
    monkeypatch.setattr(netting, "WAIT", 0.2)  # the run stops waiting for the writer
    async with running_app(settings) as api:
        await register(api, "aa", "AA")
        await register(api, "bb", "BB")
    db = Database(db_url)
    day = dt.date(2026, 10, 1)
    try:
        async with db.write() as session:
            await session.execute(_owed(day, "10.00"))
        async with db.engine.connect() as writer:
            await writer.begin()
            await writer.execute(_owed(day, "2.50"))  # its transaction began first...
            async with db.write() as session:  # ...this one commits before the run
                await session.execute(_owed(day, "1.00"))
            first = await runs.run_date(db, settings, day, "test")
            await writer.commit()  # after the run's snapshot
        assert first is not None
        assert first.batch.obligation_count == 1
        assert first.batch.gross_amount == Decimal("10.00")
        following = await runs.run_date(db, settings, day + dt.timedelta(days=1), "test")
        assert following is not None
        assert following.batch.obligation_count == 2
        assert following.batch.gross_amount == Decimal("3.50")
        third = await runs.run_date(db, settings, day + dt.timedelta(days=2), "test")
        assert third is not None and third.batch.obligation_count == 0
        async with db.read() as session:
            dialect = session.get_bind().dialect.name
            assert await session.scalar(select(func.count()).where(unsettled(dialect))) == 0
            found = await session.execute(
                select(Obligation.amount, batch_of(dialect)).where(Obligation.kind != "FEE")
            )
            assert sorted(found) == [
                (Decimal("1.00"), following.batch.id),
                (Decimal("2.50"), following.batch.id),
                (Decimal("10.00"), first.batch.id),
            ]
    finally:
        await db.dispose()


@pytest.mark.parametrize("fee_bps", [250])
async def test_platform_fee_is_charged_per_batch_to_the_receiver(
    settings: Settings, fee_bps: int
) -> None:
    async with running_app(settings.model_copy(update={"platform_fee_bps": fee_bps})) as api:
        await _activity(api)
        data = await api.gql(RUN, {"d": _today(settings).isoformat()})
    batch = data["runSettlement"]["batch"]
    positions = {p["merchant"]["id"]: p for p in batch["positions"]}
    # lotus receives 75.00 and pays 2.5% = 1.875 -> 1.88 (half-up) to the platform.
    assert positions["lotus"] == {
        "merchant": {"id": "lotus"},
        "receivable": "75.00",
        "payable": "0.00",
        "fees": "1.88",
        "net": "73.12",
    }
    assert positions["haowu"]["receivable"] == "41.88"  # 40.00 + the fee
    assert positions["haowu"]["fees"] == "0.00"  # no fee on the platform's own receipts
    assert sum(Decimal(p["net"]) for p in batch["positions"]) == 0
    lotus = next(s for s in batch["statements"] if s["merchant"]["id"] == "lotus")
    kinds = sorted(e["node"]["kind"] for e in lotus["lines"]["edges"])
    assert kinds == ["CONVERSION", "FEE"]


async def test_statement_workflow_per_role(api: Api, settings: Settings) -> None:
    await _activity(api)
    finance = await create_key(api, "FINANCE")
    lotus_key = await create_key(api, "MERCHANT", "lotus")
    skyair_key = await create_key(api, "MERCHANT", "skyair")
    batch = (await api.gql(RUN, {"d": _today(settings).isoformat()}, key=finance))["runSettlement"][
        "batch"
    ]
    lotus = next(s["id"] for s in batch["statements"] if s["merchant"]["id"] == "lotus")

    async def act(mutation: str, key: str, **args: str) -> dict[str, Any]:
        arguments = ", ".join(f'{k}: "{v}"' for k, v in args.items())
        body = await api.post(
            f'mutation {{ {mutation}(id: "{lotus}"{", " if args else ""}{arguments}) '
            "{ statement { status disputeReason approvedAt paidReference } "
            "userErrors { code field message } } }",
            key=key,
        )
        return body.json()  # type: ignore[no-any-return]

    # A merchant reads its own statement and no one else's.
    own = await api.gql(f'{{ statement(id: "{lotus}") {{ id }} }}', key=lotus_key)
    assert own["statement"] == {"id": lotus}
    assert (await api.gql(f'{{ statement(id: "{lotus}") {{ id }} }}', key=skyair_key))[
        "statement"
    ] is None
    listed = await api.gql("{ statements { edges { node { merchant { id } } } } }", key=lotus_key)
    assert {e["node"]["merchant"]["id"] for e in listed["statements"]["edges"]} == {"lotus"}
    # Only FINANCE approves and marks paid; a merchant may dispute its own.
    refused = await act("approveStatement", lotus_key)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = await act("disputeStatement", skyair_key, reason="not mine")
    assert other["data"]["disputeStatement"]["userErrors"][0]["code"] == "NOT_FOUND"
    not_yet = await act("markStatementPaid", finance, paymentReference="WIRE-1")
    assert not_yet["data"]["markStatementPaid"]["userErrors"][0]["code"] == "INVALID_STATE"
    disputed = await act("disputeStatement", lotus_key, reason="The 75.00 line is too low")
    assert disputed["data"]["disputeStatement"]["statement"]["status"] == "DISPUTED"
    # Outside review F13: approving over a dispute closed it unanswered and erased the
    # merchant's reason. A dispute is answered by resolveDispute, never by an approval.
    over = await act("approveStatement", finance, note="checked with lotus")
    assert over["data"]["approveStatement"]["userErrors"][0]["code"] == "INVALID_STATE"
    resolved = await api.gql(
        "mutation R($input: ResolveDisputeInput!) { resolveDispute(input: $input) { "
        "statement { status disputeReason approvedAt resolution } userErrors { code } } }",
        {"input": {"statementId": lotus, "resolution": "REJECTED", "note": "75.00 is right"}},
        key=finance,
    )
    answered = resolved["resolveDispute"]["statement"]
    assert answered["status"] == "APPROVED" and answered["approvedAt"]
    assert answered["disputeReason"] == "The 75.00 line is too low"
    paid = await act("markStatementPaid", finance, paymentReference="WIRE-1")
    assert paid["data"]["markStatementPaid"]["statement"] == {
        "status": "PAID",
        "disputeReason": "The 75.00 line is too low",
        "approvedAt": answered["approvedAt"],
        "paidReference": "WIRE-1",
    }
    final = await act("disputeStatement", finance, reason="too late")
    assert final["data"]["disputeStatement"]["userErrors"][0]["code"] == "INVALID_STATE"
    admin_run = await api.errors("{ settlementBatches { edges { cursor } } }", key=lotus_key)
    assert admin_run[0]["extensions"]["code"] == "FORBIDDEN"


async def test_statement_csv_streams_with_the_same_credentials(
    api: Api, settings: Settings
) -> None:
    await _activity(api)
    finance = await create_key(api, "FINANCE")
    lotus_key = await create_key(api, "MERCHANT", "lotus")
    batch = (await api.gql(RUN, {"d": _today(settings).isoformat()}, key=finance))["runSettlement"][
        "batch"
    ]
    skyair = next(s for s in batch["statements"] if s["merchant"]["id"] == "skyair")
    assert (await api.client.get(skyair["csvUrl"])).status_code == 401
    forbidden = await api.client.get(
        skyair["csvUrl"], headers={"Authorization": f"Bearer {lotus_key}"}
    )
    assert forbidden.status_code == 404
    response = await api.client.get(
        skyair["csvUrl"], headers={"Authorization": f"Bearer {finance}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["amount"] for r in rows] == ["-75.00", "-40.00", "-115.00"]
    assert rows[-1]["line_id"] == "TOTAL"
    assert {r["counterparty"] for r in rows[:-1]} == {"lotus", "haowu"}


async def test_two_runs_racing_make_one_batch(db_url: str, settings: Settings) -> None:
    async with running_app(settings) as api:
        await _activity(api)
    db_a, db_b = Database(db_url), Database(db_url)
    day = _today(settings)
    try:
        results = await asyncio.gather(
            runs.run_date(db_a, settings, day, "a", holder="replica-a"),
            runs.run_date(db_b, settings, day, "b", holder="replica-b"),
        )
        created = [r for r in results if r is not None and r.created]
        assert len(created) == 1
        async with db_a.read() as session:
            assert await session.scalar(select(func.count()).select_from(SettlementBatch)) == 1
            assert (
                await session.scalar(
                    select(func.count())
                    .select_from(Obligation)
                    .where(unsettled(session.get_bind().dialect.name))
                )
                == 0
            )
    finally:
        await db_a.dispose()
        await db_b.dispose()


async def test_scheduler_catches_up_missed_dates(db_url: str, settings: Settings) -> None:
    async with running_app(settings) as api:
        await register(api, "aa", "AA")
        await register(api, "bb", "BB")
    db = Database(db_url)
    config = settings.model_copy(update={"settlement_at": "02:00"})
    shanghai = config.tz
    now = dt.datetime(2026, 11, 20, 3, 0, tzinfo=shanghai)
    try:
        async with db.write() as session:
            for day in (dt.date(2026, 11, 16), dt.date(2026, 11, 18)):
                await session.execute(
                    insert(Obligation).values(
                        kind="CONVERSION",
                        debtor_id="aa",
                        creditor_id="bb",
                        program_code="BB",
                        points=1,
                        amount=Decimal("1.00"),
                        reference="x",
                        occurred_at=utcnow(),
                        business_date=day,
                    )
                )
        due = await runs.due_dates(db, config, now.astimezone(dt.UTC))
        assert due == [dt.date(2026, 11, d) for d in (16, 17, 18, 19)]
        before_run = dt.datetime(2026, 11, 20, 1, 0, tzinfo=shanghai)
        assert (await runs.due_dates(db, config, before_run))[-1] == dt.date(2026, 11, 18)
        for day in due:
            await runs.run_date(db, config, day, "scheduler")
        assert await runs.due_dates(db, config, now) == []
        async with db.read() as session:
            counts = dict(
                (
                    await session.execute(
                        select(SettlementBatch.business_date, SettlementBatch.obligation_count)
                    )
                ).all()
            )
        assert counts == {
            dt.date(2026, 11, 16): 1,
            dt.date(2026, 11, 17): 0,
            dt.date(2026, 11, 18): 1,
            dt.date(2026, 11, 19): 0,
        }
    finally:
        await db.dispose()
