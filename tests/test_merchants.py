"""registerMerchant, merchants, merchant, programs, program."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REGISTER, Api, create_key, merchant_input, register

COUNT = "{ merchants { id } programs { code } }"


async def test_register_merchant_creates_merchant_and_program(api: Api) -> None:
    payload = await register(
        api,
        "skyair",
        "SKYMILES",
        category="AIRLINE",
        unitName="mile",
        pointValue="0.08",
        expiryMonths=36,
        compensationPercent="20",
    )
    assert payload["merchant"] == {
        "id": "skyair",
        "name": "Skyair",
        "category": "AIRLINE",
        "status": "ACTIVE",
        "compensationPercent": "20",
        "program": {
            "code": "SKYMILES",
            "name": "SKYMILES points",
            "unitName": "mile",
            "connector": "HOSTED",
            "pointValue": "0.08",
            "accrualRate": "1",
            "expiryMonths": 36,
        },
    }
    data = await api.gql(
        '{ merchant(id: "skyair") { id program { code } } program(code: "SKYMILES") '
        "{ code merchant { id } } merchants { id } programs { code } }"
    )
    assert data["merchant"] == {"id": "skyair", "program": {"code": "SKYMILES"}}
    assert data["program"] == {"code": "SKYMILES", "merchant": {"id": "skyair"}}
    assert data["merchants"] == [{"id": "skyair"}]


async def test_the_payload_of_a_registration_lists_the_new_program(api: Api) -> None:
    """Outside attack L3: the payload's merchant listed `programs: []`, read from the
    process's copy of the programs taken before the registration."""
    await api.gql("{ programs { code } }")  # the programs are kept in this process now
    data = await api.gql(
        "mutation($input: RegisterMerchantInput!) { registerMerchant(input: $input) "
        "{ merchant { id programs { code } program { code } } userErrors { code } } }",
        {"input": merchant_input("jade", "JADE")},
    )
    payload = data["registerMerchant"]
    assert payload["userErrors"] == []
    assert payload["merchant"] == {
        "id": "jade",
        "programs": [{"code": "JADE"}],
        "program": {"code": "JADE"},
    }


async def test_duplicate_merchant_or_program_is_already_exists_and_writes_nothing(
    api: Api,
) -> None:
    await register(api, "skyair", "SKYMILES")
    for merchant_id, code, field in [
        ("skyair", "OTHER", "id"),
        ("other", "SKYMILES", "programCode"),
    ]:
        data = await api.gql(REGISTER, {"input": merchant_input(merchant_id, code)})
        errors = data["registerMerchant"]["userErrors"]
        assert data["registerMerchant"]["merchant"] is None
        assert errors == [
            {"field": ["input", field], "message": errors[0]["message"], "code": "ALREADY_EXISTS"}
        ]
    assert await api.gql(COUNT) == {
        "merchants": [{"id": "skyair"}],
        "programs": [{"code": "SKYMILES"}],
    }


def _config(**more: object) -> str:
    return json.dumps({"baseUrl": "https://partner.example/hub", "secretRef": "SKY", **more})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "Sky Air"}, "id"),
        ({"id": "x"}, "id"),
        ({"programCode": "sky"}, "programCode"),
        ({"pointValue": "0"}, "pointValue"),
        ({"pointValue": "-1"}, "pointValue"),
        ({"pointValue": "NaN"}, "pointValue"),
        ({"pointValue": "0.0000001"}, "pointValue"),
        ({"compensationPercent": "101"}, "compensationPercent"),
        ({"expiryMonths": 0}, "expiryMonths"),
        ({"name": "   "}, "name"),
        ({"connector": "AIRLINE"}, "connectorConfig"),
        ({"connectorConfig": "{not json"}, "connectorConfig"),
        ({"connectorConfig": '{"baseUrl": "http://x", "secret": "s3cr3t"}'}, "connectorConfig"),
        # A partner's timeout and retries are numbers in range (outside review, 2026-12-04).
        (
            {"connector": "HTTP", "connectorConfig": _config(timeoutSeconds=-1)},
            "connectorConfig",
        ),
        (
            {"connector": "HTTP", "connectorConfig": _config(timeoutSeconds="soon")},
            "connectorConfig",
        ),
        ({"connector": "HTTP", "connectorConfig": _config(retries=99)}, "connectorConfig"),
    ],
)
async def test_invalid_merchant_is_invalid_input_and_writes_nothing(
    api: Api, change: dict[str, object], field: str
) -> None:
    data = await api.gql(REGISTER, {"input": {**merchant_input("skyair", "SKYMILES"), **change}})
    payload = data["registerMerchant"]
    assert payload["merchant"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["input", field]
    assert payload["userErrors"][0]["message"]
    assert await api.gql(COUNT) == {"merchants": [], "programs": []}


async def test_one_platform_merchant(api: Api) -> None:
    await register(api, "haowu", "HUB", category="PLATFORM")
    data = await api.gql(REGISTER, {"input": merchant_input("other", "OTHER", "PLATFORM")})
    assert data["registerMerchant"]["userErrors"][0]["code"] == "ALREADY_EXISTS"


@pytest.mark.parametrize("role", ["MERCHANT", "FINANCE", "STOREFRONT"])
async def test_only_admin_registers_merchants(api: Api, role: str) -> None:
    await register(api, "skyair", "SKYMILES")
    key = await create_key(api, role, "skyair" if role == "MERCHANT" else None)
    errors = await api.errors(REGISTER, {"input": merchant_input("lotus", "LOTUS")}, key=key)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.gql(COUNT))["merchants"] == [{"id": "skyair"}]


@pytest.mark.parametrize("role", ["MERCHANT", "FINANCE", "STOREFRONT"])
async def test_every_role_reads_merchants_and_programs(api: Api, role: str) -> None:
    await register(api, "skyair", "SKYMILES")
    key = await create_key(api, role, "skyair" if role == "MERCHANT" else None)
    data = await api.gql("{ merchants { id program { code merchant { id } } } }", key=key)
    assert data["merchants"] == [
        {"id": "skyair", "program": {"code": "SKYMILES", "merchant": {"id": "skyair"}}}
    ]


async def test_unknown_merchant_and_program_are_null(api: Api) -> None:
    data = await api.gql('{ merchant(id: "nope") { id } program(code: "NOPE") { code } }')
    assert data == {"merchant": None, "program": None}
