"""Requests that cost more than they look (issue 14): each attack over HTTP, refused."""

from __future__ import annotations

import asyncio

import httpx

from hub.config import Settings
from tests.helpers import ADMIN_KEY, Api, running_app
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
