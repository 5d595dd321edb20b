"""Fuzz the live GraphQL API with schemathesis (GraphQL mode) as ADMIN, MERCHANT and a
storefront acting for a member: no 5xx and no internal error in any response.

`make test` runs a few examples per operation and role; `make fuzz` runs thousands
(HUB_FUZZ_EXAMPLES sets the examples per operation and role).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections import Counter
from typing import Any

import schemathesis
from graphql import StringValueNode, get_introspection_query, graphql_sync
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from demo import world as demo
from hub.config import Settings
from schema import build_schema
from tests.helpers import running_app

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "3"))
MASKED = "Internal error; it is logged."

schemathesis.graphql.scalar(
    "Decimal",
    st.one_of(
        st.decimals(
            allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9
        ).map(str),
        st.sampled_from(["0", "0.10", "1", "1e3", "NaN", "-0.01"]),
    ).map(lambda s: StringValueNode(value=s)),
)
schemathesis.graphql.scalar("Date", st.dates().map(lambda d: StringValueNode(value=d.isoformat())))
schemathesis.graphql.scalar(
    "DateTime",
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: StringValueNode(value=d.isoformat())),
)


def _operations() -> list[Any]:
    introspection = graphql_sync(build_schema(Settings())._schema, get_introspection_query())
    loaded = schemathesis.graphql.from_dict(introspection.data)
    return [result.ok() for result in loaded.get_all_operations()]


def _fuzz(
    loop: asyncio.AbstractEventLoop,
    api: Any,
    operation: Any,
    role: str,
    headers: dict[str, str],
    seen: Counter[str],
    problems: list[str],
) -> None:
    """Send EXAMPLES generated documents of one operation as one role."""

    @examples(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        body = case.body

        async def send() -> Any:
            return await api.client.post("/graphql", json={"query": body}, headers=headers)

        response = loop.run_until_complete(send())
        seen[role] += 1
        text = response.text
        if response.status_code >= 500 or MASKED in text or "Traceback" in text:
            problems.append(f"{role} {response.status_code}: {body[:300]} -> {text[:300]}")

    run()


def test_fuzzed_requests_never_fail_inside_the_hub(db_url: str, settings: Settings) -> None:
    production = settings.model_copy(update={"env": "production", "rate_limit_per_minute": 0})
    loop = asyncio.new_event_loop()
    seen: Counter[str] = Counter()
    problems: list[str] = []

    async def prepare() -> tuple[Any, Any, dict[str, dict[str, str]]]:
        await demo.seed(production, progress=lambda _: None)
        context = running_app(production)
        api = await context.__aenter__()
        people = await api.gql(
            '{ memberByRef(program: "HUB", externalRef: "H-1001") { id } }', key="demo-admin"
        )
        member = people["memberByRef"]["id"]
        token = (
            await api.gql(
                "mutation($id: ID!) { createMemberSession(memberId: $id) { token } }",
                {"id": member},
                key="demo-admin",
            )
        )["createMemberSession"]["token"]
        roles = {
            "ADMIN": {"Authorization": "Bearer demo-admin"},
            "MERCHANT": {"Authorization": "Bearer demo-jade"},
            "STOREFRONT": {"Authorization": "Bearer demo-storefront", "X-Member-Token": token},
        }
        return context, api, roles

    context, api, roles = loop.run_until_complete(prepare())
    try:
        for operation in _operations():
            for role, headers in roles.items():
                _fuzz(loop, api, operation, role, headers, seen, problems)
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()
    print(f"fuzzed {sum(seen.values())} requests: {dict(seen)}")
    assert problems == [], "\n".join(problems[:10])
    assert sum(seen.values()) >= len(roles) * 20
