"""/metrics labels only operation names the hub knows (issue 14): a client that sends a
thousand made-up operation names adds one series, `other`, not a thousand."""

from __future__ import annotations

import re
import secrets

from hub.config import Settings
from schema import build_schema
from schema.metrics import known_operations
from tests.helpers import Api


def operation_labels(text: str) -> set[str]:
    return set(re.findall(r'^hub_graphql_requests_total\{operation="([^"]*)"', text, re.M))


async def test_made_up_operation_names_do_not_add_series(api: Api) -> None:
    names = [f"Op{secrets.token_hex(6)}" for _ in range(1000)]
    for name in names:
        response = await api.client.post(
            "/graphql",
            json={"query": f"query {name} {{ viewer {{ role }} }}", "operationName": name},
            headers={"Authorization": "Bearer test-admin-secret"},
        )
        assert response.status_code == 200
    # The hub's own operations (the mall's, the console's) and the root fields keep theirs.
    for known in ("Viewer", "ConvertPoints", "merchants", "StatementLines"):
        await api.post(f"query {known} {{ viewer {{ role }} }}")
    labels = operation_labels((await api.client.get("/metrics")).text)
    assert not labels & set(names)
    assert {"other", "Viewer", "ConvertPoints", "merchants", "StatementLines"} <= labels
    known = known_operations(build_schema(Settings())._schema)
    assert labels <= known | {"other", "anonymous"}
    assert len(known) < 200  # the root fields twice, and the pages' few operations
