"""Authentication and the role rules, through HTTP."""

from __future__ import annotations

from tests.helpers import ADMIN_KEY, Api, create_key, register

VIEWER = "{ viewer { role merchant { id } member { id } } }"


async def test_missing_key_is_401_unauthenticated(api: Api) -> None:
    response = await api.post(VIEWER, key=None)
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_key_is_401(api: Api) -> None:
    response = await api.post(VIEWER, key="not-a-key")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bootstrap_admin_key_works(api: Api) -> None:
    data = await api.gql(VIEWER, key=ADMIN_KEY)
    assert data["viewer"] == {"role": "ADMIN", "merchant": None, "member": None}


async def test_each_role_sees_itself(api: Api) -> None:
    await register(api, "skyair", "SKYMILES", category="AIRLINE")
    merchant_key = await create_key(api, "MERCHANT", "skyair")
    finance_key = await create_key(api, "FINANCE")
    storefront_key = await create_key(api, "STOREFRONT")
    assert (await api.gql(VIEWER, key=merchant_key))["viewer"] == {
        "role": "MERCHANT",
        "merchant": {"id": "skyair"},
        "member": None,
    }
    assert (await api.gql(VIEWER, key=finance_key))["viewer"]["role"] == "FINANCE"
    assert (await api.gql(VIEWER, key=storefront_key))["viewer"]["role"] == "STOREFRONT"


async def test_create_api_key_is_admin_only(api: Api) -> None:
    finance_key = await create_key(api, "FINANCE")
    errors = await api.errors(
        'mutation { createApiKey(input: {role: ADMIN, label: "x"}) { secret } }', key=finance_key
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_merchant_key_needs_an_existing_merchant(api: Api) -> None:
    data = await api.gql(
        'mutation { createApiKey(input: {role: MERCHANT, label: "x"}) '
        "{ secret keyId userErrors { field code message } } }"
    )
    payload = data["createApiKey"]
    assert payload["secret"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["input", "merchantId"]
    data = await api.gql(
        'mutation { createApiKey(input: {role: MERCHANT, merchantId: "nope", label: "x"}) '
        "{ secret userErrors { field code } } }"
    )
    assert data["createApiKey"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_member_token_only_with_storefront_key(api: Api) -> None:
    response = await api.post(VIEWER, key=ADMIN_KEY, member_token="anything")
    assert response.status_code == 401


async def test_forged_member_token_is_401(api: Api) -> None:
    storefront_key = await create_key(api, "STOREFRONT")
    forged = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYnJfeCIsImF1ZCI6Imh1YjptZW1iZXIt"
        "c2Vzc2lvbiIsImV4cCI6OTk5OTk5OTk5OX0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    )
    response = await api.post(VIEWER, key=storefront_key, member_token=forged)
    assert response.status_code == 401
    assert "createMemberSession" in response.json()["errors"][0]["message"]


async def test_graphiql_page_in_development(api: Api) -> None:
    response = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_a_session_token_read_again_still_expires() -> None:
    """A token is verified once and its grant kept for the next requests (HS256 cost 46 us a
    request); the kept grant ends with the token's expiry, and a forged token is refused
    however often it is sent."""
    import time

    from hub.auth import SessionGrant, SessionTokens
    from hub.enums import Role

    tokens = SessionTokens("k" * 64, ttl_seconds=1)
    grant = SessionGrant(
        member_id="mbr_1", minted_by="key_1", role=Role.STOREFRONT, merchant_id=None, universal=True
    )
    token = tokens.mint(grant).token
    assert tokens.read(token) == grant
    assert tokens.read(token) == grant  # kept
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert tokens.read(forged) is None and tokens.read(forged) is None
    assert SessionTokens("x" * 64, ttl_seconds=1).read(token) is None  # another key
    deadline = time.time() + 3
    while tokens.read(token) is not None:
        assert time.time() < deadline, "a kept grant outlived its token"
        time.sleep(0.05)
    assert tokens.read(token) is None
