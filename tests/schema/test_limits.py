"""Query limits: depth, tokens, aliases, cost, page size."""

from __future__ import annotations

from hub.config import Settings
from tests.helpers import Api, running_app


async def test_too_deep_query_is_refused(api: Api) -> None:
    nested = "merchant { program { " * 8 + "code" + " } }" * 8
    query = "{ merchants { program { " + nested + " } } }"
    errors = await api.errors(query)
    assert "exceeds maximum operation depth" in errors[0]["message"]


async def test_too_many_tokens_is_refused(api: Api) -> None:
    query = "{ " + " ".join("merchants { id }" for _ in range(800)) + " }"
    errors = await api.errors(query)
    assert "token" in errors[0]["message"].lower()


async def test_too_many_aliases_is_refused(api: Api) -> None:
    query = "{ " + " ".join(f"a{i}: merchants {{ id }}" for i in range(40)) + " }"
    errors = await api.errors(query)
    assert "alias" in errors[0]["message"].lower()


async def test_costly_query_is_refused_with_its_cost(settings: Settings) -> None:
    query = (
        "query Costly { "
        + " ".join(
            f"m{i}: merchants {{ id name program {{ code name merchant {{ id name }} }} }}"
            for i in range(3)
        )
        + " }"
    )
    async with running_app(settings.model_copy(update={"max_query_cost": 20})) as api:
        errors = await api.errors(query)
        assert errors[0]["extensions"] == {"code": "TOO_COSTLY", "cost": 27, "maxCost": 20}
        assert "Costly costs 27" in errors[0]["message"]
        # One copy of the same selection is within the limit.
        cheap = "{ merchants { id name program { code name merchant { id name } } } }"
        assert await api.gql(cheap) == {"merchants": []}


async def test_nul_characters_are_refused_before_anything_runs(api: Api) -> None:
    literal = await api.errors('{ merchant(id: "a\\u0000b") { id } }')
    assert literal[0]["extensions"]["code"] == "INVALID_INPUT"
    variable = await api.errors("query($id: ID!) { merchant(id: $id) { id } }", {"id": "a\x00b"})
    assert variable[0]["extensions"]["code"] == "INVALID_INPUT"
