"""HUB_ENV=production: masked errors, no introspection, no GraphiQL, JSON logs without
personal data, and rate limiting per key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.config import Settings
from tests.helpers import ENROLL, register, running_app


@pytest.fixture
def production(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"env": "production", "log_level": "INFO", "rate_limit_per_minute": 0}
    )


async def test_internal_errors_are_masked(
    production: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("password=hunter2 at db-7.internal")

    async with running_app(production) as api:
        monkeypatch.setattr("hub.merchants.list_merchants", broken)
        errors = await api.errors("{ merchants { id } }")
        assert errors[0]["message"] == "Internal error; it is logged."
        assert errors[0]["extensions"] == {"code": "INTERNAL"}
        assert "hunter2" not in json.dumps(errors)
        # Expected failures keep their message and code.
        bad = await api.errors("{ noSuchField }")
        assert "noSuchField" in bad[0]["message"]
        assert bad[0]["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


async def test_no_introspection_and_no_graphiql_but_federation_sdl(production: Settings) -> None:
    async with running_app(production) as api:
        errors = await api.errors("{ __schema { types { name } } }")
        assert "introspection" in errors[0]["message"].lower()
        page = await api.client.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        sdl = await api.gql("{ _service { sdl } }")
        assert "@key" in sdl["_service"]["sdl"]
        assert (await api.post("{ _service { sdl } }", key=None)).status_code == 401


async def test_logs_are_json_lines_without_personal_data(
    production: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_app(production) as api:
        await register(api, "jade", "JADE")
        await api.gql(
            ENROLL,
            {
                "input": {
                    "program": "JADE",
                    "externalRef": "J-1",
                    "displayName": "Zhou Xiaoming",
                    "phone": "13812345678",
                }
            },
        )
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "request" and line.get("path") == "/graphql" for line in lines)
    assert "Zhou" not in err and "13812345678" not in err


async def test_rate_limit_per_key_answers_429_with_retry_after(production: Settings) -> None:
    async with running_app(production.model_copy(update={"rate_limit_per_minute": 5})) as api:
        statuses = [(await api.post("{ viewer { role } }")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        limited = await api.post("{ viewer { role } }")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_production_limits_by_default(production: Settings) -> None:
    assert production.model_copy(update={"rate_limit_per_minute": None}).rate_limit == 1200
    assert Settings(env="development").rate_limit == 0
