"""An identifier a person reads must have a visible character: a zero-width space is not an
order reference, and earns nothing. Through HTTP, for each kind of identifier."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hub import validate
from hub.errors import InvalidInput
from tests.helpers import ACCRUE, CREATE_KEY, ENROLL, REGISTER, Api, balances, enroll, register

INVISIBLE = [
    "\u200b",  # zero-width space (Cf)
    "\u200b\u200c\u200d\u2060\ufeff",  # every zero-width character at once (Cf)
    "\u00a0\u3000",  # no-break and ideographic spaces (Zs)
    "\u2028\u2029",  # line and paragraph separators (Zl, Zp)
    "\u0007\u001b",  # control characters (Cc)
    "\u202e\u200b",  # a right-to-left override and a zero-width space
]


@pytest.mark.parametrize("invisible", INVISIBLE)
async def test_an_invisible_order_reference_earns_nothing(api: Api, invisible: str) -> None:
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    data = await api.gql(
        ACCRUE,
        {
            "input": {
                "memberId": member,
                "program": "JADE",
                "orderRef": invisible,
                "amount": "100",
                "idempotencyKey": "visible-key",
            }
        },
    )
    payload = data["accruePoints"]
    assert payload["points"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["input", "orderRef"]
    assert await balances(api, member) == {"JADE": 0}


async def test_an_invisible_idempotency_key_is_refused(api: Api) -> None:
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    data = await api.gql(
        ACCRUE,
        {
            "input": {
                "memberId": member,
                "program": "JADE",
                "orderRef": "ORDER-1",
                "amount": "100",
                "idempotencyKey": "\u200b\u2060",
            }
        },
    )
    errors = data["accruePoints"]["userErrors"]
    assert errors[0]["code"] == "INVALID_INPUT"
    assert errors[0]["field"] == ["input", "idempotencyKey"]
    assert await balances(api, member) == {"JADE": 0}


async def test_invisible_padding_does_not_make_a_second_order(api: Api) -> None:
    """'A-1' and 'A-1' followed by a zero-width space are the same order."""
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    first = await api.gql(
        ACCRUE,
        {
            "input": {
                "memberId": member,
                "program": "JADE",
                "orderRef": "A-1",
                "amount": "100",
                "idempotencyKey": "k1",
            }
        },
    )
    assert first["accruePoints"]["userErrors"] == []
    again = await api.gql(
        ACCRUE,
        {
            "input": {
                "memberId": member,
                "program": "JADE",
                "orderRef": "\u200bA-1\u200b",
                "amount": "100",
                "idempotencyKey": "k2",
            }
        },
    )
    assert again["accruePoints"]["userErrors"][0]["code"] == "ALREADY_EXISTS"
    assert await balances(api, member) == {"JADE": 100}


INSIDE = [
    "\u200b",  # zero-width space
    "\u2060",  # word joiner
    "\u00ad",  # soft hyphen
    "\ufeff",  # BOM
    "\u034f",  # combining grapheme joiner
    "\ufe0f",  # variation selector
    "\u3164",  # Hangul filler
    "\u17b4",  # Khmer inherent vowel
    "\u2800",  # braille blank
    "\u00a0",  # no-break space
    "\u2029",  # paragraph separator
    "\r",  # carriage return
    "\u1680",  # Ogham space mark
]


@pytest.mark.parametrize("inside", INSIDE)
async def test_an_invisible_character_inside_a_reference_is_refused(api: Api, inside: str) -> None:
    """'ord-Z1' with a zero-width space (or a word joiner, a soft hyphen, a BOM) inside shows
    as 'ord-Z1' and was a second order earning points again. Inside an order reference or a
    membership number such a character is refused; around one it is stripped (above)."""
    await register(api, "jade", "JADE")
    member = await enroll(api, "JADE", "J-1")
    accrue = {"memberId": member, "program": "JADE", "amount": "100"}
    first = await api.gql(
        ACCRUE, {"input": {**accrue, "orderRef": "ord-Z1", "idempotencyKey": "a"}}
    )
    assert first["accruePoints"]["userErrors"] == []
    sneaky = {**accrue, "orderRef": f"ord-{inside}Z1", "idempotencyKey": "b"}
    payload = (await api.gql(ACCRUE, {"input": sneaky}))["accruePoints"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_INPUT", ["input", "orderRef"])
    ]
    assert await balances(api, member) == {"JADE": 100}
    data = {"program": "JADE", "externalRef": f"J-{inside}2", "displayName": "Li Wei"}
    enrolled = (await api.gql(ENROLL, {"input": data}))["enrollMember"]
    assert enrolled["userErrors"][0]["field"] == ["input", "externalRef"]
    # A look-up reads a number as enrollment does: around it stripped, inside none found.
    by_ref = 'query($r: String!) { memberByRef(program: "JADE", externalRef: $r) { id } }'
    found = await api.gql(by_ref, {"r": "\u200bJ-1\u2060"})
    assert found["memberByRef"] == {"id": member}
    assert (await api.gql(by_ref, {"r": f"J-{inside}1"}))["memberByRef"] is None


@pytest.mark.parametrize("field", ["externalRef", "displayName"])
async def test_enrolling_with_an_invisible_name_or_number_is_refused(api: Api, field: str) -> None:
    await register(api, "jade", "JADE")
    data: dict[str, Any] = {"program": "JADE", "externalRef": "J-1", "displayName": "Li Wei"}
    data[field] = "\u200b\u3000"
    payload = (await api.gql(ENROLL, {"input": data}))["enrollMember"]
    assert payload["member"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["input", field]


async def test_labels_names_and_codes_need_a_visible_character(api: Api) -> None:
    key = (await api.gql(CREATE_KEY, {"input": {"role": "FINANCE", "label": "\u200b"}}))[
        "createApiKey"
    ]
    assert key["secret"] is None and key["userErrors"][0]["field"] == ["input", "label"]
    merchant = (
        await api.gql(
            REGISTER,
            {
                "input": {
                    "id": "jade",
                    "name": "\ufeff",
                    "category": "RESTAURANT",
                    "programCode": "JADE",
                    "programName": "Jade points",
                    "pointValue": "0.1",
                }
            },
        )
    )["registerMerchant"]
    assert merchant["userErrors"][0]["field"] == ["input", "name"]
    slug = (
        await api.gql(
            REGISTER,
            {
                "input": {
                    "id": "jade\n",
                    "name": "Jade",
                    "category": "RESTAURANT",
                    "programCode": "JADE",
                    "programName": "Jade points",
                    "pointValue": "0.1",
                }
            },
        )
    )["registerMerchant"]
    assert slug["userErrors"][0]["field"] == ["input", "id"]
    await register(api, "jade", "JADE")
    now = dt.datetime.now(dt.UTC)
    promotion = await api.gql(
        "mutation P($input: PromotionInput!) { setPromotion(input: $input) "
        "{ ok userErrors { field code } } }",
        {
            "input": {
                "program": "JADE",
                "accrualMultiplier": "2",
                "startsAt": now.isoformat(),
                "endsAt": (now + dt.timedelta(days=1)).isoformat(),
                "label": "\u2060\u200b",
            }
        },
    )
    assert promotion["setPromotion"]["userErrors"][0]["field"] == ["input", "label"]


def test_visible_text_keeps_its_inner_spaces_and_strips_invisible_edges() -> None:
    assert validate.text("\u200b Li  Wei\u00a0\u200b", ["name"], max_length=20) == "Li  Wei"
    assert validate.text("王小明", ["name"], max_length=20) == "王小明"
    assert validate.text("", ["x"], max_length=5, required=False) == ""
    with pytest.raises(InvalidInput):
        validate.text("\u200b", ["x"], max_length=5)
    with pytest.raises(InvalidInput):
        validate.text("a\u0000b", ["x"], max_length=5)  # a NUL inside is never text
