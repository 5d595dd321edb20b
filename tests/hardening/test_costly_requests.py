"""Requests that cost more than they look (issue 14): each attack over HTTP, refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from hub.config import Settings
from tests.helpers import ADMIN_KEY, Api, create_key, register, running_app
from tests.process import HubProcess


def nested_fragments(n: int) -> str:
    """2^n copies of `viewer { role }` in about 40 bytes per level."""
    parts = ["fragment F0 on Query { viewer { role } }"]
    parts += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, n + 1)]
    return " ".join([*parts, f"query Nested {{ ...F{n} }}"])


async def test_nested_fragments_are_refused_for_what_they_expand_to(api: Api) -> None:
    for n in (20, 40):
        errors = await api.errors(nested_fragments(n))
        assert errors[0]["extensions"] == {
            "code": "TOO_COSTLY",
            "cost": 2 ** (n + 1),  # what would execute: 2^n copies of two fields
            "maxCost": 5000,
        }
        assert len(errors) == 1, errors


async def test_nested_fragments_within_the_limits_still_run(api: Api) -> None:
    data = await api.gql(nested_fragments(8))
    assert data == {"viewer": {"role": "ADMIN"}}


async def test_depth_and_aliases_count_what_fragments_expand_to(settings: Settings) -> None:
    async with running_app(settings.model_copy(update={"max_query_depth": 3})) as api:
        deep = (
            "fragment P on Program { merchant { program { code } } } "
            "query { merchants { program { ...P } } }"
        )
        errors = await api.errors(deep)
        assert errors[0]["message"] == "'anonymous' exceeds maximum operation depth of 3"
    aliased = (
        "fragment A on Query { a: viewer { role } b: viewer { role } } "
        "fragment B on Query { ...A ...A ...A ...A } "
        "fragment C on Query { ...B ...B ...B ...B } query { ...C }"
    )
    async with running_app(settings) as api:
        errors = await api.errors(aliased)
        assert errors[0]["message"] == "32 aliases found. Allowed: 30"


async def test_healthz_answers_while_nested_fragments_are_refused(db_url: str) -> None:
    """Validation never holds the event loop: /healthz answers while the attack is in."""
    hub = HubProcess(db_url)
    await hub.start()
    attack: asyncio.Task[httpx.Response] | None = None
    try:
        async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
            attack = asyncio.create_task(
                client.post(
                    "/graphql",
                    json={"query": nested_fragments(40)},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                )
            )
            await asyncio.sleep(0.05)  # the attack is sent first
            health = await client.get("/healthz", timeout=10)
            assert health.status_code == 200 and health.text == "ok"
            refused = await asyncio.wait_for(attack, timeout=20)
            assert refused.json()["errors"][0]["extensions"]["code"] == "TOO_COSTLY"
    finally:
        if attack is not None:
            attack.cancel()
        hub.stop()
        if hub.proc is not None and hub.proc.poll() is None:
            hub.kill()  # a hub stuck in validation does not stop on SIGTERM


MEMBERS = "... on Member { id displayName }"
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { " + MEMBERS + " } }"


async def enroll_many(api: Api, program: str, count: int) -> list[str]:
    """`count` members of a program, enrolled 25 to a request."""
    ids: list[str] = []
    for start in range(0, count, 25):
        fields = " ".join(
            f'e{i}: enrollMember(input: {{program: "{program}", externalRef: "R-{i}", '
            f'displayName: "Member {i}"}}) {{ member {{ id }} userErrors {{ code }} }}'
            for i in range(start, min(start + 25, count))
        )
        data = await api.gql("mutation { " + fields + " }")
        ids += [data[f"e{i}"]["member"]["id"] for i in range(start, min(start + 25, count))]
    return ids


@contextmanager
def counted_statements(api: Api) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs."""
    engines = api.app.state.runtime.db.sync_engines
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)


async def test_entities_with_thousands_of_representations_are_refused(api: Api) -> None:
    representations = [{"__typename": "Member", "id": f"mbr_{i}"} for i in range(2000)]
    with counted_statements(api) as statements:
        errors = await api.errors(ENTITIES, {"r": representations})
    assert errors[0]["extensions"] == {"code": "TOO_COSTLY", "representations": 2000, "max": 100}
    assert "at most 100 representations" in errors[0]["message"]
    assert [s for s in statements if "member" in s.lower()] == []


async def test_entities_count_against_the_cost_limit(settings: Settings) -> None:
    """Written in the document, each representation counts; in a variable, the cap does."""
    literal = ", ".join(f'{{__typename: "Member", id: "mbr_{i}"}}' for i in range(150))
    query = "{ _entities(representations: [" + literal + "]) { " + MEMBERS + " } }"
    async with running_app(settings.model_copy(update={"max_query_cost": 250})) as api:
        errors = await api.errors(query)
        assert errors[0]["extensions"] == {"code": "TOO_COSTLY", "cost": 301, "maxCost": 250}
        one = [{"__typename": "Member", "id": "mbr_1"}]
        assert await api.gql(ENTITIES, {"r": one}) == {"_entities": [None]}
    async with running_app(settings.model_copy(update={"max_query_cost": 200})) as api:
        errors = await api.errors(ENTITIES, {"r": one})
        assert errors[0]["extensions"] == {"code": "TOO_COSTLY", "cost": 201, "maxCost": 200}


async def test_a_hundred_entities_resolve_in_a_few_statements(api: Api) -> None:
    await register(api, "jade", "JADE")
    members = await enroll_many(api, "JADE", 100)
    jade = await create_key(api, "MERCHANT", "jade")
    representations = [{"__typename": "Member", "id": m} for m in members]
    representations.append({"__typename": "Member", "id": "mbr_missing"})
    for key, name in ((ADMIN_KEY, "Member 7"), (jade, "M*******")):
        with counted_statements(api) as statements:
            data = await api.gql(ENTITIES, {"r": representations[:100]}, key=key)
        assert [e["id"] for e in data["_entities"]] == members[:100]
        assert data["_entities"][7]["displayName"] == name
        # One statement reads the 100 members and applies the caller's visibility rule.
        # (The key's lookup and the cache counters' read, due every 2 s on a slow machine,
        # are not the members'.)
        reads = [
            s
            for s in statements
            if s.startswith("SELECT") and "api_keys" not in s and "cache_versions" not in s
        ]
        assert len(reads) == 1 and "FROM members" in reads[0], reads
        sent = [s for s in statements if "cache_versions" not in s]
        assert len(sent) <= 6, statements  # with the key's lookup, its use, BEGINs
    # An unknown member, and one another merchant may not see, is null.
    await register(api, "sky", "SKY")
    sky = await create_key(api, "MERCHANT", "sky")
    data = await api.gql(ENTITIES, {"r": representations[-2:]}, key=sky)
    assert data["_entities"] == [None, None]
