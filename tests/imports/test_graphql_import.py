"""importAccruals and importJob through HTTP: each row an accrual with accruePoints' rules,
a bad row rejected with its code while the rest imports, and nothing moved twice."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.db import utcnow
from tests.helpers import ADMIN_KEY, Api, accrue, balances, create_key, verify_ledger
from tests.imports.conftest import JOB, World, import_rows, wait_for

PROMOTE = """
mutation P($input: PromotionInput!) { setPromotion(input: $input) { ok userErrors { code } } }"""
ENTRIES = """
query E($id: ID!) { member(id: $id) {
  history(program: "JADE", first: 50) { edges { node { kind points reference memo } } } } }"""


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat()


async def test_rows_become_accruals_and_bad_rows_are_rejected_with_their_codes(
    world: World, db_url: str
) -> None:
    api, jade = world.api, world.jade_key
    m = world.members
    await accrue(api, m[3], "JADE", "10", order="T-OLD")  # accrued before the import
    now = utcnow()
    promo_start = now - dt.timedelta(days=3)
    promoted = await api.gql(
        PROMOTE,
        {
            "input": {
                "program": "JADE",
                "accrualMultiplier": "2",
                "startsAt": _iso(promo_start),
                "endsAt": _iso(promo_start + dt.timedelta(days=1)),
                "label": "anniversary",
            }
        },
        key=jade,
    )
    assert promoted["setPromotion"]["ok"], promoted
    rows: list[dict[str, Any]] = [
        {"memberId": m[0], "orderRef": "T-1", "amount": "120.50"},  # 1: 120
        {"externalRef": "J-1", "orderRef": "T-2", "amount": "33"},  # 2: by membership number
        {"memberId": m[0], "orderRef": "T-1", "amount": "5"},  # 3: repeats line 1
        {"memberId": m[3], "orderRef": "T-OLD", "amount": "5"},  # 4: already accrued
        {"memberId": "mbr_nobody", "orderRef": "T-5", "amount": "5"},  # 5: no such member
        {"memberId": world.outsider, "orderRef": "T-6", "amount": "5"},  # 6: not in JADE
        {"memberId": m[1], "orderRef": "T-7", "amount": "0"},  # 7: not a purchase
        {"memberId": m[1], "orderRef": "T-8", "amount": "1.005"},  # 8: three decimals
        {
            "memberId": m[1],
            "orderRef": "T-9",
            "amount": "5",
            "occurredAt": _iso(now.replace(year=now.year + 1)),
        },
        {"orderRef": "T-10", "amount": "5"},  # 10: no member
        {"memberId": m[2], "orderRef": "\u200b", "amount": "5"},  # 11: invisible order
        {"memberId": m[2], "orderRef": "T-12", "amount": "0.50"},  # 12: earns no whole point
        {
            "memberId": m[2],
            "orderRef": "T-13",
            "amount": "10",
            "occurredAt": _iso(promo_start + dt.timedelta(hours=1)),
        },
        {"memberId": m[0], "externalRef": "J-2", "orderRef": "T-14", "amount": "5"},  # mismatch
        {"externalRef": "J-404", "orderRef": "T-15", "amount": "5"},  # no such reference
    ]
    payload = await import_rows(api, "JADE", rows, jade)
    assert payload["userErrors"] == []
    assert payload["job"]["program"] == {"code": "JADE"}
    job = await wait_for(api, payload["job"]["id"], jade)
    assert job["status"] == "COMPLETED"
    assert (job["total"], job["processed"], job["accepted"], job["rejected"]) == (15, 15, 3, 12)
    assert job["points"] == 120 + 33 + 20
    assert job["finishedAt"] is not None
    codes = {e["line"]: e["code"] for e in job["errors"]}
    assert codes == {
        3: "ALREADY_EXISTS",
        4: "ALREADY_EXISTS",
        5: "NOT_FOUND",
        6: "NOT_FOUND",
        7: "INVALID_INPUT",
        8: "INVALID_INPUT",
        9: "INVALID_INPUT",
        10: "INVALID_INPUT",
        11: "INVALID_INPUT",
        12: "INVALID_INPUT",
        14: "INVALID_INPUT",
        15: "NOT_FOUND",
    }
    messages = {e["line"]: e["message"] for e in job["errors"]}
    assert "already earned points" in messages[3]
    assert "not enrolled in JADE" in messages[6]
    assert "future" in messages[9]
    assert await balances(api, m[0]) == {"JADE": 120, "LOTUS": 0}
    assert (await balances(api, m[1]))["JADE"] == 33
    assert (await balances(api, m[2]))["JADE"] == 20  # x2 during the promotion
    history = (await api.gql(ENTRIES, {"id": m[2]}))["member"]["history"]["edges"]
    assert [(e["node"]["kind"], e["node"]["points"], e["node"]["reference"]) for e in history] == [
        ("ACCRUAL", 20, "T-13")
    ]
    assert history[0]["node"]["memo"] == "purchase of 10.00 (anniversary)"
    assert await verify_ledger(db_url) == []


async def test_an_import_sent_again_moves_no_point(world: World, db_url: str) -> None:
    api, jade = world.api, world.jade_key
    rows = [
        {"memberId": world.members[i % 4], "orderRef": f"R-{i}", "amount": "10"} for i in range(32)
    ]
    first = await wait_for(api, (await import_rows(api, "JADE", rows, jade))["job"]["id"], jade)
    assert (first["accepted"], first["rejected"]) == (32, 0)
    again = await wait_for(api, (await import_rows(api, "JADE", rows, jade))["job"]["id"], jade)
    assert (again["accepted"], again["rejected"], again["points"]) == (0, 32, 0)
    assert {e["code"] for e in again["errors"]} == {"ALREADY_EXISTS"}
    for member in world.members:
        assert (await balances(api, member))["JADE"] == 80
    # An accruePoints of an imported order is refused the same way.
    retry = await accrue(api, world.members[0], "JADE", "10", order="R-0")
    assert retry["userErrors"][0]["code"] == "ALREADY_EXISTS"
    assert await verify_ledger(db_url) == []


async def test_10000_rows_import_and_more_are_refused_with_nothing_written(world: World) -> None:
    api = world.api
    full = [
        {"memberId": world.members[i % 4], "orderRef": f"F-{i}", "amount": "1"}
        for i in range(10_000)
    ]
    accepted = await import_rows(api, "JADE", full, world.jade_key)
    assert accepted["userErrors"] == [] and accepted["job"]["total"] == 10_000
    done = await wait_for(api, accepted["job"]["id"], world.jade_key)
    assert (done["accepted"], done["rejected"]) == (10_000, 0)
    rows = [
        {"memberId": world.members[0], "orderRef": f"B-{i}", "amount": "1"} for i in range(10_001)
    ]
    payload = await import_rows(api, "JADE", rows, world.jade_key)
    assert payload["job"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["input", "rows"]
    assert (await balances(api, world.members[0]))["JADE"] == 2_500  # the first job's
    empty = await import_rows(api, "JADE", [], world.jade_key)
    assert empty["userErrors"][0]["code"] == "INVALID_INPUT"


async def test_a_merchant_imports_into_its_own_program_only(world: World) -> None:
    api = world.api
    rows = [{"memberId": world.members[0], "orderRef": "X-1", "amount": "10"}]
    refused = await import_rows(api, "JADE", rows, world.lotus_key)
    assert refused["job"] is None
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"
    missing = await import_rows(api, "NOPE", rows, world.jade_key)
    assert missing["userErrors"][0]["code"] == "NOT_FOUND"
    finance = await create_key(api, "FINANCE")
    errors = await api.errors(
        "mutation($i: ImportAccrualsInput!) { importAccruals(input: $i) { job { id } } }",
        {"i": {"program": "JADE", "rows": rows}},
        key=finance,
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await balances(api, world.members[0]))["JADE"] == 0


async def test_a_job_is_seen_by_its_merchant_and_admin_only(world: World) -> None:
    api = world.api
    rows = [{"memberId": world.members[0], "orderRef": "V-1", "amount": "10"}]
    by_admin = await import_rows(api, "JADE", rows, ADMIN_KEY)
    job_id = by_admin["job"]["id"]
    await wait_for(api, job_id, ADMIN_KEY)
    seen = await api.gql(JOB, {"id": job_id}, key=world.jade_key)
    assert seen["importJob"]["accepted"] == 1  # jade's program, though ADMIN sent it
    assert (await api.gql(JOB, {"id": job_id}, key=world.lotus_key))["importJob"] is None
    assert (await api.gql(JOB, {"id": "imp_nothing"}))["importJob"] is None
    storefront = await create_key(api, "STOREFRONT")
    errors = await api.errors(JOB, {"id": job_id}, key=storefront)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_errors_page_through_in_line_order(world: World) -> None:
    api, jade = world.api, world.jade_key
    rows = [{"memberId": "mbr_ghost", "orderRef": f"G-{i}", "amount": "1"} for i in range(12)]
    job_id = (await import_rows(api, "JADE", rows, jade))["job"]["id"]
    await wait_for(api, job_id, jade)
    first = (await api.gql(JOB, {"id": job_id, "first": 5}, key=jade))["importJob"]["errors"]
    assert [e["line"] for e in first] == [1, 2, 3, 4, 5]
    after = (await api.gql(JOB, {"id": job_id, "first": 5, "after": 5}, key=jade))["importJob"]
    assert [e["line"] for e in after["errors"]] == [6, 7, 8, 9, 10]
    errors = await api.errors(
        "query($id: ID!) { importJob(id: $id) { errors(first: 5000) { line } } }",
        {"id": job_id},
        key=jade,
    )
    assert errors[0]["extensions"]["code"] == "INVALID_INPUT"


async def test_posting_order_and_balances_hold_across_small_chunks(
    api: Api, world: World, db_url: str
) -> None:
    """Many lines of one member in one chunk, and a repeat across chunks (chunks of 3)."""
    from tests.helpers import running_app

    small = api.app.state.runtime.settings.model_copy(update={"import_chunk_rows": 3})
    async with running_app(small) as client:
        rows = [
            {"memberId": world.members[0], "orderRef": f"S-{i}", "amount": "7"} for i in range(10)
        ]
        rows.append({"memberId": world.members[1], "orderRef": "S-1", "amount": "7"})
        job_id = (await import_rows(client, "JADE", rows, world.jade_key))["job"]["id"]
        job = await wait_for(client, job_id, world.jade_key)
    assert (job["accepted"], job["rejected"]) == (10, 1)
    assert job["errors"] == [
        {
            "line": 11,
            "code": "ALREADY_EXISTS",
            "message": "Order 'S-1' has already earned points in JADE.",
        }
    ]
    assert (await balances(api, world.members[0]))["JADE"] == 70
    assert await verify_ledger(db_url) == []


async def test_the_caps_of_a_movement_and_of_a_balance_hold_line_by_line(
    world: World, db_url: str
) -> None:
    """accruePoints' caps, in file order: one accrual earns at most 100,000,000 points, and
    no balance passes 2^31-1 (the line that would is rejected, the next ones still import)."""
    api, jade = world.api, world.jade_key
    big = [
        {"memberId": world.members[0], "orderRef": f"C-{i}", "amount": "100000000"}
        for i in range(22)
    ]
    big.append({"memberId": world.members[0], "orderRef": "C-small", "amount": "5"})
    job = await wait_for(api, (await import_rows(api, "JADE", big, jade))["job"]["id"], jade)
    assert (job["accepted"], job["rejected"]) == (22, 1)
    (error,) = job["errors"]
    assert error["line"] == 22 and error["code"] == "INVALID_INPUT"
    assert "the most a balance can hold" in error["message"]
    assert (await balances(api, world.members[0]))["JADE"] == 2_100_000_005
    await api.gql(
        PROMOTE,
        {
            "input": {
                "program": "JADE",
                "accrualMultiplier": "20",
                "startsAt": _iso(utcnow() - dt.timedelta(hours=2)),
                "endsAt": _iso(utcnow() + dt.timedelta(hours=2)),
                "label": "x20",
            }
        },
        key=jade,
    )
    huge = [{"memberId": world.members[1], "orderRef": "H-1", "amount": "5000001"}]
    job = await wait_for(api, (await import_rows(api, "JADE", huge, jade))["job"]["id"], jade)
    assert job["errors"][0]["code"] == "INVALID_INPUT"
    assert "one accrual earns at most 100,000,000" in job["errors"][0]["message"]
    assert await verify_ledger(db_url) == []


async def test_a_green_program_takes_no_import(world: World) -> None:
    """GREEN points come only from green-tagged lines of a purchase in the primary program:
    an import straight into one is refused and starts no job."""
    api = world.api
    made = await api.gql(
        "mutation R($input: RegisterProgramInput!) { registerProgram(input: $input) "
        "{ program { code } userErrors { code } } }",
        {
            "input": {
                "merchantId": "jade",
                "code": "JADE_GREEN",
                "name": "Jade green",
                "kind": "GREEN",
                "pointValue": "0.01",
            }
        },
    )
    assert made["registerProgram"]["userErrors"] == []
    row = {"memberId": world.members[0], "orderRef": "G-1", "amount": "10"}
    refused = await import_rows(api, "JADE_GREEN", [row], world.jade_key)
    assert refused["job"] is None
    assert refused["userErrors"][0]["code"] == "INVALID_INPUT"
