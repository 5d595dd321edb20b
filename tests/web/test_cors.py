"""CORS on /graphql: a storefront on another origin may call the hub only when
HUB_CORS_ORIGINS lists that origin; nothing is allowed by default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from hub.app import create_app
from hub.config import Settings
from tests.helpers import ADMIN_KEY

SHOP = "http://shop.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-member-token",
}


@asynccontextmanager
async def hub_allowing(settings: Settings, origins: str) -> AsyncIterator[httpx.AsyncClient]:
    """The hub app with HUB_CORS_ORIGINS=origins, lifespan run, reached through ASGI."""
    app = create_app(settings.model_copy(update={"cors_origins": origins}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            yield client


def allowed_headers(response: httpx.Response) -> set[str]:
    value = response.headers.get("access-control-allow-headers", "")
    return {h.strip().lower() for h in value.split(",") if h.strip()}


def cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


async def graphql_from(client: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": "{ viewer { role } }"},
        headers={"Origin": origin, "Authorization": f"Bearer {ADMIN_KEY}"},
    )


async def test_a_listed_origin_passes_the_preflight_with_the_storefront_headers(
    settings: Settings,
) -> None:
    async with hub_allowing(settings, SHOP) as client:
        response = await client.options("/graphql", headers={"Origin": SHOP, **PREFLIGHT})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP
    assert "POST" in response.headers["access-control-allow-methods"]
    assert {"authorization", "content-type", "x-member-token"} <= allowed_headers(response)


async def test_a_listed_origin_may_read_the_answer(settings: Settings) -> None:
    async with hub_allowing(settings, f"{SHOP}, http://other.example") as client:
        response = await graphql_from(client, SHOP)
    assert response.status_code == 200
    assert response.json()["data"] == {"viewer": {"role": "ADMIN"}}
    assert response.headers["access-control-allow-origin"] == SHOP


async def test_an_origin_not_listed_gets_no_cors_headers(settings: Settings) -> None:
    async with hub_allowing(settings, SHOP) as client:
        preflight = await client.options(
            "/graphql", headers={"Origin": "http://evil.example", **PREFLIGHT}
        )
        answer = await graphql_from(client, "http://evil.example")
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert cors_headers(answer) == []


async def test_by_default_no_origin_is_allowed(settings: Settings) -> None:
    assert Settings.model_fields["cors_origins"].default == ""
    async with hub_allowing(settings, "") as client:
        preflight = await client.options("/graphql", headers={"Origin": SHOP, **PREFLIGHT})
        answer = await graphql_from(client, SHOP)
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert cors_headers(answer) == []
