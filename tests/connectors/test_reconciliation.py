"""Partner reconciliation: the hub's movements at each partner against the partner's own."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from asyncio.subprocess import PIPE
from dataclasses import dataclass
from typing import Any

import pytest

from hub.config import Settings
from tests.helpers import (
    ADMIN_KEY,
    Api,
    accrue,
    cancel_redemption,
    convert,
    create_key,
    enroll,
    redeem,
    register,
    set_rate,
    upsert_reward,
)
from tests.partners import Partners, register_connected

CST = dt.timezone(dt.timedelta(hours=8))
RECONCILE = """
query R($m: ID!, $d: Date!) {
  reconciliation(merchant: $m, businessDate: $d) {
    merchant { id } businessDate status matched generatedAt
    breaks { reference externalRef hubPoints partnerPoints }
  }
}"""
CONNECTED = {
    "skyair": ("SKYMILES", "AIRLINE", "SK-1"),
    "lotus": ("LOTUS", "HOTEL", "L-1"),
    "westlake": ("WESTLAKE", "SCENIC", "W-1"),
    "dimsum": ("DIMSUM", "RESTAURANT", "D-1"),
    "carwash": ("WASH", "HTTP", "C-1"),
}


def _today() -> str:
    return dt.datetime.now(CST).date().isoformat()


async def _world(hub: Api, partners: Partners) -> dict[str, Any]:
    """Every vertical connected, a hosted restaurant with a reward, and a day of movements
    at each partner: conversions in and out, a redemption held, cancelled by the member,
    and one cancelled by the merchant (refund and compensation)."""
    await register(hub, "haowu", "HUB", category="PLATFORM")
    await register(hub, "jade", "JADE", category="RESTAURANT", pointValue="0.125")
    for merchant, (code, kind, ref) in CONNECTED.items():
        await register_connected(hub, partners, merchant, code, kind, pointValue="0.05")
        await partners.member(merchant, ref, 20_000)
    member = await enroll(hub, "JADE", "J-1", "Chen Jie")
    await accrue(hub, member, "JADE", "5000")
    for code, _, ref in CONNECTED.values():
        await enroll(hub, code, ref, member_id=member)
        await set_rate(hub, code, "JADE", "0.5")
        await set_rate(hub, "JADE", code, "2")
    for code, *_ in CONNECTED.values():
        out = await convert(hub, member, code, "JADE", 1000)
        assert out["conversion"]["status"] == "COMPLETED", out
        into = await convert(hub, member, "JADE", code, 100)
        assert into["conversion"]["status"] == "COMPLETED", into
    jade_key = await create_key(hub, "MERCHANT", "jade")
    meal = await upsert_reward(
        hub, jade_key, ref="SET-MEAL", kind="MEAL", title="Set meal", price=200
    )
    kept = await redeem(hub, member, meal["id"], "SKYMILES")
    assert kept["redemption"]["status"] == "CONFIRMED", kept
    undone = await redeem(hub, member, meal["id"], "SKYMILES")
    cancelled = await cancel_redemption(hub, undone["redemption"]["id"])
    assert cancelled["redemption"]["status"] == "CANCELLED", cancelled
    other = await redeem(hub, member, meal["id"], "LOTUS")
    compensated = await cancel_redemption(hub, other["redemption"]["id"], "MERCHANT_CANCELLED")
    assert compensated["redemption"]["compensationPoints"] > 0, compensated
    return {"member": member, "jade_key": jade_key}


async def _report(hub: Api, merchant: str, key: str = ADMIN_KEY) -> dict[str, Any]:
    data = await hub.gql(RECONCILE, {"m": merchant, "d": _today()}, key=key)
    report: dict[str, Any] = data["reconciliation"]
    return report


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def _cli(db_url: str, partners: Partners, *args: str) -> Ran:
    """`hub ...` as a process; awaited, so that the sandboxes in this loop keep answering."""
    env = {
        **os.environ,
        "HUB_DATABASE_URL": db_url,
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_PARTNER_SECRETS": json.dumps(partners.secrets()),
        "HUB_ALLOW_PRIVATE_PARTNERS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def test_a_clean_day_is_matched_at_every_vertical(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    await _world(hub, live_partners)
    for merchant in CONNECTED:
        report = await _report(hub, merchant)
        assert report["status"] == "MATCHED", (merchant, report)
        assert report["breaks"] == []
        assert report["merchant"] == {"id": merchant}
        assert report["businessDate"] == _today()
    # debit and credit at each; skyair also two holds and a refund, lotus a hold,
    # its refund and the compensation
    assert (await _report(hub, "skyair"))["matched"] == 5
    assert (await _report(hub, "lotus"))["matched"] == 5
    assert (await _report(hub, "carwash"))["matched"] == 2
    assert await _report(hub, "jade") is None  # hosted: the hub's ledger is its own
    done = await _cli(
        db_url, live_partners, "reconcile", "--merchant", "westlake", "--date", _today()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MATCHED" in done.stdout


async def test_breaks_planted_at_a_partner_show_in_graphql_and_the_cli(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    await _world(hub, live_partners)
    sandbox = live_partners.sandbox("skyair")
    hub_debit = next(k for k, m in sandbox.ledger.moves.items() if k.endswith(":debit"))
    # The partner has a movement the hub never made, and one with other points.
    await live_partners.control(
        "skyair", "movements", {"key": "cnv_planted:credit", "ref": "SK-1", "points": 700}
    )
    await live_partners.control("skyair", "movements", {"key": hub_debit, "points": -900})
    report = await _report(hub, "skyair")
    assert report["status"] == "BREAKS"
    assert report["matched"] == 4
    planted = {
        "reference": "cnv_planted:credit",
        "externalRef": "SK-1",
        "hubPoints": None,
        "partnerPoints": 700,
    }
    other = {
        "reference": hub_debit,
        "externalRef": "SK-1",
        "hubPoints": -1000,
        "partnerPoints": -900,
    }
    assert sorted(report["breaks"], key=str) == sorted([planted, other], key=str)
    # And one the partner lost: only the hub has it.
    hold = next(k for k in sandbox.ledger.moves if k.endswith(":hold"))
    del sandbox.ledger.moves[hold]
    report = await _report(hub, "skyair")
    lost = [b for b in report["breaks"] if b["reference"] == hold]
    assert lost == [
        {"reference": hold, "externalRef": "SK-1", "hubPoints": -400, "partnerPoints": None}
    ]
    done = await _cli(
        db_url, live_partners, "reconcile", "--merchant", "skyair", "--date", _today()
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BREAK cnv_planted:credit member SK-1: hub - partner +700" in done.stdout
    assert f"BREAK {hub_debit} member SK-1: hub -1000 partner -900" in done.stdout
    assert "3 break(s)" in done.stdout
    # The other partners are untouched.
    assert (await _report(hub, "lotus"))["status"] == "MATCHED"


async def test_a_partner_that_cannot_be_reached_is_partner_unavailable(
    hub: Api, live_partners: Partners, db_url: str
) -> None:
    await _world(hub, live_partners)
    await live_partners.stop("lotus")
    report = await _report(hub, "lotus")
    assert report["status"] == "PARTNER_UNAVAILABLE"
    assert report["breaks"] == [] and report["matched"] == 0
    done = await _cli(db_url, live_partners, "reconcile", "--merchant", "lotus", "--date", _today())
    assert done.returncode == 2 and "PARTNER_UNAVAILABLE" in done.stderr
    await live_partners.restart("lotus")
    hub.app.state.runtime.connectors.breakers.clear()
    assert (await _report(hub, "lotus"))["status"] == "MATCHED"


async def test_a_day_of_movements_may_take_longer_than_a_points_call(
    hub: Api, live_partners: Partners
) -> None:
    """A day's movements is a batch read: a partner that takes longer to list them than the
    timeout its debits and credits get (0.5 s here) is still reconciled, not reported as
    unavailable (the seeded simulation at 10,000 operations met it under load)."""
    await _world(hub, live_partners)
    await live_partners.faults("lotus", latency_ms=1200, operations=["movements"])
    report = await _report(hub, "lotus")
    assert report["status"] == "MATCHED", report
    assert report["matched"] == 5


async def test_a_merchant_reads_only_its_own_reconciliation(
    hub: Api, live_partners: Partners
) -> None:
    await _world(hub, live_partners)
    lotus = await create_key(hub, "MERCHANT", "lotus")
    finance = await create_key(hub, "FINANCE")
    storefront = await create_key(hub, "STOREFRONT")
    assert (await _report(hub, "lotus", key=lotus))["status"] == "MATCHED"
    assert (await _report(hub, "skyair", key=finance))["status"] == "MATCHED"
    errors = await hub.errors(RECONCILE, {"m": "skyair", "d": _today()}, key=lotus)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    errors = await hub.errors(RECONCILE, {"m": "lotus", "d": _today()}, key=storefront)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    stored = "query($d: Date!) { reconciliations(businessDate: $d) { merchant { id } status } }"
    mine = await hub.gql(stored, {"d": _today()}, key=lotus)
    assert mine["reconciliations"] == [{"merchant": {"id": "lotus"}, "status": "MATCHED"}]
    every = await hub.gql(stored, {"d": _today()}, key=finance)
    assert {r["merchant"]["id"] for r in every["reconciliations"]} == {"lotus", "skyair"}


async def test_the_nightly_run_reconciles_each_partner_before_settling(
    hub: Api, live_partners: Partners, partner_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from settlement import runs

    await _world(hub, live_partners)
    await live_partners.control(
        "westlake", "movements", {"key": "cnv_planted:credit", "ref": "W-1", "points": 50}
    )
    today = dt.date.fromisoformat(_today())

    async def due(*_: Any) -> list[dt.date]:
        return [today]

    monkeypatch.setattr(runs, "due_dates", due)
    runtime = hub.app.state.runtime
    settled = await runs.nightly(runtime.db, partner_settings, runtime.connectors)
    assert len(settled) == 1
    data = await hub.gql(
        "query($d: Date!) { reconciliations(businessDate: $d) { merchant { id } status "
        "breaks { reference partnerPoints } } "
        "settlementBatch(businessDate: $d) { id } }",
        {"d": _today()},
    )
    found = {r["merchant"]["id"]: r for r in data["reconciliations"]}
    assert set(found) == set(CONNECTED)
    assert found["westlake"]["status"] == "BREAKS"
    assert found["westlake"]["breaks"] == [{"reference": "cnv_planted:credit", "partnerPoints": 50}]
    assert found["skyair"]["status"] == "MATCHED"
    assert data["settlementBatch"] is not None
