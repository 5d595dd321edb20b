"""Query limits: depth, tokens, aliases, cost, page size."""

from __future__ import annotations

from hub.config import Settings
from tests.helpers import ADMIN_KEY, Api, running_app


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


async def test_lone_surrogates_are_refused_before_anything_runs(api: Api) -> None:
    """A lone UTF-16 surrogate is valid JSON ("\\ud800") but no text: it cannot be encoded,
    stored or compared. It is refused as NUL is, in any variable; in the document itself
    graphql-core's parser refuses it."""
    for query, variables in [
        (
            "query($s: String) { rewards(filter: {search: $s}) { edges { cursor } } }",
            {"s": "a\ud800"},
        ),
        ("query($id: ID!) { reward(id: $id) { id } }", {"id": "jade:\udfff"}),
        (
            "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
            {"r": [{"__typename": "Reward", "id": "x\ud800"}]},
        ),
    ]:
        errors = await api.errors(query, variables)
        assert errors[0]["extensions"]["code"] == "INVALID_INPUT", errors
        assert "surrogate" in errors[0]["message"], errors
    errors = await api.errors('{ merchant(id: "a\ud800") { id } }')
    assert errors[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "U+D800" in errors[0]["message"]


async def test_every_error_carries_a_code(api: Api) -> None:
    """Errors graphql-core makes before anything runs carry a code too: a document that does
    not parse, one that does not validate, and a variable the schema cannot read."""
    cases = [
        (
            '{ rewards(filter: {search: "\\udfff"}) { edges { cursor } } }',
            None,
            "GRAPHQL_PARSE_FAILED",
        ),
        ("{ merchants { nosuchfield } }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            '{ rewards(filter: {availableOn: "20261205"}) { edges { cursor } } }',
            None,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "query($d: Date) { rewards(filter: {availableOn: $d}) { edges { cursor } } }",
            {"d": "2026-02-30"},
            "INVALID_INPUT",
        ),
    ]
    for query, variables, code in cases:
        errors = await api.errors(query, variables)
        assert [e["extensions"]["code"] for e in errors] == [code], (query, errors)


async def test_malformed_entity_representations_are_invalid_input(api: Api) -> None:
    """_entities answers INVALID_INPUT, naming what is wrong, for a representation that is
    not one of the hub's entities by its key; the others in the call still resolve."""
    query = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"
    for representation, why in [
        ({"__typename": "Reward"}, "id"),
        ({"__typename": "Program"}, "code"),
        ({"__typename": "Merchant", "id": "jade", "extra": 1}, "extra"),
        ("string", "object"),
        (5, "object"),
        ({"id": "jade:X"}, "__typename"),
        ({"__typename": None}, "__typename"),
        ({"__typename": "Nope", "id": "x"}, "Nope"),
        ({"__typename": "Query"}, "Query"),
        ({"__typename": "__Schema"}, "__Schema"),
        ({"__typename": "Merchant", "id": 5}, "id"),
    ]:
        response = await api.post(
            query, {"r": [{"__typename": "Merchant", "id": "x"}, representation]}
        )
        body = response.json()
        assert body["data"] == {"_entities": [None, None]}, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INVALID_INPUT", (representation, error)
        assert error["path"] == ["_entities", 1] and why in error["message"], error
        assert "positional" not in error["message"] and "attribute" not in error["message"]


async def test_several_operations_need_an_operation_name(api: Api) -> None:
    """With several operations and no operationName nothing runs (the GraphQL spec's
    request error): the first operation, a mutation here, ran before."""
    document = 'mutation B { createApiKey(input: {role: FINANCE, label: "x"}) { secret } } ' + (
        "query A { viewer { role } }"
    )
    response = await api.post(document)
    assert response.status_code == 400  # as an unknown operationName, a broken body
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["BAD_REQUEST"], errors
    assert "operationName" in errors[0]["message"]
    keys = await api.gql("{ apiKeys { label } }")
    assert "x" not in [k["label"] for k in keys["apiKeys"]]
    named = await api.client.post(
        "/graphql",
        json={"query": document, "operationName": "A"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert named.json() == {"data": {"viewer": {"role": "ADMIN"}}}


async def test_validation_errors_about_variables_are_validation_errors(api: Api) -> None:
    for query in [
        "query($x: Int) { viewer { role } }",  # never used
        "{ merchant(id: $x) { id } }",  # not defined
    ]:
        errors = await api.errors(query)
        assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"], errors
    missing = await api.errors("query($id: ID!) { merchant(id: $id) { id } }")
    assert [e["extensions"]["code"] for e in missing] == ["INVALID_INPUT"], missing


async def test_every_method_but_post_is_answered_in_json_with_a_code(api: Api) -> None:
    """Only POST runs operations. A GET with a query (GraphQL over HTTP's optional GET), a
    PUT, a DELETE get 405 with the methods that are allowed, as a GraphQL error with a code,
    as every other refusal is: a client parses one shape. A GET of the page itself still
    opens GraphiQL in development."""
    json = {"Accept": "application/json"}
    for method, params, headers in (
        ("GET", {"query": "{ __typename }"}, {}),
        ("GET", {}, json),  # not a browser's: no page, no query either
        ("HEAD", {}, {}),
        ("PUT", {}, {}),
        ("DELETE", {}, {}),
    ):
        response = await api.client.request(method, "/graphql", params=params, headers=headers)
        assert response.status_code == 405, (method, response.text)
        assert response.headers["allow"] == "GET, POST"
        if method == "HEAD":
            continue  # no body
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "BAD_REQUEST"}, error
        assert "POST" in error["message"]
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_messages_name_values_as_they_were_sent(api: Api) -> None:
    """A message names a refused value as the client sent it in JSON (true, 1.5, null),
    not as Python prints it (True, None)."""
    query = "query($d: Date) { rewards(first: 1, filter: {availableOn: $d}) { edges { cursor } } }"
    for sent, shown in ((True, "true"), (1.5, "1.5"), ({"a": None}, '{"a": null}')):
        response = await api.post(query, {"d": sent})
        message = response.json()["errors"][0]["message"]
        assert f"Value cannot represent a Date: {shown}." in message, message
    entities = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"
    response = await api.post(entities, {"r": [{"__typename": True, "id": "x"}]})
    message = response.json()["errors"][0]["message"]
    assert message.endswith("not true."), message


async def test_a_body_nested_past_any_sense_is_a_bad_request(api: Api) -> None:
    """JSON nested 100,000 deep made Python's decoder recurse past its limit: an HTTP 500
    with a plain-text body and a raw traceback in the log. It is a BAD_REQUEST like any
    body that is not a GraphQL request, and nothing runs."""
    deep = "[" * 100_000 + "]" * 100_000
    body = '{"query": "{ viewer { role } }", "variables": {"a": ' + deep + "}}"
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    response = await api.client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "BAD_REQUEST"} and "nested" in error["message"]


async def test_nan_and_infinity_are_not_json(api: Api) -> None:
    """Python's decoder reads NaN and Infinity, which JSON does not have (RFC 8259): a body
    with them is a BAD_REQUEST, as any body that is not JSON."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    for literal in ("NaN", "Infinity", "-Infinity"):
        query = '"query($n: Int) { viewer { role } }"'
        body = '{"query": ' + query + ', "variables": {"n": ' + literal + "}}"
        response = await api.client.post("/graphql", content=body, headers=headers)
        assert response.status_code == 400, (literal, response.text)
        assert response.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}
