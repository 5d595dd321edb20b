"""The sandbox partners' own controls (the demo's and the tests' fault switches)."""

from __future__ import annotations

import httpx

from tests.partners import partners


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
