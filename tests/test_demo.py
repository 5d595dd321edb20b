"""`hub demo` as a person runs it: seeds, serves, answers with demo-admin."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from connectors.sandbox.runner import consecutive_free_ports, free_port


def _spawn(tmp: Path, port: int, base: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'demo.db'}",
        "HUB_DEMO_STATE_DIR": str(tmp / "partners"),
        "HUB_DEMO_PARTNER_PORT_BASE": str(base),
        "HUB_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )


async def test_demo_serves_the_demo_world(tmp_path: Path) -> None:
    port, base = free_port(), consecutive_free_ports(3)
    proc = _spawn(tmp_path, port, base)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(400):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            query = "{ merchants { id program { code connector } } }"
            response = await client.post(
                "/graphql", json={"query": query}, headers={"Authorization": "Bearer demo-admin"}
            )
            merchants = {m["id"]: m["program"] for m in response.json()["data"]["merchants"]}
            assert merchants == {
                "bistro": {"code": "BISTRO", "connector": "HOSTED"},
                "clearview": {"code": "CLEAR", "connector": "HOSTED"},
                "haowu": {"code": "HUB", "connector": "HOSTED"},
                "jade": {"code": "JADE", "connector": "HOSTED"},
                "lotus": {"code": "LOTUS", "connector": "HOTEL"},
                "skyair": {"code": "SKYMILES", "connector": "AIRLINE"},
                "westlake": {"code": "WESTLAKE", "connector": "SCENIC"},
                "xingchen": {"code": "XCAUTO", "connector": "HOSTED"},
            }
            catalog = await client.post(
                "/graphql",
                json={
                    "query": "{ rewards(first: 100) { edges { node { kind } } "
                    "unavailableMerchants { id } } }"
                },
                headers={"Authorization": "Bearer demo-storefront"},
            )
            rewards = catalog.json()["data"]["rewards"]
            kinds = {e["node"]["kind"] for e in rewards["edges"]}
            assert kinds == {
                "GOODS",
                "VOUCHER",
                "HOTEL_NIGHT",
                "ROOM_UPGRADE",
                "HOTEL_SERVICE",
                "AWARD_FLIGHT",
                "LOUNGE_ACCESS",
                "MEAL",
                "ATTRACTION_TICKET",
                "SERVICE",
            }
            assert rewards["unavailableMerchants"] == []
            people = (await client.get("/mall/demo/members")).json()
            # four to try the mall with, two who made the history, four of the loyalty world
            assert len(people) == 10
            standing = {}
            for ref in ("H-2001", "H-2002", "H-2003", "H-2004"):
                found = await client.post(
                    "/graphql",
                    json={
                        "query": 'query($r: String!) { memberByRef(program: "HUB", '
                        'externalRef: $r) { creditLevel account(program: "HUB") '
                        "{ balance tier { tier { code } } } } }",
                        "variables": {"r": ref},
                    },
                    headers={"Authorization": "Bearer demo-admin"},
                )
                standing[ref] = found.json()["data"]["memberByRef"]
            assert standing["H-2001"]["account"]["tier"]["tier"]["code"] == "SILVER"
            assert standing["H-2002"]["account"]["tier"]["tier"]["code"] == "GOLD"
            assert standing["H-2003"]["creditLevel"] == "EXCELLENT"
            # The senior earns 15x (x20 at most, in a birthday month).
            assert standing["H-2004"]["account"]["balance"] in (3000, 4000)
            week = await client.post(
                "/graphql",
                json={
                    "query": "{ settlementBatches(first: 10) { edges { node { businessDate "
                    "obligationCount statements { merchant { id } resolution } } } } }"
                },
                headers={"Authorization": "Bearer demo-finance"},
            )
            batches = [e["node"] for e in week.json()["data"]["settlementBatches"]["edges"]]
            assert len(batches) == 7 and all(b["obligationCount"] >= 4 for b in batches)
            resolved = [
                s["resolution"] for s in batches[0]["statements"] if s["merchant"]["id"] == "lotus"
            ]
            assert resolved[0].startswith("ACCEPTED")
            # The partners' own records of the week agree with the hub's, day by day.
            for batch in batches:
                for merchant in ("skyair", "lotus", "westlake"):
                    report = await client.post(
                        "/graphql",
                        json={
                            "query": "query($m: ID!, $d: Date!) { reconciliation(merchant: $m, "
                            "businessDate: $d) { status matched breaks { reference } } }",
                            "variables": {"m": merchant, "d": batch["businessDate"]},
                        },
                        headers={"Authorization": "Bearer demo-finance"},
                    )
                    found = report.json()["data"]["reconciliation"]
                    assert found["status"] == "MATCHED", (merchant, batch["businessDate"], found)
                    assert found["matched"] > 0, (merchant, batch["businessDate"])
            # Green points: Li Wei's green lines, the green zone, and the vouchers.
            green = await client.post(
                "/graphql",
                json={
                    "query": '{ li: memberByRef(program: "HUB", externalRef: "H-1002") '
                    '{ account(program: "HUB_GREEN") { balance } } '
                    'zone: rewards(filter: {payableWith: "HUB_GREEN"}, first: 50) '
                    "{ edges { node { id tags } } } "
                    'fifty: reward(id: "bistro:FIFTY-OFF-200") { price voucher { faceValue '
                    "minSpend } } "
                    'car: reward(id: "xingchen:INSURANCE-500") { voucher { faceValue } } '
                    'dimsum: reward(id: "jade:DIM-SUM-VOUCHER") { voucher { faceValue } } }'
                },
                headers={"Authorization": "Bearer demo-admin"},
            )
            found = green.json()["data"]
            assert found["li"]["account"]["balance"] == (480 + 300 + 150) * 2
            assert {e["node"]["id"] for e in found["zone"]["edges"]} == {
                "haowu:ECO-TOTE",
                "haowu:LED-BULBS",
                "clearview:ECO-FRAMES",
            }
            assert found["fifty"] == {
                "price": 1000,
                "voucher": {"faceValue": "50.00", "minSpend": "200.00"},
            }
            assert found["car"]["voucher"]["faceValue"] == "500.00"
            # Every VOUCHER reward carries terms: its redemptions get a code.
            assert found["dimsum"]["voucher"] == {"faceValue": "100.00"}
            wang = next(p for p in people if "Wang Fang" in p["name"])
            token = (await client.post("/mall/demo/session", json={"memberId": wang["id"]})).json()[
                "token"
            ]
            mine = await client.post(
                "/graphql",
                json={"query": "{ viewer { member { accounts { program { code } balance } } } }"},
                headers={"Authorization": "Bearer demo-storefront", "X-Member-Token": token},
            )
            balances = {
                a["program"]["code"]: a["balance"]
                for a in mine.json()["data"]["viewer"]["member"]["accounts"]
            }
            assert balances == {
                "CLEAR": 0,
                "HUB": 20000,
                "JADE": 800,
                "LOTUS": 12000,
                "SKYMILES": 45000,
                "WESTLAKE": 3000,
            }
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    # Running it again reuses what exists.
    again = _spawn(tmp_path, port, base)
    try:
        assert again.stdout is not None
        first = again.stdout.readline().decode()
        assert "demo data exists" in first
    finally:
        again.terminate()
        again.wait(timeout=15)
