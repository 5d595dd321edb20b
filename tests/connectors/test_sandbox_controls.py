"""The sandbox partners' own controls (the demo's and the tests' fault switches)."""

from __future__ import annotations

import httpx
import pytest

from connectors import signing
from connectors.sandbox import airline, apis, hotel, scenic
from tests.partners import KINDS, partners


async def test_an_unknown_fault_switch_is_refused_and_changes_nothing() -> None:
    """A switch the sandbox does not have (`{"mode": "fail"}`) was a 500 with a Python
    TypeError; it is a 400 that names the switches there are, and the faults stay."""
    async with partners() as live:
        await live.start("lotus", "HOTEL")
        await live.faults("lotus", latency_ms=5)
        async with httpx.AsyncClient() as client:
            url = f"{live.url('lotus')}/sandbox/faults"
            refused = await client.post(url, json={"mode": "fail"})
            assert refused.status_code == 400, refused.text
            assert "latency_ms" in refused.json()["error"]["message"]
        assert live.sandbox("lotus").faults.latency_ms == 5


async def test_an_unknown_operation_name_is_refused_and_changes_nothing() -> None:
    """Outside attack (low): `"operations": ["debti"]` was taken, and the switches then hit
    no call at all, silently. It is a 400 that names the partner's calls."""
    async with partners() as live:
        await live.start("lotus", "HOTEL")
        await live.faults("lotus", latency_ms=5)
        async with httpx.AsyncClient() as client:
            url = f"{live.url('lotus')}/sandbox/faults"
            refused = await client.post(url, json={"error_rate": 1.0, "operations": ["debti"]})
            assert refused.status_code == 400, refused.text
            message = refused.json()["error"]["message"]
            assert "debti" in message and "debit" in message and "slots" in message
            taken = await client.post(url, json={"error_rate": 1.0, "operations": ["debit"]})
            assert taken.status_code == 200, taken.text
        assert live.sandbox("lotus").faults.operations == ["debit"]


async def test_an_answer_with_that_is_no_answer_is_refused_and_changes_nothing() -> None:
    """`answer_with` must be an object with a whole-number status: a text was taken, and
    every call then failed inside the sandbox."""
    async with partners() as live:
        await live.start("lotus", "HOTEL")
        await live.faults("lotus", latency_ms=5)
        async with httpx.AsyncClient() as client:
            url = f"{live.url('lotus')}/sandbox/faults"
            for wrong in ("429", {"status": "429"}, [429]):
                refused = await client.post(url, json={"answer_with": wrong})
                assert refused.status_code == 400, refused.text
                assert "answer_with" in refused.json()["error"]["message"]
            taken = await client.post(url, json={"answer_with": {"status": 429}})
            assert taken.status_code == 200, taken.text
        assert live.sandbox("lotus").faults.answer_with == {"status": 429}


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_the_rewards_and_slots_switches_reach_every_partners_catalog(kind: str) -> None:
    """Outside attack (low): `"operations": ["rewards"]` failed the generic partner's
    catalog only; the airline's `GET /v1/awards` (and the other verticals' lists) answered
    as if no switch were set. Every partner's catalog, and its slots where it has them,
    answer 503 under the switch that names them, and only under it."""
    stated = {
        "AIRLINE": apis.AIRLINE,
        "HOTEL": apis.HOTEL,
        "RESTAURANT": apis.RESTAURANT,
        "SCENIC": apis.SCENIC,
        "HTTP": apis.GENERIC,
    }[kind]
    reward = {
        "AIRLINE": airline.AWARDS[0]["awardId"],
        "HOTEL": hotel.OFFERS[0]["code"],
        "SCENIC": scenic.TICKETS[0]["id"],
    }.get(kind, "CAR-WASH")
    calls = {"rewards": stated.rewards}
    if stated.slots is not None:
        calls["slots"] = stated.slots.format(reward=reward)
    async with partners() as live:
        await live.start("p", kind)
        secret = live.sandbox("p").secret
        async with httpx.AsyncClient(base_url=live.url("p")) as client:

            async def status(path: str) -> int:
                response = await client.get(path, headers=signing.headers(secret, b""))
                return response.status_code

            for operation, path in calls.items():
                assert await status(path) == 200, (operation, path)
                await live.faults("p", error_rate=1.0, operations=[operation])
                assert await status(path) == 503, (operation, path)
                others = [p for o, p in calls.items() if o != operation]
                assert [await status(p) for p in others] == [200] * len(others)
                await live.faults("p")
