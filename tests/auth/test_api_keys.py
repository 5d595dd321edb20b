"""API keys: listed without secrets, revoked at once, last use kept without a write per
request; all through HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.models import ApiKey
from tests.helpers import ADMIN_KEY, CREATE_KEY, Api, create_key, register, running_app

VIEWER = "{ viewer { role } }"
KEYS = """
{ apiKeys { id role merchant { id } label createdAt lastUsedAt revokedAt } }"""
REVOKE = """
mutation R($id: ID!) {
  revokeApiKey(id: $id) { apiKey { id revokedAt } userErrors { field message code } }
}"""


async def _new_key(api: Api, role: str, merchant: str | None = None) -> tuple[str, str]:
    data = await api.gql(
        CREATE_KEY, {"input": {"role": role, "merchantId": merchant, "label": f"{role} app"}}
    )
    payload = data["createApiKey"]
    assert payload["userErrors"] == [], payload
    return payload["keyId"], payload["secret"]


async def test_a_revoked_key_is_refused_on_its_next_request(api: Api) -> None:
    await register(api, "jade", "JADE")
    key_id, secret = await _new_key(api, "MERCHANT", "jade")
    assert (await api.post(VIEWER, key=secret)).status_code == 200
    data = await api.gql(REVOKE, {"id": key_id})
    assert data["revokeApiKey"]["userErrors"] == []
    assert data["revokeApiKey"]["apiKey"]["id"] == key_id
    assert data["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    refused = await api.post(VIEWER, key=secret)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The CSV endpoint uses the same credentials.
    assert (await api.client.get("/statements/stm_x.csv", headers=_bearer(secret))).status_code == (
        401
    )


async def test_revocation_is_seen_by_every_worker_within_the_check_interval(
    settings: Settings,
) -> None:
    """Two app instances over one database stand for two workers (or replicas): each keeps
    live keys in memory (hub.caches) and reads the cache counters at most once per
    HUB_CACHE_CHECK_SECONDS, so a key revoked through one is refused by the other within
    that interval, and by the one that revoked it on its next request."""
    interval = 0.3
    quick = settings.model_copy(update={"cache_check_seconds": interval})
    async with running_app(quick) as first, running_app(quick) as second:
        key_id, secret = await _new_key(first, "FINANCE")
        assert (await second.post(VIEWER, key=secret)).status_code == 200  # now kept there
        assert (await second.post(VIEWER, key=secret)).status_code == 200
        await first.gql(REVOKE, {"id": key_id})
        assert (await first.post(VIEWER, key=secret)).status_code == 401
        # The first request after the interval reads the counters again (no clock bound is
        # asserted: on a loaded machine a request may itself take longer than the interval).
        await asyncio.sleep(interval)
        refused = await second.post(VIEWER, key=secret)
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_with_a_zero_interval_revocation_is_seen_at_once(settings: Settings) -> None:
    """HUB_CACHE_CHECK_SECONDS=0: the counters are read on every request."""
    strict = settings.model_copy(update={"cache_check_seconds": 0})
    async with running_app(strict) as first, running_app(strict) as second:
        key_id, secret = await _new_key(first, "FINANCE")
        assert (await second.post(VIEWER, key=secret)).status_code == 200
        await first.gql(REVOKE, {"id": key_id})
        assert (await second.post(VIEWER, key=secret)).status_code == 401


async def test_revoking_an_unknown_key_is_not_found(api: Api) -> None:
    data = await api.gql(REVOKE, {"id": "key_nosuch"})
    payload = data["revokeApiKey"]
    assert payload["apiKey"] is None
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"
    assert payload["userErrors"][0]["field"] == ["id"]


async def test_revoking_twice_keeps_the_first_revocation_time(api: Api) -> None:
    key_id, _ = await _new_key(api, "FINANCE")
    first = (await api.gql(REVOKE, {"id": key_id}))["revokeApiKey"]["apiKey"]["revokedAt"]
    again = (await api.gql(REVOKE, {"id": key_id}))["revokeApiKey"]
    assert again["userErrors"] == []
    assert again["apiKey"]["revokedAt"] == first


async def test_only_admin_lists_and_revokes_keys(api: Api) -> None:
    await register(api, "jade", "JADE")
    admin_id, _ = await _new_key(api, "ADMIN")
    for role, merchant in (("MERCHANT", "jade"), ("FINANCE", None), ("STOREFRONT", None)):
        secret = await create_key(api, role, merchant)
        assert (await api.errors(KEYS, key=secret))[0]["extensions"]["code"] == "FORBIDDEN"
        errors = await api.errors(REVOKE, {"id": admin_id}, key=secret)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    listed = {k["id"]: k for k in (await api.gql(KEYS))["apiKeys"]}
    assert listed[admin_id]["revokedAt"] is None


async def test_the_list_never_shows_a_secret(api: Api) -> None:
    await register(api, "jade", "JADE")
    key_id, secret = await _new_key(api, "MERCHANT", "jade")
    response = await api.post(KEYS)
    assert secret not in response.text and ADMIN_KEY not in response.text
    keys = {k["id"]: k for k in response.json()["data"]["apiKeys"]}
    assert keys[key_id]["role"] == "MERCHANT"
    assert keys[key_id]["merchant"] == {"id": "jade"}
    assert keys[key_id]["label"] == "MERCHANT app"


async def test_last_used_is_kept_without_a_write_per_request(api: Api, settings: Settings) -> None:
    key_id, secret = await _new_key(api, "FINANCE")
    before = {k["id"]: k for k in (await api.gql(KEYS))["apiKeys"]}
    assert before[key_id]["lastUsedAt"] is None
    for _ in range(5):
        assert (await api.post(VIEWER, key=secret)).status_code == 200
    first = await _last_used(settings, key_id)
    assert first is not None
    for _ in range(5):
        await api.post(VIEWER, key=secret)
    assert await _last_used(settings, key_id) == first  # throttled: no write per request
    # A minute later (the throttle's clock moved on) the next request writes it again.
    usage = api.app.state.runtime.key_usage
    usage.forget_before(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))
    await api.post(VIEWER, key=secret)
    later = await _last_used(settings, key_id)
    assert later is not None and later > first


async def test_an_admin_may_revoke_its_own_key_and_a_restart_does_not_revive_it(
    settings: Settings,
) -> None:
    """Revoking the bootstrap key locks it out for good: the next start does not recreate
    a key with a revoked secret (the operator creates a new ADMIN key with `hub keys create`)."""
    async with running_app(settings) as api:
        own = (await api.gql("{ apiKeys { id label } }"))["apiKeys"]
        bootstrap = next(k["id"] for k in own if "bootstrap" in k["label"])
        data = await api.gql(REVOKE, {"id": bootstrap})
        assert data["revokeApiKey"]["userErrors"] == []
        assert (await api.post(VIEWER)).status_code == 401
    async with running_app(settings) as restarted:
        assert (await restarted.post(VIEWER)).status_code == 401


async def _last_used(settings: Settings, key_id: str) -> dt.datetime | None:
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            return await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))
    finally:
        await db.dispose()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_cli_lists_keys_without_secrets_and_revokes_one(api: Api, db_url: str) -> None:
    from tests.test_cli import _run

    await register(api, "jade", "JADE")
    key_id, secret = await _new_key(api, "MERCHANT", "jade")
    listed = _run(db_url, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout and "MERCHANT" in listed.stdout and "jade" in listed.stdout
    assert secret not in listed.stdout and ADMIN_KEY not in listed.stdout
    revoked = _run(db_url, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert key_id in revoked.stdout
    assert (await api.post(VIEWER, key=secret)).status_code == 401
    after = _run(db_url, "keys", "list")
    line = next(row for row in after.stdout.splitlines() if key_id in row)
    assert "revoked" in line
    unknown = _run(db_url, "keys", "revoke", "key_nosuch")
    assert unknown.returncode == 1
    assert "key_nosuch" in unknown.stderr
