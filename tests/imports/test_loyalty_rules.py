"""An imported line earns what the same purchase earns through accruePoints (the member's
tier, the promotions the member is eligible for, within the cap) and counts for tiers the
same way: the member moves up at the line that qualifies, with TIER_CHANGED."""

from __future__ import annotations

from typing import Any

from tests.helpers import ADMIN_KEY, Api, balances, register, running_app, verify_ledger
from tests.imports.conftest import import_rows, wait_for
from tests.loyalty.ladders import (
    GOLD,
    SILVER,
    TODAY,
    accrue_at,
    born,
    events,
    person,
    promote,
    set_credit,
    set_tiers,
    standing,
)

HISTORY = """
query H($id: ID!) { member(id: $id) {
  history(program: "HUB", first: 50) { edges { node { kind points reference memo } } } } }"""
GREEN = """
mutation R($input: RegisterProgramInput!) {
  registerProgram(input: $input) { program { code } userErrors { code } } }"""

# A member starting from nothing climbs to Silver at the 2nd purchase and Gold at the 3rd.
AMOUNTS = ["600.00", "500.00", "4000.00", "100.00", "33.33", "7.77"]


async def _earned(api: Api, member: str, prefix: str) -> list[tuple[int, str]]:
    """(points, memo) of the member's accruals, in the order of AMOUNTS."""
    edges = (await api.gql(HISTORY, {"id": member}))["member"]["history"]["edges"]
    found = {e["node"]["reference"]: e["node"] for e in edges if e["node"]["kind"] == "ACCRUAL"}
    return [
        (found[f"{prefix}-{i}"]["points"], found[f"{prefix}-{i}"]["memo"])
        for i in range(len(AMOUNTS))
    ]


async def test_an_imported_line_earns_what_accrue_points_earns_for_the_same_member(
    api: Api, db_url: str
) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM", accrualRate="1.5")
    assert (await set_tiers(api, "HUB", [SILVER, GOLD]))["userErrors"] == []
    made = await api.gql(
        GREEN,
        {
            "input": {
                "merchantId": "haowu",
                "code": "HUB_GREEN",
                "name": "Haowu green",
                "kind": "GREEN",
                "pointValue": "0.01",
            }
        },
    )
    assert made["registerProgram"]["userErrors"] == []
    offers: list[dict[str, Any]] = [
        {"label": "Week: x1.5", "accrualMultiplier": "1.5"},
        {"label": "Excellent credit", "accrualMultiplier": "1.25", "creditLevels": ["EXCELLENT"]},
        {"label": "Seniors", "accrualMultiplier": "3", "minAge": 60},
        {"label": "Birthday", "accrualMultiplier": "2", "birthdayMonth": True},
        {"label": "Gold week", "accrualMultiplier": "3", "tiers": ["GOLD"]},
        {"label": "Green lines", "accrualMultiplier": "2", "tags": ["green"]},  # no line here
    ]
    for offer in offers:
        assert (await promote(api, "HUB", **offer))["ok"], offer
    # Twins: one accrues through accruePoints, the other is imported, with the same profile.
    profiles: dict[str, tuple[Any, str | None]] = {
        "plain": (None, None),
        "excellent": (born(40), "EXCELLENT"),
        "poor": (born(40), "POOR"),
        "senior birthday": (born(70, TODAY.month), None),  # x54 on Gold: held to x20
    }
    twins = {}
    for n, (name, (birth, credit)) in enumerate(profiles.items()):
        pair = (
            await person(api, "HUB", f"A-{n}", birth),
            await person(api, "HUB", f"B-{n}", birth),
        )
        for member in pair:
            if credit:
                assert (await set_credit(api, member, credit))["userErrors"] == []
        twins[name] = pair
    for direct, _ in twins.values():
        for i, amount in enumerate(AMOUNTS):
            await accrue_at(api, direct, "HUB", amount, order=f"{direct}-{i}")
    rows = [
        {"memberId": imported, "orderRef": f"{imported}-{i}", "amount": amount}
        for name, (_, imported) in twins.items()
        for i, amount in enumerate(AMOUNTS)
    ]
    job_id = (await import_rows(api, "HUB", rows, ADMIN_KEY))["job"]["id"]
    job = await wait_for(api, job_id, ADMIN_KEY)
    assert (job["accepted"], job["rejected"]) == (len(rows), 0), job
    for name, (direct, imported) in twins.items():
        expected = await _earned(api, direct, direct)
        assert await _earned(api, imported, imported) == expected, name
        assert await balances(api, imported) == await balances(api, direct), name
        assert (await standing(api, imported, "HUB"))["tier"] == (
            await standing(api, direct, "HUB")
        )["tier"], name
    plain = [points for points, _ in await _earned(api, twins["plain"][1], twins["plain"][1])]
    # x1.5 rate, x1.5 week; Gold (x2, and x3 in Gold week) from the purchase after the 3rd.
    assert plain == [1350, 1125, 9000, 1350, 449, 104]
    senior = twins["senior birthday"][1]
    assert (await _earned(api, senior, senior))[3] == (
        3000,  # x20, not x54
        "purchase of 100.00 (Gold x2, Week: x1.5, Seniors, Birthday, Gold week; held to x20)",
    )
    assert await verify_ledger(db_url) == []


async def test_an_import_that_crosses_a_threshold_moves_the_member_up_at_that_line(
    api: Api, db_url: str
) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM", accrualRate="1")
    assert (await set_tiers(api, "HUB", [SILVER, GOLD]))["userErrors"] == []
    member = await person(api, "HUB", "H-1")
    assert (await accrue_at(api, member, "HUB", "600"))["points"] == 600
    rows = [
        {"memberId": member, "orderRef": "T-1", "amount": "500"},  # Silver from here
        {"memberId": member, "orderRef": "T-2", "amount": "4000"},  # earns at Silver; Gold
        {"memberId": member, "orderRef": "T-3", "amount": "100"},  # earns at Gold's x2
    ]
    small = api.app.state.runtime.settings.model_copy(update={"import_chunk_rows": 2})
    async with running_app(small) as client:  # the last line in a chunk of its own
        job_id = (await import_rows(client, "HUB", rows, ADMIN_KEY))["job"]["id"]
        job = await wait_for(client, job_id, ADMIN_KEY)
    assert (job["accepted"], job["points"]) == (3, 500 + 4000 + 200)
    edges = (await api.gql(HISTORY, {"id": member}))["member"]["history"]["edges"]
    memos = {e["node"]["reference"]: e["node"]["memo"] for e in edges}
    assert memos["T-3"] == "purchase of 100.00 (Gold x2)"
    top = (await standing(api, member, "HUB"))["tier"]
    assert top["tier"]["code"] == "GOLD"
    assert (top["qualifyingSpend"], top["qualifyingOrders"]) == ("5200.00", 4)
    changed = [e["data"] for e in await events(db_url, "TIER_CHANGED")]
    # As accruePoints writes them: the merchant learns each move and what qualified for it.
    assert {(c["memberId"], c["program"], c["direction"]) for c in changed} == {
        (member, "HUB", "UP")
    }
    assert [(c["from"], c["to"], c["qualifyingSpend"], c["qualifyingOrders"]) for c in changed] == [
        (None, "SILVER", "1100.00", 2),
        ("SILVER", "GOLD", "5100.00", 3),
    ]
    assert await verify_ledger(db_url) == []
