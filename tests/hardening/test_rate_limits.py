"""Rate limits (issue 14): per executed root field, per member session, failed
authentications per address, and one bucket shared by every process through Redis."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from hub.config import Settings
from tests.helpers import (
    ADMIN_KEY,
    Api,
    create_key,
    enroll,
    member_session,
    register,
    running_app,
)

VIEWER = "{ viewer { role } }"


def enrollments(start: int, count: int) -> str:
    """One mutation document with `count` aliased enrollMember fields."""
    fields = " ".join(
        f'e{i}: enrollMember(input: {{program: "JADE", externalRef: "R-{i}", '
        f'displayName: "Member {i}"}}) {{ member {{ id }} userErrors {{ code }} }}'
        for i in range(start, start + count)
    )
    return "mutation { " + fields + " }"


@asynccontextmanager
async def from_address(api: Api, host: str) -> AsyncIterator[Api]:
    """The same app, reached from another client address."""
    transport = httpx.ASGITransport(app=api.app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield Api(client, api.app)


async def test_aliased_mutations_count_one_request_each(settings: Settings) -> None:
    async with running_app(settings.model_copy(update={"rate_limit_per_minute": 40})) as api:
        await register(api, "jade", "JADE")
        other_admin = await create_key(api, "ADMIN")
        first = await api.post(enrollments(0, 30), key=other_admin)
        assert first.status_code == 200 and "errors" not in first.json()
        # 31 of the key's 40 are spent: 30 more enrollments are refused, none of them runs.
        second = await api.post(enrollments(30, 30), key=other_admin)
        assert second.status_code == 429, second.json()
        assert int(second.headers["retry-after"]) >= 1
        body = second.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert "30 root fields" in body["errors"][0]["message"]
        found = await api.gql(
            '{ a: memberByRef(program: "JADE", externalRef: "R-29") { id } '
            'b: memberByRef(program: "JADE", externalRef: "R-30") { id } }'
        )
        assert found["a"] is not None and found["b"] is None
        # What is left still serves plain requests.
        assert (await api.post(VIEWER, key=other_admin)).status_code == 200


async def test_failed_authentications_are_limited_per_address(settings: Settings) -> None:
    async with running_app(settings.model_copy(update={"auth_failures_per_minute": 5})) as api:
        statuses = [(await api.post(VIEWER, key=f"guess-{i}")).status_code for i in range(6)]
        assert statuses == [401] * 5 + [429]
        # Now even the right key is not tried from this address: guessing stops here.
        refused = await api.post(VIEWER)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # A forged member token is a failed authentication too.
        async with from_address(api, "10.0.0.7") as other:
            assert (await other.post(VIEWER)).status_code == 200
            for _ in range(5):
                response = await other.post(VIEWER, member_token="forged")
                assert response.status_code == 401
            assert (await other.post(VIEWER)).status_code == 429
        # Another address is not punished for them.
        async with from_address(api, "10.0.0.8") as third:
            assert (await third.post(VIEWER)).status_code == 200


async def test_each_member_session_has_its_own_bucket(settings: Settings) -> None:
    async with running_app(settings.model_copy(update={"rate_limit_per_minute": 10})) as api:
        await register(api, "jade", "JADE")
        member = await enroll(api, "JADE", "J-1", "Ma Lin")
        storefront = await create_key(api, "STOREFRONT")
        token = await member_session(api, member)
        # An abuser of the public storefront key empties the key's bucket...
        statuses = [(await api.post(VIEWER, key=storefront)).status_code for _ in range(11)]
        assert statuses == [200] * 10 + [429]
        # ...and a shopper with a session of its own goes on.
        shopper = [
            (await api.post(VIEWER, key=storefront, member_token=token)).status_code
            for _ in range(11)
        ]
        assert shopper == [200] * 10 + [429]
        limited = await api.post(VIEWER, key=storefront, member_token=token)
        assert "member session" in limited.json()["errors"][0]["message"]


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_answers(), reason="no Redis on 127.0.0.1:6379")
async def test_every_process_draws_from_one_bucket_in_redis(settings: Settings) -> None:
    from redis.asyncio import Redis

    prefix = f"hub-test-{secrets.token_hex(6)}:"
    shared = settings.model_copy(
        update={
            "rate_limit_per_minute": 5,
            "redis_url": "redis://127.0.0.1:6379/0",
            "redis_prefix": prefix,
        }
    )
    try:
        async with running_app(shared) as one, running_app(shared) as two:
            statuses = [(await one.post(VIEWER)).status_code for _ in range(3)]
            statuses += [(await two.post(VIEWER)).status_code for _ in range(2)]
            assert statuses == [200] * 5
            limited = await one.post(VIEWER)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert (await two.post(VIEWER)).status_code == 429
    finally:
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    assert keys, "the buckets were kept in Redis"


async def test_without_redis_answering_each_process_limits_on_its_own(
    settings: Settings,
) -> None:
    down = settings.model_copy(
        update={"rate_limit_per_minute": 3, "redis_url": "redis://127.0.0.1:1/0"}
    )
    async with running_app(down) as api:
        statuses = [(await api.post(VIEWER, key=ADMIN_KEY)).status_code for _ in range(4)]
        assert statuses == [200] * 3 + [429]
