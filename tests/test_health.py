"""Health, readiness and metrics."""

from __future__ import annotations

from hub.config import Settings
from tests.helpers import Api, running_app


async def test_healthz_and_readyz(api: Api) -> None:
    assert (await api.client.get("/healthz")).status_code == 200
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "up"


async def test_readyz_is_503_when_the_database_is_down() -> None:
    # Nothing listens on port 1: the database is down from the start.
    settings = Settings(
        database_url="postgresql+asyncpg://root@127.0.0.1:1/none", log_level="ERROR"
    )
    async with running_app(settings) as api:
        assert (await api.client.get("/healthz")).status_code == 200
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] == "down"
        response = await api.post("{ viewer { role } }", key="whatever")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"


async def test_metrics_count_operations_by_name(api: Api) -> None:
    await api.gql("query Merchants { merchants { id } }")
    text = (await api.client.get("/metrics")).text
    assert 'hub_graphql_requests_total{operation="Merchants",outcome="ok"}' in text
    assert "hub_graphql_request_seconds_bucket" in text
