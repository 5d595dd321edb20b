"""Money arrives as a plain decimal string (outside review F10): Python's Decimal() read
"١٢٣" as 123 and "1_000" as 1000, and the same amount spelt "1000.00" on a retry was an
IDEMPOTENCY_CONFLICT."""

from __future__ import annotations

from typing import Any

from tests.helpers import ACCRUE, Api, balances, enroll, register


def _input(member: str, amount: Any, key: str) -> dict[str, Any]:
    return {
        "input": {
            "memberId": member,
            "program": "JADE",
            "orderRef": key,
            "amount": amount,
            "idempotencyKey": key,
        }
    }


async def test_amounts_in_any_other_spelling_are_refused_and_nothing_is_earned(api: Api) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT")
    member = await enroll(api, "JADE", "J-1")
    spellings = ["١٢٣", "1_000", "1e3", "NaN", "Infinity", " 12", "12.", ".5", "+5", "٣.٥"]
    for index, amount in enumerate(spellings):
        data = await api.gql(ACCRUE, _input(member, amount, f"bad-{index}"))
        error = data["accruePoints"]["userErrors"][0]
        assert (error["code"], error["field"]) == ("INVALID_INPUT", ["input", "amount"]), amount
    for index, amount in enumerate([12.5, True]):  # a JSON float or boolean: the wrong type
        errors = await api.errors(ACCRUE, _input(member, amount, f"type-{index}"))
        assert "Decimal" in errors[0]["message"], (amount, errors)
    assert (await balances(api, member))["JADE"] == 0


async def test_the_same_amount_spelt_otherwise_on_a_retry_is_the_same_request(api: Api) -> None:
    await register(api, "jade", "JADE", category="RESTAURANT")
    member = await enroll(api, "JADE", "J-1")
    first = await api.gql(ACCRUE, _input(member, "1000", "same"))
    assert first["accruePoints"]["userErrors"] == []
    for spelling in ("1000.00", 1000, "1000.0"):
        again = await api.gql(ACCRUE, _input(member, spelling, "same"))
        assert again["accruePoints"]["userErrors"] == [], spelling
        assert again["accruePoints"]["entry"]["id"] == first["accruePoints"]["entry"]["id"]
    other = await api.gql(ACCRUE, _input(member, "1000.01", "same"))
    assert other["accruePoints"]["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    assert (await balances(api, member))["JADE"] == first["accruePoints"]["points"]
